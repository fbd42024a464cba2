"""RedisState: the breakers, replay guards and budgets of every worker and host, in one Redis.

Needs the ``redis`` extra (``pip install 'captcha-guard[redis]'``, redis-py >= 5).

Theory of operation.

- Every operation is one command the server runs atomically: ``SET key 1 NX PX ttl`` for
  ``remember``, a Lua script for the breaker and for budgets (loaded with ``EVALSHA``; after
  ``NOSCRIPT``, from a restart, a failover or ``SCRIPT FLUSH``, the same call is sent once as
  ``EVAL``, which also caches it again). No caller ever reads, decides and writes back.
- Times come from the server (``redis.call('TIME')`` in the scripts, ``PX`` relative to the
  server's clock), never from the hosts, whose clocks may disagree.
- Every key starts with the prefix and is its own hash tag (``{prefix:kind:...}``): each
  script touches one key, so each runs on one Redis Cluster slot, and keys of two prefixes
  never meet. Every key has a TTL. Replay keys and budget buckets are stored as a 128-bit
  BLAKE2b digest, so no token or client address is written to Redis as such.
- ``timeout`` bounds every operation whatever the client's own settings: the clients we use
  have socket and connect timeouts of ``timeout`` and no retries (redis-py's default is 5 s
  and several retries with back-off), and every async operation also runs under a deadline
  of ``timeout``. A timeout, a refused connection, a ``LOADING`` or ``READONLY`` server is
  ``StateUnavailable``; ``OOM`` (a full server under ``maxmemory-policy noeviction``) is
  ``StateFull``: the caller refuses, it does not forget.

The breaker fleet-wide. One hash per breaker holds its state (closed / open / half-open), a
generation, the consecutive failure count, the server time it opened, and the probe lease.
The generation starts at the server's clock in milliseconds when the key is created (so a
key that expired and came back never reuses a generation a late permit still holds) and
grows by one on every transition and on every probe granted, so the result of any call begun
before a transition, or under a probe lease that has since expired and been granted again,
counts for nothing. Half-open grants one probe under a lease of ``lease`` seconds of server
time; a holder that dies lets the lease expire and the next caller probes.

One round trip per passing request. Each process keeps, per breaker, the last state a reply
showed (a snapshot) and counts the permits it holds that are not yet recorded or released.
While the snapshot shows closed, is younger than ``breaker_cache_ttl`` seconds, and fewer
than ``breaker_cache_permits`` permits are outstanding, ``acquire`` is answered locally; the
``record`` that follows is the one round trip, and its reply refreshes the snapshot. While
the snapshot shows open, ``acquire`` answers None locally until the server's reopening time
(converted to a local deadline that can only end early). Anything else asks the server.

The race this allows, and why it is small. When the fleet's circuit opens at time T, every
reply the server computes after T says open, and a process that receives one stops at once.
Until then a process grants locally only while fewer than ``breaker_cache_permits`` of its
permits are outstanding, and only within ``breaker_cache_ttl`` of its last reply; the calls
it had in flight at T free slots as they finish. So after T a process starts at most
``breaker_cache_permits + (its calls in flight at T)`` calls, and a failing provider is called
at most ``failure_threshold + 2 x (calls in flight fleet-wide at T) + processes x
breaker_cache_permits`` times in all, the in-flight part being there in one process too. A
process that calls one at a time (outstanding <= 1) adds nothing beyond its one call in
flight: the reply to that call says open. ``breaker_cache_permits=0`` makes every
``acquire`` a round trip (two per request).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

try:
    import redis as _redis
    import redis.asyncio as _aredis
    from redis.asyncio.cluster import RedisCluster as _AsyncCluster
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster as _SyncCluster
    from redis.exceptions import (
        ConnectionError as _ConnectionError,
    )
    from redis.exceptions import (
        NoScriptError,
        OutOfMemoryError,
        ReadOnlyError,
        RedisError,
    )
    from redis.exceptions import (
        TimeoutError as _TimeoutError,
    )
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError(
        "captcha_guard.redis needs redis-py: pip install 'captcha-guard[redis]'"
    ) from exc

from ._breaker import Permit, State
from ._state import (
    DEFAULT_PROBE_LEASE,
    OP_NAMES,
    StateFull,
    StateOp,
    StateUnavailable,
    Stored,
    Transition,
)

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")
#: ":" too: ProofOfWork's levels above the first are "pow:1", "pow:2". Unambiguous, as the
#: digest that follows a namespace in a key is hex, never holding a ":".
_NAMESPACE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: A breaker key lives this long past its last write: long enough that a circuit's state
#: (and its failure count) is never forgotten while it matters.
_BREAKER_TTL_MS = 86_400_000
#: Connections per event loop; more concurrent operations wait for one, within the deadline.
_ASYNC_POOL_SIZE = 100

_BREAKER_LUA = """
-- KEYS[1]: the breaker's hash. ARGV: op, threshold, reset_ms, lease_ms, ttl_ms, generation,
-- probe, ok. Fields: s state (c/o/h), g generation, f failures, o opened at (ms), p probe
-- lease until (ms). Replies: {state, generation, granted, probe, open_ms_left} for acquire,
-- {old_state, state, generation, open_ms_left} for record, {state, generation, open_ms_left}
-- for state, {state, generation} for release.
local function int(x) return string.format('%.0f', x) end
local key, op = KEYS[1], ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', key, 's', 'g', 'f', 'o', 'p')
local s, g = h[1], tonumber(h[2])
local f, opened, lease_until = tonumber(h[3]) or 0, tonumber(h[4]) or 0, tonumber(h[5]) or 0
local reset = tonumber(ARGV[3])
local dirty = false
if not s then
  if op == 'state' then return {'c', 0, 0} end
  s, g, f, dirty = 'c', now, 0, true
