"""MemoryState: the in-process state backend, every door's default.

No I/O. Breakers are ``CircuitBreaker`` objects per name; replay memory and counts are
bounded per namespace and refuse (``StateFull``) rather than forget, since a forgotten key is
a replay let through and a forgotten count is a budget refilled. One lock guards it all:
every operation is a few dictionary steps, never a wait.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._breaker import CircuitBreaker, Permit, State
from ._check import int_arg
from ._state import OP_NAMES, StateFull, StateOp, Stored, Transition

#: Unexpired keys (per namespace) and counted buckets (per namespace) held before refusing.
DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_MAX_BUCKETS = 100_000


class _Expiring:
    """Keys until they expire, at most ``capacity`` at once; refuses rather than forgets."""

    __slots__ = ("_expiry", "_queue", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []  # a heap: soonest expiry first

    def remember(self, key: str, ttl: float, now: float) -> Stored:
        self.drop(now)
        if key in self._expiry:
            return Stored(False, len(self._expiry) / self.capacity)
        if len(self._expiry) >= self.capacity:
            raise StateFull(f"{self.capacity} unexpired entries")
        expires = now + ttl
        self._expiry[key] = expires
        heapq.heappush(self._queue, (expires, key))
        return Stored(True, len(self._expiry) / self.capacity)

    def seen(self, key: str, now: float) -> bool:
        self.drop(now)
        return key in self._expiry

    def __len__(self) -> int:
        return len(self._expiry)

    def drop(self, now: float) -> None:
        # Kept while now <= expiry: the same instant a challenge or token is still valid.
        queue = self._queue
        while queue and queue[0][0] < now:
            _, key = heapq.heappop(queue)
            self._expiry.pop(key, None)


class _Counts:
    """Counts per bucket, each living ``window`` seconds from its first spend (so the cap is
    exact), at most ``capacity`` unexpired buckets at once; refuses rather than forgets."""

    __slots__ = ("_counts", "_queue", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._counts: dict[str, tuple[int, float]] = {}
        self._queue: list[tuple[float, str]] = []

    def spend(self, bucket: str, limit: int, window: float, now: float) -> bool:
        entry = self._counts.get(bucket)
        if entry is None or entry[1] <= now:
            self.drop(now)
            if len(self._counts) >= self.capacity:
                raise StateFull(f"{self.capacity} buckets counted")
            entry = (0, now + window)
            heapq.heappush(self._queue, (entry[1], bucket))
        count, until = entry
        if count >= limit:
            return False
        self._counts[bucket] = (count + 1, until)
        return True

    def __len__(self) -> int:
        return len(self._counts)

    def drop(self, now: float) -> None:
        queue, counts = self._queue, self._counts
        while queue and queue[0][0] <= now:
            until, bucket = heapq.heappop(queue)
            entry = counts.get(bucket)
            if entry is not None and entry[1] == until:
                del counts[bucket]


class MemoryState:
    """The state of one process: ``CaptchaGuard(app, state=MemoryState(...))`` to size it.

    ``max_entries`` unexpired replay keys and ``max_buckets`` counted buckets per namespace
    (``capacities`` overrides the first per namespace: ``{"pow": 10_000, "pow:1": 2_000}``);
    a namespace at its capacity refuses new keys (``StateFull``) and never forgets old ones.
    """

    shared = False

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
        capacities: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        sizes = {"max_entries": max_entries, "max_buckets": max_buckets, **(capacities or {})}
        for label, value in sizes.items():
            int_arg(value, label)
        self.max_entries = max_entries
        self.max_buckets = max_buckets
        self.capacities = dict(capacities or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}
        self._memory: dict[str, _Expiring] = {}
        self._windows: dict[str, _Counts] = {}
        self._counters: dict[tuple[str, str], int] = {}
        self._ops = {name: getattr(self, name) for name in OP_NAMES}

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

    def abandon(self, name: str, permit: Permit) -> None:
        """A call under ``permit`` was cancelled while out: free its probe (no I/O here)."""
        self.breaker_release(name, permit)

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    # -- breakers ---------------------------------------------------------------------------

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

    # -- replay memory, counts, counters ----------------------------------------------------

    def remember(self, namespace: str, key: str, ttl: float) -> Stored:
        with self._lock:
            memory = self._memory.get(namespace)
            if memory is None:
                capacity = self.capacities.get(namespace, self.max_entries)
                memory = self._memory[namespace] = _Expiring(capacity)
            return memory.remember(key, ttl, self._clock())

    def spend(self, namespace: str, bucket: str, limit: int, window: float) -> bool:
        with self._lock:
            counts = self._windows.get(namespace)
            if counts is None:
                counts = self._windows[namespace] = _Counts(self.max_buckets)
            return counts.spend(bucket, limit, window, self._clock())

    def read_counter(self, namespace: str, key: str) -> int:
        """A counter that never expires (a clearance revocation generation)."""
        with self._lock:
            return self._counter(namespace, key)

    def bump_counter(self, namespace: str, key: str) -> int:
        """Add one to the counter; its new value."""
        with self._lock:
            value = self._counters[(namespace, key)] = self._counter(namespace, key) + 1
            return value

    def _counter(self, namespace: str, key: str) -> int:
        # 0 when unset. It dies with the process: after a restart, clearances revoked before
        # it are honoured again until they expire, unless the secret is rotated (SECURITY.md).
        return self._counters.get((namespace, key), 0)

    # -- reading, for tests and metrics (not operations: they never record) -----------------

    def seen(self, namespace: str, key: str) -> bool:
        """Whether ``key`` is remembered and unexpired."""
        with self._lock:
            memory = self._memory.get(namespace)
            return memory is not None and memory.seen(key, self._clock())

    def remembered(self, namespace: str) -> int:
        """How many unexpired keys ``namespace`` holds right now."""
        with self._lock:
            memory = self._memory.get(namespace)
            if memory is None:
                return 0
            memory.drop(self._clock())
            return len(memory)

    def counted(self, namespace: str) -> int:
        """How many unexpired buckets ``namespace`` counts right now."""
        with self._lock:
            counts = self._windows.get(namespace)
            if counts is None:
                return 0
            counts.drop(self._clock())
            return len(counts)


__all__ = ["DEFAULT_MAX_BUCKETS", "DEFAULT_MAX_ENTRIES", "MemoryState"]
