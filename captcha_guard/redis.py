"""RedisState: the breakers, replay guards and budgets of every worker and host, in one Redis.

Needs the ``redis`` extra (``pip install 'captcha-guard[redis]'``, redis-py >= 5).

Theory of operation.

- Every operation is one Lua script the server runs atomically (``_redis_lua.py``; loaded
  with ``EVALSHA``; after ``NOSCRIPT``, from a restart, a failover or ``SCRIPT FLUSH``, the
  same call is sent once as ``EVAL``, which also caches it again). No caller ever reads,
  decides and writes back.
- Replay memory is one sorted set per namespace, so each namespace has its own bounded
  capacity (``max_entries``, ``capacities``) in shared mode too: a full namespace refuses
  (``StateFull``) and never fills the others. Keys expire on the server's clock, plus
  ``clock_skew`` seconds for the hosts' clocks. A missing revocation generation starts at the
  server's clock, never at 0, so a store that lost its data honours no revoked clearance.
- Times come from the server (``redis.call('TIME')`` in the scripts, ``PX`` relative to the
  server's clock), never from the hosts, whose clocks may disagree.
- Every key starts with the prefix and is its own hash tag (``{prefix:kind:...}``): each
  script touches one key, so each runs on one Redis Cluster slot, and keys of two prefixes
  never meet. Every key has a TTL. Replay keys and budget buckets are stored as a 128-bit
  BLAKE2b digest, so no token or client address is written to Redis as such.
- ``timeout`` bounds every operation whatever the client's own settings: our clients
  (``_redis_client.py``) have socket and connect timeouts of ``timeout`` and no retries
  (redis-py's default is 5 s and several retries with back-off), and every async operation
  also runs under a deadline of ``timeout``. A timeout, a refused connection, a ``LOADING``
  or ``READONLY`` server is ``StateUnavailable``; ``OOM`` (a full server under
  ``maxmemory-policy noeviction``) is ``StateFull``: the caller refuses, it does not forget.
  Under ASGI the deadline is credited with our own event loop's lag (``_aio.LoopLag``, as
  provider calls are): an answer that came while the loop was stalled is read, and a loop
  stalled past the credit is ``StateBusy``, never an outage.

The breaker fleet-wide. One hash per breaker holds its state (closed / open / half-open), a
generation, the consecutive failure count, the server time it opened, and the probe lease.
The generation starts at the server's clock in milliseconds when the key is created (so a
key that expired and came back never reuses a generation a late permit still holds) and
grows by one on every transition and on every probe granted, so the result of any call begun
before a transition, or under a probe lease that has since expired and been granted again,
counts for nothing. Half-open grants one probe under a lease of ``lease`` seconds of server
time; a holder that dies lets the lease expire and the next caller probes.

One round trip per passing request: see ``_redis_plans.py``.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Literal

try:
    import redis as _redis
    import redis.asyncio as _aredis
    from redis.asyncio.cluster import RedisCluster as _AsyncCluster
    from redis.cluster import RedisCluster as _SyncCluster
    from redis.exceptions import NoScriptError
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "captcha_guard.redis needs redis-py: pip install 'captcha-guard[redis]'"
    ) from exc

from ._aio import TIMEOUT, Deadline, LoopLag
from ._check import int_arg, seconds_arg
from ._memory import DEFAULT_MAX_ENTRIES
from ._redis_client import ASYNC_POOL_SIZE, bounded_kwargs, rebuild, translate
from ._redis_plans import RedisPlans, _Answered, _Call
from ._state import OP_NAMES, StateBusy, StateOp, StateUnavailable

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: Seconds by which the hosts' clocks may disagree: replay keys live this much longer.
DEFAULT_CLOCK_SKEW = 30.0
InOutage = Literal["refuse", "per_process"]


class RedisState(RedisPlans):
    """Shared state in Redis (or Valkey), for every worker and host using one prefix.

    ``RedisState.from_url(url)`` builds, lazily, the client each door needs: redis.asyncio
    for ``arun`` (ASGI), the sync client for ``run`` (WSGI), so one object serves both.
    ``RedisState(client)`` takes a client you built: a ``redis.asyncio.Redis`` or
    ``redis.asyncio.cluster.RedisCluster`` serves ASGI only, a ``redis.Redis`` or
    ``redis.cluster.RedisCluster`` WSGI only; the doors call ``for_asgi()`` / ``for_wsgi()``
    at construction, which raise ``TypeError`` for the wrong kind (a sync client under ASGI
    would block the event loop). A plain client's connection settings (address, database,
    auth, TLS) are reused in a pool of our own whose timeouts are ``timeout`` and which never
    retries; your client is left as it is. A cluster client is used as given (async: under a
    deadline of ``timeout``, after fetching its slot map once under a deadline of
    ``max(1 s, 10 x timeout)``; sync: build it with ``socket_timeout`` <= ``timeout``).

    ``max_entries`` (and ``capacities``, per namespace) bound each replay namespace;
    ``clock_skew`` is how far the hosts' clocks may disagree. ``in_outage`` is what a real
    outage (down, paused, too slow) means for a security question: ``"refuse"`` (the default:
    503 ``captcha_unavailable``, a clearance ignored) or ``"per_process"`` (each process
    answers from its own memory: a solution may then pass once per worker). A stalled event
    loop is never an outage, whatever this says; the breaker is always kept in process.
    """

    shared = True

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "captcha_guard",
        timeout: float = 0.2,
        breaker_cache_ttl: float = 1.0,
        breaker_cache_permits: int = 8,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        capacities: Mapping[str, int] | None = None,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        in_outage: InOutage = "refuse",
    ) -> None:
        self._check(prefix, timeout, breaker_cache_ttl, breaker_cache_permits)
        for label, size in {"max_entries": max_entries, **(capacities or {})}.items():
            int_arg(size, label)
        seconds_arg(clock_skew, "clock_skew", inclusive=True)
        if in_outage not in ("refuse", "per_process"):
            raise ValueError('in_outage must be "refuse" or "per_process"')
        self.max_entries = max_entries
        self.capacities = dict(capacities or {})
        self.clock_skew = float(clock_skew)
        self.in_outage = in_outage
        self._lags: dict[int, LoopLag] = {}
        self.prefix = prefix
        self.timeout = float(timeout)
        self.breaker_cache_ttl = float(breaker_cache_ttl)
        self.breaker_cache_permits = breaker_cache_permits
        self._url: str | None = None
        self._sync: Any = None
        self._async: Any = None
        self._async_loop: Any = None
        # Tasks beyond the pool's size wait here (within the deadline) for a connection,
        # rather than fail: cheaper than redis-py's BlockingConnectionPool when none wait.
        self._async_slots: asyncio.Semaphore | None = None
        self._cluster_pending = False
        self._cluster_lock: asyncio.Lock | None = None
        if isinstance(client, _AsyncCluster):
            self._async = client
            self._cluster_pending = True
        elif isinstance(client, _aredis.Redis):
            self._async = rebuild(client, self.timeout)
            self._async_slots = asyncio.Semaphore(client.connection_pool.max_connections)
        elif isinstance(client, _SyncCluster):
            self._sync = client
        elif isinstance(client, _redis.Redis):
            self._sync = rebuild(client, self.timeout)
        elif client is not None:
            raise TypeError(
                "client must be a redis.asyncio.Redis, redis.Redis or a RedisCluster, "
                f"not {type(client).__name__}"
            )
        self._lock = threading.Lock()
        self._snapshots = {}
        self._outstanding: dict[str, int] = {}  # permits given and not yet handed back
        self._planners: dict[str, Any] = {name: getattr(self, "_plan_" + name) for name in OP_NAMES}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "captcha_guard",
        timeout: float = 0.2,
        breaker_cache_ttl: float = 1.0,
        breaker_cache_permits: int = 8,
        **options: Any,
    ) -> RedisState:
        """``redis://``, ``rediss://`` or ``unix://`` (with ``?db=N``); clients built lazily.
        ``options``: ``max_entries``, ``capacities``, ``clock_skew``, ``in_outage``."""
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("url must start with redis://, rediss:// or unix://")
        state = cls(
            None,
            prefix=prefix,
            timeout=timeout,
            breaker_cache_ttl=breaker_cache_ttl,
            breaker_cache_permits=breaker_cache_permits,
            **options,
        )
        state._url = url
        # Parse it now so a bad URL fails at start-up, not at the first request.
        _redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
        return state

    @staticmethod
    def _check(prefix: str, timeout: float, cache_ttl: float, cache_permits: int) -> None:
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise ValueError("prefix must be 1 to 64 of A-Z a-z 0-9 _ . -")
        seconds_arg(timeout, "timeout")
        # A wrong type was always the comparison's TypeError here; it stays one.
        seconds_arg(cache_ttl, "breaker_cache_ttl", inclusive=True, wrong_type=TypeError)
        int_arg(cache_permits, "breaker_cache_permits", minimum=0)

    def __repr__(self) -> str:
        return f"RedisState(prefix={self.prefix!r}, timeout={self.timeout})"

    # -- choosing the client per door -------------------------------------------------------

    def for_asgi(self) -> RedisState:
        """This state, checked for use under ASGI (``arun``); TypeError for a sync client."""
        if self._url is None and self._async is None:
            raise TypeError(
                "RedisState was given a sync redis client: it would block the event loop "
                "under ASGI; give it a redis.asyncio client, or use RedisState.from_url"
            )
        return self

    def for_wsgi(self) -> RedisState:
        """This state, checked for use under WSGI (``run``); TypeError for an async client."""
        if self._url is None and self._sync is None:
            raise TypeError(
                "RedisState was given a redis.asyncio client: WSGI needs a sync redis.Redis; "
                "give it one, or use RedisState.from_url"
            )
        return self

    def _sync_client(self) -> Any:
        client = self._sync
        if client is None:
            if self._url is None:
                self.for_wsgi()
            with self._lock:
                if self._sync is None and self._url is not None:
                    self._sync = _redis.Redis.from_url(self._url, **bounded_kwargs(self.timeout))
                client = self._sync
        return client

    def _async_client(self) -> Any:
        if self._url is None:
            if self._async is None:
                self.for_asgi()
            return self._async
        # One client per event loop: a redis.asyncio connection belongs to the loop that
        # opened it (a server's loop; a test's loop).
        loop = asyncio.get_running_loop()
        if self._async_loop is not loop:
            pool = _aredis.ConnectionPool.from_url(
                self._url,
                max_connections=ASYNC_POOL_SIZE,
                **bounded_kwargs(self.timeout, asynchronous=True),
            )
            self._async = _aredis.Redis(connection_pool=pool)
            self._async_slots = asyncio.Semaphore(ASYNC_POOL_SIZE)
            self._async_loop = loop
        return self._async

    def close(self) -> None:
        """Close the sync client's connections (those of a client we built)."""
        if self._sync is not None:
            self._sync.close()

    async def aclose(self) -> None:
        """Close the async client's connections."""
        if self._async is not None:
            await self._async.aclose()

    # -- performing an operation ------------------------------------------------------------

    def run(self, op: StateOp) -> Any:
        plan = self._plan(op)
        if isinstance(plan, _Answered):
            return plan.value
        client = self._sync_client()
        plan.sent = time.monotonic()
        try:
            if plan.script is None:
                reply = client.execute_command(*plan.args)
            else:
                try:
                    reply = client.evalsha(plan.script.sha, 1, *plan.args)
                except NoScriptError:
                    reply = client.eval(plan.script.body, 1, *plan.args)
        except Exception as exc:
            raise translate(exc) from exc
        return plan.parse(reply, plan)

    async def arun(self, op: StateOp) -> Any:
        plan = self._plan(op)
        if isinstance(plan, _Answered):
            return plan.value
        client = self._async_client()
        if self._cluster_pending:
            await self._initialize_cluster(client)
        plan.sent = time.monotonic()
        loop = asyncio.get_running_loop()
        lag = self._lags.get(id(loop))
        if lag is None:
            lag = self._lags[id(loop)] = LoopLag(loop)
        # Only time the loop could run counts against Redis: a stall is credited, as it is
        # for providers (_aio.py), and a loop stalled past the credit is ours (StateBusy).
        deadline = Deadline(loop, lag, self.timeout)
        deadline.start()
        try:
            reply = await self._asend(client, plan, self._async_slots)
        except asyncio.CancelledError:
            problem = deadline.swallow()
            if problem is None:
                raise
            if problem is TIMEOUT:
                raise StateUnavailable("timeout") from None
            raise StateBusy() from None
        except Exception as exc:
            raise translate(exc) from exc
        finally:
            deadline.close()
        return plan.parse(reply, plan)

    async def _initialize_cluster(self, client: Any) -> None:
        # A cluster client fetches the slot map on first use; cut short by the per-operation
        # deadline, redis-py's cluster client is left half-built. So it is fetched once, by
        # one task, under a longer deadline of its own.
        if self._cluster_lock is None:
            self._cluster_lock = asyncio.Lock()
        async with self._cluster_lock:
            if not self._cluster_pending:
                return
            try:
                await asyncio.wait_for(client.initialize(), max(1.0, 10 * self.timeout))
            except Exception as exc:
                raise translate(exc) from exc
            self._cluster_pending = False

    @staticmethod
    async def _asend(client: Any, plan: _Call, slots: asyncio.Semaphore | None) -> Any:
        if slots is not None:
            async with slots:
                return await RedisState._asend(client, plan, None)
        if plan.script is None:
            return await client.execute_command(*plan.args)
        try:
            return await client.evalsha(plan.script.sha, 1, *plan.args)
        except NoScriptError:
            return await client.eval(plan.script.body, 1, *plan.args)


__all__ = ["RedisState"]
