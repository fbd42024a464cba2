"""The redis-py clients RedisState uses, bounded by its timeout, and what their errors mean.

redis-py's defaults suit a cache, not a gate: a 5 s socket timeout and retries with back-off
would hold a request for seconds on a Redis that is down. Every client here has the
operation's ``timeout`` (or, under asyncio, no socket timeout at all: the operation's
deadline, credited with our loop's lag, bounds it) and never retries. ``translate`` maps an
error to the state's own: a full server is ``StateFull`` (refuse, never forget), anything
else that kept an answer from us is ``StateUnavailable``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis as _redis
import redis.asyncio as _aredis
from redis.asyncio.retry import Retry as _AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as _ConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as _TimeoutError
from redis.retry import Retry

from ._state import StateFull, StateUnavailable

#: Connections per event loop; more concurrent operations wait for one, within the deadline.
ASYNC_POOL_SIZE = 100

#: Settings of a caller's client that would undo our bounds.
_UNBOUNDED = ("retry", "retry_on_timeout", "retry_on_error", "health_check_interval")


def bounded_kwargs(timeout: float, asynchronous: bool = False) -> dict[str, Any]:
    """Connection settings with no retries and no wait longer than ``timeout``."""
    # The Retry of the client's own kind: redis-py warns at every start when an asyncio
    # client is given a sync one.
    retry = _AsyncRetry(NoBackoff(), 0) if asynchronous else Retry(NoBackoff(), 0)
    # Async: no socket timeouts of redis-py's own. The operation's Deadline bounds it, credited
    # with our loop's lag; a socket timeout is not, and on Python 3.12+ it fires before an
    # answer that came during a stall is read, taking our own stall for Redis being down.
    socket_timeout = None if asynchronous else timeout
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": retry,
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }


def rebuild(client: Any, timeout: float) -> Any:
    """A client of ``client``'s kind on a pool of our own: its address, database, auth and
    TLS, with our bounds. The caller's client is left as it is."""
    asynchronous = isinstance(client, _aredis.Redis)
    module: Any = _aredis if asynchronous else _redis
    pool = client.connection_pool
    kwargs = {
        key: value
        for key, value in pool.connection_kwargs.items()
        if not key.startswith(("maint_", "orig_")) and key not in _UNBOUNDED
    }
    kwargs.update(bounded_kwargs(timeout, asynchronous))
    ours = module.ConnectionPool(
        connection_class=pool.connection_class,
        max_connections=pool.max_connections,
        **kwargs,
    )
    return module.Redis(connection_pool=ours)


def translate(exc: BaseException) -> Exception:
    """The state's exception for an error of redis-py's (or of the socket under it)."""
    if isinstance(exc, StateFull | StateUnavailable):
        return exc
    if isinstance(exc, OutOfMemoryError):
        return StateFull("redis is out of memory (maxmemory)")
    if isinstance(exc, _TimeoutError | asyncio.TimeoutError | TimeoutError):
        return StateUnavailable("timeout")
    if isinstance(exc, ReadOnlyError):
        return StateUnavailable("readonly")
    if isinstance(exc, _ConnectionError | OSError):
        return StateUnavailable("connection")
    if isinstance(exc, RedisError):
        return StateUnavailable("error")
    return StateUnavailable(type(exc).__name__)
