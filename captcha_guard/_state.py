"""State that outlives a request, behind one interface: breakers, replay memory, budgets.

Theory of operation. The gate's decision flow never touches state directly: it names an
operation (``StateOp``) and the front door performs it, ``state.run(op)`` under WSGI or
``await state.arun(op)`` under ASGI, so one flow serves both doors and a backend with I/O
(Redis) plugs in without the flow knowing. Every operation is atomic in its backend; none is
a read-modify-write by the caller. Keys are chosen by the caller and namespaced by use
(``"pow"``, ``"fallback"``, ...), so one backend serves every use without one starving
another: each namespace has its own capacity.

The operations (``StateOp(name, args)``, args positional in this order):

- ``breaker_acquire(name, threshold, reset_timeout, lease=None) -> Permit | None``: leave to
  call the provider, or None (fall back now). A ``Permit`` with ``probe=True`` means the
  circuit is half-open and this caller is the one probe; ``lease`` (seconds, default
  ``DEFAULT_PROBE_LEASE``) is how long a shared backend holds the probe for a caller that
  never comes back (pass the provider's timeout plus a margin).
- ``breaker_record(name, threshold, reset_timeout, permit, ok) -> Transition | None``: the
  call made under ``permit`` ended; returns the state change it caused, if any. A permit
  from an older generation (a call begun before a transition) changes nothing.
- ``breaker_release(name, permit) -> None``: a call abandoned before its answer; frees the
  probe, counts nothing.
- ``breaker_state(name, threshold, reset_timeout) -> State``: read only.
- ``remember(namespace, key, ttl) -> bool``: True the first time ``key`` is seen within
  ``ttl`` seconds, False for a replay; raises ``StateFull`` rather than forget.
- ``spend(namespace, bucket, limit, window) -> bool``: count one in ``bucket`` for the
  current fixed window of ``window`` seconds; True while within ``limit``. Raises
  ``StateFull`` rather than let a bucket through uncounted. One window length per namespace.

A backend that cannot answer raises ``StateUnavailable``; ``FailoverState`` turns that into
the in-process backend's answer, never into "allow". ``StateFull`` is an answer, not an
outage: the caller refuses.

Choosing a backend per door: each door calls ``bind_state(state, door="asgi"|"wsgi",
on_error=...)`` once at construction. It checks the backend can serve that door (a
``TypeError`` otherwise: a sync Redis client under ASGI would block the event loop), and
wraps a shared backend in ``FailoverState`` with a fresh ``MemoryState``.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ._breaker import CircuitBreaker, Permit, State
from ._events import StoreErrorEvent

logger = logging.getLogger("captcha_guard")

#: Seconds a shared backend holds the half-open probe for a caller that never reports back.
DEFAULT_PROBE_LEASE = 10.0
#: Unexpired keys (per namespace) and counted buckets (per namespace) the in-process state
#: holds before it refuses new ones.
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_BUCKETS = 100_000

Door = Literal["asgi", "wsgi"]


class StateFull(Exception):
    """The backend cannot record one more key or bucket before some expire."""


class StateUnavailable(Exception):
    """The backend did not answer (down, slow, refused): the kind is in ``kind``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Transition:
    """A breaker moved from ``old`` to ``new``."""

    old: State
    new: State


@dataclass(frozen=True, slots=True)
class StateOp:
    """One operation on shared state: the name of a backend method and its arguments."""

    name: str
    args: tuple[Any, ...]


OP_NAMES = frozenset(
    {
        "breaker_acquire",
        "breaker_record",
        "breaker_release",
        "breaker_state",
        "remember",
        "spend",
        "read_counter",
        "bump_counter",
    }
)


@runtime_checkable
class SharedState(Protocol):
    """A state backend: each operation in a sync and an async form."""

    def run(self, op: StateOp) -> Any: ...

    async def arun(self, op: StateOp) -> Any: ...