end
if s == 'o' and now - opened >= reset then
  if op == 'state' then return {'h', g, 0} end
  s, g, lease_until, dirty = 'h', g + 1, 0, true
end
local reply
if op == 'acquire' then
  if s == 'c' then
    reply = {'c', g, 1, 0, 0}
  elseif s == 'h' then
    if lease_until <= now then
      g, lease_until, dirty = g + 1, now + tonumber(ARGV[4]), true
      reply = {'h', g, 1, 1, 0}
    else
      reply = {'h', g, 0, 0, 0}
    end
  else
    reply = {'o', g, 0, 0, opened + reset - now}
  end
elseif op == 'record' then
  local old = s
  if tonumber(ARGV[6]) == g then
    if ARGV[8] == '1' then
      if s == 'h' then
        s, g, f, lease_until, dirty = 'c', g + 1, 0, 0, true
      elseif f > 0 then
        f, dirty = 0, true
      end
    elseif s ~= 'o' then
      f, dirty = f + 1, true
      if s == 'h' or f >= tonumber(ARGV[2]) then
        s, g, f, opened, lease_until = 'o', g + 1, 0, now, 0
      end
    end
  end
  local left = 0
  if s == 'o' then left = opened + reset - now end
  reply = {old, s, g, left}
elseif op == 'release' then
  if ARGV[7] == '1' and s == 'h' and tonumber(ARGV[6]) == g and lease_until > 0 then
    lease_until, dirty = 0, true
  end
  reply = {s, g}
else
  local left = 0
  if s == 'o' then left = opened + reset - now end
  reply = {s, g, left}
end
if dirty then
  redis.call('HSET', key, 's', s, 'g', int(g), 'f', int(f), 'o', int(opened), 'p', int(lease_until))
  redis.call('PEXPIRE', key, ARGV[5])
end
return reply
"""

_SPEND_LUA = """
-- KEYS[1]: the bucket's hash. ARGV: limit, window_ms. Fields: w window index, n count.
-- Reply: 1 within the limit (counted), 0 over it.
local function int(x) return string.format('%.0f', x) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local index = math.floor(now / window)
local h = redis.call('HMGET', KEYS[1], 'w', 'n')
local n = 0
if tonumber(h[1]) == index then n = tonumber(h[2]) or 0 end
if n >= tonumber(ARGV[1]) then return 0 end
if n == 0 then
  redis.call('HSET', KEYS[1], 'w', int(index), 'n', 1)
  redis.call('PEXPIREAT', KEYS[1], int((index + 1) * window))
