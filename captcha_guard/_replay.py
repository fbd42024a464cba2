"""Remembering one-time things (proof-of-work challenges) until they expire.

No I/O and nothing of ours is imported. The store is a small interface so that sites running
many workers can share one through Redis later (``SET key 1 NX EXAT expires_at`` is the whole
operation: atomic, no read-modify-write); the in-memory default is bounded and drops expired
entries as it goes.
"""

from __future__ import annotations

import heapq
import threading
from typing import Protocol

from ._check import int_arg

DEFAULT_MAX_ENTRIES = 100_000


class ReplayStoreFull(Exception):
    """The store cannot remember one more key before some of those it holds expire."""


class ReplayStore(Protocol):
    def remember(self, key: str, expires_at: float, now: float) -> bool:
        """Record ``key`` until ``expires_at`` (a Unix time): True the first time, False if it
        is already recorded (a replay). Raise ReplayStoreFull when it cannot record it."""
        ...


class MemoryReplayStore:
    """An in-process ReplayStore holding at most ``max_entries`` unexpired keys per use.

    A use is the key's namespace, the text before its first ``:`` (``fallback:...`` for the
    fallback guard, ``altcha:...`` for proof of work; keys without one share a use). Each use
    has its own ``max_entries``, so one store given to both cannot let a flood of one lock out
    the other.

    When it is full of keys that have not expired yet, it refuses new ones (ReplayStoreFull)
    rather than forget old ones: forgetting a key early would let that solution be replayed,
    refusing only makes honest users retry after the oldest entries expire. Every entry costs
    its sender a solved challenge, so filling the store is expensive; size it to the number of
    solutions a site expects within one challenge lifetime.
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = int_arg(max_entries, "max_entries")
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}
        self._queue: list[tuple[float, str]] = []  # a heap: soonest expiry first
        self._per_use: dict[str, int] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)

    def remember(self, key: str, expires_at: float, now: float) -> bool:
        with self._lock:
            self._drop_expired(now)
            if key in self._expiry:
                return False
            use = _use(key)
            held = self._per_use.get(use, 0)
            if held >= self.max_entries:
                raise ReplayStoreFull(f"{self.max_entries} unexpired entries")
            self._per_use[use] = held + 1
            self._expiry[key] = expires_at
            heapq.heappush(self._queue, (expires_at, key))
            return True

    def _drop_expired(self, now: float) -> None:
        # An entry is kept while now <= expires_at, the same instant its challenge is valid.
        queue = self._queue
        while queue and queue[0][0] < now:
            _, key = heapq.heappop(queue)
            if self._expiry.pop(key, None) is not None:
                use = _use(key)
                left = self._per_use[use] - 1
                if left:
                    self._per_use[use] = left
                else:
                    del self._per_use[use]


def _use(key: str) -> str:
    """The namespace of ``key``: the text before its first ``:`` (none: one shared use)."""
    head, colon, _ = key.partition(":")
    return head if colon else ""


__all__ = ["DEFAULT_MAX_ENTRIES", "MemoryReplayStore", "ReplayStore", "ReplayStoreFull"]