class _Expiring:
    """Keys until they expire, at most ``capacity`` at once; refuses rather than forgets."""

    __slots__ = ("_expiry", "_queue", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []  # a heap: soonest expiry first

    def remember(self, key: str, ttl: float, now: float) -> bool:
        self._drop(now)
        if key in self._expiry:
            return False
        if len(self._expiry) >= self.capacity:
            raise StateFull(f"{self.capacity} unexpired entries")
        expires = now + ttl
        self._expiry[key] = expires
        heapq.heappush(self._queue, (expires, key))
        return True

    def seen(self, key: str, now: float) -> bool:
        self._drop(now)
        return key in self._expiry

    def __len__(self) -> int:
        return len(self._expiry)

    def _drop(self, now: float) -> None:
        # Kept while now <= expiry: the same instant a challenge or token is still valid.
        queue = self._queue
        while queue and queue[0][0] < now:
            _, key = heapq.heappop(queue)
            self._expiry.pop(key, None)


class _Windows:
    """Fixed-window counts per bucket, at most ``capacity`` buckets in the current window."""

    __slots__ = ("_counts", "_index", "_length", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._length = 0.0
        self._index = -1
        self._counts: dict[str, int] = {}

    def spend(self, bucket: str, limit: int, window: float, now: float) -> bool:
        index = int(now // window)
        if index != self._index or window != self._length:
            # A new window: every count is stale at once.
            self._index, self._length, self._counts = index, window, {}
        count = self._counts.get(bucket)
        if count is None:
            if len(self._counts) >= self.capacity:
                raise StateFull(f"{self.capacity} buckets counted in this window")
            count = 0
        if count >= limit:
            return False
        self._counts[bucket] = count + 1
        return True


class MemoryState:
    """The in-process backend: today's semantics, no I/O, for one process only.

    Breakers are ``CircuitBreaker`` objects per name; replay memory and budgets are bounded
    per namespace (``max_entries`` unexpired keys, ``max_buckets`` buckets in the current
    window) and refuse (``StateFull``) rather than forget. One lock guards it all: every
    operation is a few dictionary steps, never a wait.
    """

    shared = False

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for label, value in (("max_entries", max_entries), ("max_buckets", max_buckets)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{label} must be an integer >= 1")
        self.max_entries = max_entries
        self.max_buckets = max_buckets
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._memory: dict[str, _Expiring] = {}
        self._windows: dict[str, _Windows] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self._ops: dict[str, Callable[..., Any]] = {name: getattr(self, name) for name in OP_NAMES}

    def __repr__(self) -> str:
        return f"MemoryState(max_entries={self.max_entries}, max_buckets={self.max_buckets})"

    def for_asgi(self) -> MemoryState:
        return self

    def for_wsgi(self) -> MemoryState:
        return self

    def run(self, op: StateOp) -> Any:
        try:
            method = self._ops[op.name]
        except KeyError:
            raise ValueError(f"unknown state operation {op.name!r}") from None
        return method(*op.args)

    async def arun(self, op: StateOp) -> Any:
        return self.run(op)

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def bind_breaker(self, name: str, breaker: CircuitBreaker) -> None:
        """Use this ``CircuitBreaker`` object for ``name`` (a provider's own ``breaker=``),
        so that reading ``breaker.state`` keeps telling the truth in one process."""
        if not isinstance(breaker, CircuitBreaker):
            raise TypeError("breaker must be a CircuitBreaker")
        with self._lock:
            self._breakers[name] = breaker

    def _breaker(self, name: str, threshold: int, reset_timeout: float) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(threshold, reset_timeout, clock=self._clock)
            self._breakers[name] = breaker
        else:
            # A new configuration for the same name takes effect without losing the state.
            breaker.failure_threshold = threshold
            breaker.reset_timeout = float(reset_timeout)
        return breaker

    def breaker_acquire(
        self, name: str, threshold: int, reset_timeout: float, lease: float | None = None
    ) -> Permit | None:
        # A dead holder takes its process with it: no lease needed in one process.
        with self._lock:
            return self._breaker(name, threshold, reset_timeout).acquire()

    def breaker_record(
        self, name: str, threshold: int, reset_timeout: float, permit: Permit, ok: bool
    ) -> Transition | None:
        with self._lock:
            breaker = self._breaker(name, threshold, reset_timeout)
            old = breaker.state
            breaker.record(permit, ok=ok)
            new = breaker.state
        return None if old is new else Transition(old, new)

    def breaker_release(self, name: str, permit: Permit) -> None:
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is not None:
                breaker.release(permit)

    def breaker_state(self, name: str, threshold: int, reset_timeout: float) -> State:
        with self._lock:
            return self._breaker(name, threshold, reset_timeout).state

    def remember(self, namespace: str, key: str, ttl: float) -> bool:
        with self._lock:
            memory = self._memory.get(namespace)
            if memory is None:
                memory = self._memory[namespace] = _Expiring(self.max_entries)
            return memory.remember(key, ttl, self._clock())

    def spend(self, namespace: str, bucket: str, limit: int, window: float) -> bool:
        with self._lock:
            windows = self._windows.get(namespace)
            if windows is None:
                windows = self._windows[namespace] = _Windows(self.max_buckets)
            return windows.spend(bucket, limit, window, self._clock())

    def read_counter(self, namespace: str, key: str) -> int:
        """A counter that never expires (a clearance revocation generation); 0 if unset."""
        with self._lock:
            return self._counters.get((namespace, key), 0)

    def bump_counter(self, namespace: str, key: str) -> int:
        """Add one to the counter; its new value."""
        with self._lock:
            value = self._counters.get((namespace, key), 0) + 1
            self._counters[(namespace, key)] = value
            return value

    def seen(self, namespace: str, key: str) -> bool:
        """Whether ``key`` is remembered and unexpired (not an operation; never records)."""
        with self._lock:
            memory = self._memory.get(namespace)
            return memory is not None and memory.seen(key, self._clock())

    def remembered(self, namespace: str) -> int:
        """How many unexpired keys ``namespace`` holds right now."""
        with self._lock:
            memory = self._memory.get(namespace)
            if memory is None:
                return 0
            memory._drop(self._clock())
            return len(memory)


@dataclass(frozen=True)
class _LocalPermit(Permit):
    """A permit the in-process state gave during an outage: recorded there, not shared."""


_STORE_OF_OP = {
    "breaker_acquire": "breaker",
    "breaker_record": "breaker",
    "breaker_release": "breaker",
    "breaker_state": "breaker",
    "remember": "replay",
    "spend": "fallback_budget",
    "read_counter": "clearance",
    "bump_counter": "clearance",
}


class FailoverState:
    """A shared backend that falls back to the in-process one when it cannot answer.

    ``primary`` raises ``StateUnavailable`` within its own timeout when it is down or slow;
    this wrapper then answers from ``local`` and skips the primary for ``backoff`` seconds,
    after which one caller tries it again while the others stay local (so a dead server
    costs one timeout per back-off, not one per request). Answers are never "allow because
    the primary did not answer": they are the in-process state's answers, today's behaviour.

    Replays: a key remembered locally during an outage stays remembered locally until it
    expires, and ``remember`` consults that memory even once the primary is back, so what
    passed here in an outage does not pass here again. (Another worker never saw it: that
    is what an outage can lose; SECURITY.md says so.)

    Breaker permits given locally are recorded and released locally.

    Logging: ERROR when an outage starts, then at most once per ``log_interval`` with the
    count of operations answered in-process; WARNING when the primary answers again. Each
    failed attempt calls ``on_error`` with a ``StoreErrorEvent`` (kind only, never a key).
    """

    shared = True

    def __init__(
        self,
        primary: Any,
        local: MemoryState | None = None,
        *,
        backoff: float = 1.0,
        log_interval: float = 60.0,
        on_error: Callable[[StoreErrorEvent], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backoff >= 0 or not log_interval > 0:
            raise ValueError("backoff must be >= 0 and log_interval > 0 seconds")
        self.primary = primary
        self.local = local if local is not None else MemoryState()
        self.backoff = float(backoff)
        self.log_interval = float(log_interval)
        self.on_error = on_error
        self._clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._skip_until = 0.0
        self._trying = False
        self._logged_at = 0.0
        self._local_answers = 0  # since the last log line

    def __repr__(self) -> str:
        return f"FailoverState({self.primary!r}, {self.local!r})"

    @property
    def outage(self) -> bool:
        """Whether the primary is considered down right now."""
        return self._down_since is not None

    def for_asgi(self) -> FailoverState:
        self.primary.for_asgi()
        return self

    def for_wsgi(self) -> FailoverState:
        self.primary.for_wsgi()
        return self

    def close(self) -> None:
        close = getattr(self.primary, "close", None)
        if close is not None:
            close()

    async def aclose(self) -> None:
        aclose = getattr(self.primary, "aclose", None)
        if aclose is not None:
            await aclose()

    def run(self, op: StateOp) -> Any:
        attempt = None if self._is_local(op) else self._attempt()
        if attempt is None:
            return self._local(op, skipped=True)
        try:
            result = self.primary.run(op)
        except StateFull:
            raise
        except Exception as exc:
            # Whatever went wrong, the in-process state answers: never a 500, never "allow".
            self._failed(op, exc.kind if isinstance(exc, StateUnavailable) else "error")
            return self._local(op)
        finally:
            if attempt:
                self._tried()
        self._answered()
        return self._merge(op, result)

    async def arun(self, op: StateOp) -> Any:
        attempt = None if self._is_local(op) else self._attempt()
        if attempt is None:
            return self._local(op, skipped=True)
        try:
            result = await self.primary.arun(op)
        except StateFull:
            raise
        except Exception as exc:
            # Whatever went wrong, the in-process state answers: never a 500, never "allow".
            self._failed(op, exc.kind if isinstance(exc, StateUnavailable) else "error")
            return self._local(op)
        finally:
            if attempt:
                self._tried()
        self._answered()
        return self._merge(op, result)

    def abandon(self, name: str, permit: Permit) -> None:
        """A call made under ``permit`` was cancelled while out, and the flow is closing: no
        I/O is possible. A permit from the in-process state frees its probe there (else that
        breaker, half-open, never probes again); the primary's stops being counted (its probe
        lease, on the server, expires on its own)."""
        if isinstance(permit, _LocalPermit):
            self.local.breaker_release(name, permit)
            return
        forget = getattr(self.primary, "forget_permit", None)
        if forget is not None:
            forget(name, permit)

    @staticmethod
    def _is_local(op: StateOp) -> bool:
        # A permit from the in-process state goes back where it came from.
        if op.name == "breaker_record":
            return isinstance(op.args[3], _LocalPermit)
        if op.name == "breaker_release":
            return isinstance(op.args[1], _LocalPermit)
        return False

    def _local(self, op: StateOp, *, skipped: bool = False) -> Any:
        if op.name not in _STORE_OF_OP:
            raise ValueError(f"unknown state operation {op.name!r}")
        if skipped and op.name in ("breaker_record", "breaker_release"):
            permit = op.args[3] if op.name == "breaker_record" else op.args[1]
            forget = getattr(self.primary, "forget_permit", None)
            if forget is not None and not isinstance(permit, _LocalPermit):
                # The primary's permit, handed back here without asking the primary (which
                # counts it off by itself when it is asked): it stops counting it.
                forget(op.args[0], permit)
        result = self.local.run(op)
        if op.name == "breaker_acquire" and result is not None:
            return _LocalPermit(probe=result.probe, generation=result.generation)
        return result

    def _merge(self, op: StateOp, result: Any) -> Any:
        if op.name == "remember" and result is True:
            namespace, key = op.args[0], op.args[1]
            # Let through here during an outage: still a replay here, whatever Redis says.
            if self.local.seen(namespace, key):
                return False
        return result

    def _attempt(self) -> bool | None:
        """None: answer locally. False: ask the primary. True: ask it as the one caller
        that tries it again after a back-off (the others stay local meanwhile)."""
        if self._down_since is None:
            return False
        with self._lock:
            if self._down_since is None:
                return False
            now = self._clock()
            if self._trying or now < self._skip_until:
                self._local_answers += 1
                self._maybe_log(now)
                return None
            self._trying = True
            return True

    def _tried(self) -> None:
        # On every exit of the retrying attempt, whatever was raised, so one attempt never
        # strands the others on the local state.
        with self._lock:
            self._trying = False

    def _failed(self, op: StateOp, kind: str) -> None:
        with self._lock:
            now = self._clock()
            self._skip_until = now + self.backoff
            self._local_answers += 1
            if self._down_since is None:
                self._down_since = now
                self._logged_at = now
                self._local_answers = 0
                logger.error(
                    "captcha_guard shared state unavailable (%s): using the in-process state, "
                    "retrying every %.1fs",
                    kind,
                    self.backoff,
                )
            else:
                self._maybe_log(now)
        if self.on_error is not None:
            try:
                self.on_error(StoreErrorEvent(store=_STORE_OF_OP.get(op.name, op.name), error=kind))
            except Exception:
                logger.exception("captcha_guard store_error hook failed")

    def _maybe_log(self, now: float) -> None:
        if now - self._logged_at >= self.log_interval:
            logger.error(
                "captcha_guard shared state still unavailable after %.0fs: "
                "%d operations answered by the in-process state in the last %.0fs",
                now - (self._down_since or now),
                self._local_answers,
                now - self._logged_at,
            )
            self._logged_at = now
            self._local_answers = 0

    def _answered(self) -> None:
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            now = self._clock()
            logger.warning(
                "captcha_guard shared state is back after %.1fs; sharing resumed",
                now - self._down_since,
            )
            self._down_since = None
            self._local_answers = 0


def bind_state(
    state: Any,
    *,
    door: Door,
    on_error: Callable[[StoreErrorEvent], object] | None = None,
) -> MemoryState | FailoverState:
    """The backend a door performs its operations on, chosen once at construction.

    ``None``: a fresh in-process ``MemoryState``. A shared backend (``RedisState``): checked
    for this door (``TypeError`` for a client of the wrong kind) and wrapped in a
    ``FailoverState`` with its own in-process state, reporting errors to ``on_error``.
    """
    if door not in ("asgi", "wsgi"):
        raise ValueError("door must be 'asgi' or 'wsgi'")
    if state is None:
        return MemoryState()
    if isinstance(state, MemoryState | FailoverState):
        return state.for_asgi() if door == "asgi" else state.for_wsgi()
    check = getattr(state, "for_asgi" if door == "asgi" else "for_wsgi", None)
    if check is None or not isinstance(state, SharedState):
        raise TypeError(
            f"state must be a captcha_guard.redis.RedisState or None, not {type(state).__name__}"
        )
    return FailoverState(check(), MemoryState(), on_error=on_error)


__all__ = [
    "DEFAULT_PROBE_LEASE",
    "OP_NAMES",
    "FailoverState",
    "MemoryState",
    "SharedState",
    "StateFull",
    "StateOp",
    "StateUnavailable",
    "Transition",
    "bind_state",
]