else
  redis.call('HINCRBY', KEYS[1], 'n', 1)
end
return 1
"""


@dataclass(frozen=True)
class _Script:
    body: str
    sha: str


def _script(body: str) -> _Script:
    return _Script(body, hashlib.sha1(body.encode()).hexdigest())


_BREAKER = _script(_BREAKER_LUA)
_SPEND = _script(_SPEND_LUA)
_STATES = {"c": State.CLOSED, "o": State.OPEN, "h": State.HALF_OPEN}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _digest(value: str) -> str:
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class _Snapshot:
    """The last breaker state a reply showed this process (see the module docstring)."""

    __slots__ = ("generation", "open_until", "state", "valid_until")

    def __init__(self, state: str, generation: int, valid_until: float, open_until: float):
        self.state = state
        self.generation = generation
        self.valid_until = valid_until
        self.open_until = open_until


class _Call:
    """One Redis command an operation needs, and what to make of its reply."""

    __slots__ = ("args", "parse", "script", "sent")

    def __init__(self, script: _Script | None, args: tuple[Any, ...], parse: Any) -> None:
        self.script = script
        self.args = args
        self.parse = parse
        self.sent = 0.0


class _Answered:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_SYNC_KINDS = (_redis.Redis, _SyncCluster)
_ASYNC_KINDS = (_aredis.Redis, _AsyncCluster)
_BOUNDED_POOL_DROP = ("retry", "retry_on_timeout", "retry_on_error", "health_check_interval")


def _bounded_kwargs(timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }


class RedisState:
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
    ) -> None:
        self._check(prefix, timeout, breaker_cache_ttl, breaker_cache_permits)
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
            self._async = self._rebuild(client, _aredis)
        elif isinstance(client, _SyncCluster):
            self._sync = client
        elif isinstance(client, _redis.Redis):
            self._sync = self._rebuild(client, _redis)
        elif client is not None:
            raise TypeError(
                "client must be a redis.asyncio.Redis, redis.Redis or a RedisCluster, "
                f"not {type(client).__name__}"
            )
        self._lock = threading.Lock()
        self._snapshots: dict[str, _Snapshot] = {}
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
    ) -> RedisState:
        """``redis://``, ``rediss://`` or ``unix://`` (with ``?db=N``); clients built lazily."""
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("url must start with redis://, rediss:// or unix://")
        state = cls(
            None,
            prefix=prefix,
            timeout=timeout,
            breaker_cache_ttl=breaker_cache_ttl,
            breaker_cache_permits=breaker_cache_permits,
        )
        state._url = url
        # Parse it now so a bad URL fails at start-up, not at the first request.
        _redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
        return state

    @staticmethod
    def _check(prefix: str, timeout: float, cache_ttl: float, cache_permits: int) -> None:
        if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
            raise ValueError("prefix must be 1 to 64 of A-Z a-z 0-9 _ . -")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError("timeout must be > 0 seconds")
        if not cache_ttl >= 0:
            raise ValueError("breaker_cache_ttl must be >= 0 seconds")
        if isinstance(cache_permits, bool) or not isinstance(cache_permits, int):
            raise ValueError("breaker_cache_permits must be an integer >= 0")
        if cache_permits < 0:
            raise ValueError("breaker_cache_permits must be an integer >= 0")

    def _rebuild(self, client: Any, module: Any) -> Any:
        pool = client.connection_pool
        kwargs = {
            key: value
            for key, value in pool.connection_kwargs.items()
            if not key.startswith(("maint_", "orig_")) and key not in _BOUNDED_POOL_DROP
        }
        kwargs.update(_bounded_kwargs(self.timeout))
        ours = module.ConnectionPool(
            connection_class=pool.connection_class,
            max_connections=pool.max_connections,
            **kwargs,
        )
        if module is _aredis:
            self._async_slots = asyncio.Semaphore(pool.max_connections)
        return module.Redis(connection_pool=ours)

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
                    self._sync = _redis.Redis.from_url(self._url, **_bounded_kwargs(self.timeout))
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
                self._url, max_connections=_ASYNC_POOL_SIZE, **_bounded_kwargs(self.timeout)
            )
            self._async = _aredis.Redis(connection_pool=pool)
            self._async_slots = asyncio.Semaphore(_ASYNC_POOL_SIZE)
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
            raise self._translate(exc) from exc
        return plan.parse(reply, plan)

    async def arun(self, op: StateOp) -> Any:
        plan = self._plan(op)
        if isinstance(plan, _Answered):
            return plan.value
        client = self._async_client()
        if self._cluster_pending:
            await self._initialize_cluster(client)
        plan.sent = time.monotonic()
        try:
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(self.timeout):
                    reply = await self._asend(client, plan, self._async_slots)
            else:  # pragma: no cover - Python 3.10
                send = self._asend(client, plan, self._async_slots)
                reply = await asyncio.wait_for(send, self.timeout)
        except Exception as exc:
            raise self._translate(exc) from exc
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
                raise self._translate(exc) from exc
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

    @staticmethod
    def _translate(exc: BaseException) -> Exception:
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

    def _plan(self, op: StateOp) -> _Call | _Answered:
        try:
            planner = self._planners[op.name]
        except KeyError:
            raise ValueError(f"unknown state operation {op.name!r}") from None
        result: _Call | _Answered = planner(*op.args)
        return result

    # -- keys -------------------------------------------------------------------------------

    def _key(self, kind: str, *parts: str) -> str:
        return "{" + self.prefix + ":" + kind + ":" + ":".join(parts) + "}"

    @staticmethod
    def _namespace(namespace: str) -> str:
        if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
            raise ValueError("a state namespace is 1 to 64 of A-Z a-z 0-9 _ . : -")
        return namespace

    # -- the breaker ------------------------------------------------------------------------

    def _breaker_args(
        self, name: str, op: str, threshold: int, reset_timeout: float, lease: float
    ) -> list[Any]:
        reset_ms = int(reset_timeout * 1000)
        lease_ms = _ms(lease)
        ttl = max(_BREAKER_TTL_MS, 2 * reset_ms + lease_ms)
        return [self._key("breaker", name), op, threshold, reset_ms, lease_ms, ttl]

    def _plan_breaker_acquire(
        self, name: str, threshold: int, reset_timeout: float, lease: float | None = None
    ) -> _Call | _Answered:
        now = time.monotonic()
        with self._lock:
            snap = self._snapshots.get(name)
            if snap is not None:
                if snap.state == "c":
                    held = self._outstanding.get(name, 0)
                    if now < snap.valid_until and held < self.breaker_cache_permits:
                        self._outstanding[name] = held + 1
                        return _Answered(Permit(probe=False, generation=snap.generation))
                elif snap.state == "o" and now < snap.open_until:
                    return _Answered(None)
        args = self._breaker_args(
            name,
            "acquire",
            threshold,
            reset_timeout,
            DEFAULT_PROBE_LEASE if lease is None else lease,
        )
        return _Call(_BREAKER, (*args, 0, 0, 0), self._parse_acquire(name))

    def _parse_acquire(self, name: str) -> Any:
        def parse(reply: list[Any], call: _Call) -> Permit | None:
            state, generation = _text(reply[0]), int(reply[1])
            self._remember_snapshot(name, state, generation, int(reply[4]), call.sent)
            if not int(reply[2]):
                return None
            probe = bool(int(reply[3]))
            if not probe:
                with self._lock:
                    self._outstanding[name] = self._outstanding.get(name, 0) + 1
            return Permit(probe=probe, generation=generation)

        return parse

    def _plan_breaker_record(
        self, name: str, threshold: int, reset_timeout: float, permit: Permit, ok: bool
    ) -> _Call:
        self.forget_permit(name, permit)
        args = self._breaker_args(name, "record", threshold, reset_timeout, DEFAULT_PROBE_LEASE)
        flags = (permit.generation, int(permit.probe), int(bool(ok)))
        return _Call(_BREAKER, (*args, *flags), self._parse_record(name))

    def _parse_record(self, name: str) -> Any:
        def parse(reply: list[Any], call: _Call) -> Transition | None:
            old, new, generation = _text(reply[0]), _text(reply[1]), int(reply[2])
            self._remember_snapshot(name, new, generation, int(reply[3]), call.sent)
            return None if old == new else Transition(_STATES[old], _STATES[new])

        return parse

    def _plan_breaker_release(self, name: str, permit: Permit) -> _Call | _Answered:
        if not permit.probe:
            self.forget_permit(name, permit)
            return _Answered(None)  # only a probe holds anything on the server
        args = self._breaker_args(name, "release", 1, 0.0, DEFAULT_PROBE_LEASE)
        return _Call(_BREAKER, (*args, permit.generation, 1, 0), lambda reply, call: None)

    def _plan_breaker_state(self, name: str, threshold: int, reset_timeout: float) -> _Call:
        args = self._breaker_args(name, "state", threshold, reset_timeout, DEFAULT_PROBE_LEASE)
        return _Call(_BREAKER, (*args, 0, 0, 0), self._parse_state(name))

    def _parse_state(self, name: str) -> Any:
        def parse(reply: list[Any], call: _Call) -> State:
            # A state reply is as fresh as any other: an acquire that follows one saying
            # half-open must ask the server, not an older snapshot that still says open.
            state, generation = _text(reply[0]), int(reply[1])
            if generation:  # 0: no breaker key on the server, nothing to remember
                self._remember_snapshot(name, state, generation, int(reply[2]), call.sent)
            return _STATES[state]

        return parse

    def forget_permit(self, name: str, permit: Permit) -> None:
        """``permit`` is handed back (recorded or released, here or elsewhere): no I/O.

        ``FailoverState`` calls it when it records one of our permits in-process during an
        outage, so the count of outstanding permits does not leak."""
        if permit.probe:
            return
        with self._lock:
            held = self._outstanding.get(name, 0)
            if held > 1:
                self._outstanding[name] = held - 1
            else:
                self._outstanding.pop(name, None)

    def _remember_snapshot(
        self, name: str, state: str, generation: int, open_ms_left: int, sent: float
    ) -> None:
        # ``sent`` precedes the server's clock reading, and the script reads that clock in
        # whole milliseconds (the time left may be up to 1 ms less than it says), so a
        # deadline of ``sent`` plus one millisecond less than the time left can only end
        # early, never late.
        with self._lock:
            snap = self._snapshots.get(name)
            if snap is not None and snap.generation > generation:
                return  # a reply that left the server before the one we already hold
            if state == "h":
                self._snapshots.pop(name, None)
                return
            self._snapshots[name] = _Snapshot(
                state,
                generation,
                sent + self.breaker_cache_ttl,
                sent + max(0, open_ms_left - 1) / 1000,
            )

    # -- replay memory and budgets ----------------------------------------------------------

    def _plan_remember(self, namespace: str, key: str, ttl: float) -> _Call:
        redis_key = self._key("replay", self._namespace(namespace), _digest(key))
        return _Call(
            None,
            ("SET", redis_key, b"1", "PX", _ms(ttl), "NX"),
            lambda reply, call: Stored(reply is not None),
        )

    def _plan_spend(self, namespace: str, bucket: str, limit: int, window: float) -> _Call:
        redis_key = self._key("budget", self._namespace(namespace), _digest(bucket))
        return _Call(
            _SPEND, (redis_key, int(limit), _ms(window)), lambda reply, call: bool(int(reply))
        )

    # -- counters (clearance revocation) ---------------------------------------------------

    def _plan_read_counter(self, namespace: str, key: str) -> _Call:
        redis_key = self._key("counter", self._namespace(namespace), _digest(key))
        return _Call(None, ("GET", redis_key), lambda reply, call: int(reply or 0))

    def _plan_bump_counter(self, namespace: str, key: str) -> _Call:
        # No TTL, on purpose: a revocation generation must outlive every cookie it revoked.
        redis_key = self._key("counter", self._namespace(namespace), _digest(key))
        return _Call(None, ("INCR", redis_key), lambda reply, call: int(reply))


__all__ = ["RedisState"]
