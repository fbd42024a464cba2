"""What keeps fail-open from becoming a bypass: a replay guard and a per-client budget.

While a provider is down the gate cannot ask whether a captcha is genuine, so it lets
well-formed requests through. Two pieces of state bound what that lets an attacker do:

- a ``ReplayStore`` (the same interface proof-of-work uses) remembers the one-time id
  (``Claim.replay_key``) of every captcha let through in fallback, so the second use is refused
  and one solved captcha is not a pass for thousands of requests;
- a ``FallbackBudget`` (optional, ``fallback_limit=``) caps fallbacks per client address per
  minute, so fresh made-up fields cannot flood a route either.

Each store's only operation is atomic (Redis: ``SET NX EXAT``, ``INCR`` + ``EXPIRE``), so a
shared store can replace the in-memory default without touching providers or front doors.
Both in-memory defaults are bounded and refuse rather than forget when full: forgetting an id
would let it be replayed. Whenever a store cannot answer, the fallback is refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from .replay import MemoryReplayStore, ReplayStore
from .verdict import Outcome

logger = logging.getLogger("captcha_guard")

#: A GeeTest lot number lives about 10 minutes, longer than any other provider's token
#: (reCAPTCHA 2 min, hCaptcha 120 s, Turnstile 300 s): remembering ids that long covers all.
REPLAY_TTL = 600.0
BUDGET_WINDOW = 60.0
DEFAULT_BUDGET_CLIENTS = 100_000

#: Why a fallback was refused, as the client reads it. The reasons do not say the provider is
#: down: there is no need to confirm an outage to whoever is probing for one.
REPLAYED = "captcha already used"
OVER_BUDGET = "too many captcha attempts from this address"
NO_CAPACITY = "fallback guard full or unavailable"


class BudgetFull(Exception):
    """The budget counts as many clients as it may: it cannot count one more."""


@runtime_checkable
class FallbackBudget(Protocol):
    """Counts fallbacks per client address."""

    def spend(self, client: str) -> bool:
        """Count one fallback for ``client``; True if it is within the budget. Atomic.
        Raise when the count cannot be kept: the gate then refuses the fallback."""
        ...


class MemoryFallbackBudget:
    """The in-process ``FallbackBudget``: at most ``per_minute`` fallbacks per client in each
    fixed minute window (a fixed window is what ``INCR`` + ``EXPIRE`` gives a shared store;
    its price is a burst of up to twice the limit across a window boundary).

    At most ``max_clients`` clients are counted at once; when that many are counted in the
    current window, a new client is refused (``BudgetFull``) rather than let through uncounted.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        max_clients: int = DEFAULT_BUDGET_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            raise ValueError("fallback_limit must be an integer >= 1 (fallbacks per minute)")
        if isinstance(max_clients, bool) or not isinstance(max_clients, int) or max_clients < 1:
            raise ValueError("max_clients must be an integer >= 1")
        self.per_minute = per_minute
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def spend(self, client: str) -> bool:
        window = int(self._clock() // BUDGET_WINDOW)
        with self._lock:
            if window != self._window:
                # A new minute: every count is stale at once.
                self._window = window
                self._counts = {}
            count = self._counts.get(client)
            if count is None:
                if len(self._counts) >= self.max_clients:
                    raise BudgetFull(f"fallback budget counts {self.max_clients} clients")
                count = 0
            if count >= self.per_minute:
                return False
            self._counts[client] = count + 1
            return True


class FallbackGuard:
    """Decides whether a well-formed claim may fall back: not twice, not over budget."""

    def __init__(
        self,
        replay_store: ReplayStore | None = None,
        fallback_limit: int | FallbackBudget | None = None,
        *,
        ttl: float = REPLAY_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if replay_store is not None and not callable(getattr(replay_store, "remember", None)):
            raise TypeError("replay_store must have a remember(key, expires_at, now) method")
        self.replay_store: ReplayStore = (
            replay_store if replay_store is not None else MemoryReplayStore()
        )
        self.budget: FallbackBudget | None
        if fallback_limit is None or isinstance(fallback_limit, FallbackBudget):
            self.budget = fallback_limit
        else:
            self.budget = MemoryFallbackBudget(fallback_limit)
        self.ttl = ttl
        self._clock = clock

    def refusal(self, replay_key: str, client: str | None) -> tuple[Outcome, str] | None:
        """Why this claim may not fall back (REJECTED: 403; FALLBACK: 503), or None if it may.

        The budget is spent before the id is remembered, so a claim the budget refuses can
        come again once the client's minute is over, and a replayer spends its own budget.
        """
        try:
            if self.budget is not None and not self.budget.spend(client or "-"):
                return Outcome.REJECTED, OVER_BUDGET
            now = self._clock()
            # Namespaced, so one shared store can serve proof-of-work and fallbacks.
            if not self.replay_store.remember(f"fallback:{replay_key}", now + self.ttl, now):
                return Outcome.REJECTED, REPLAYED
        except Exception as exc:
            # A store that cannot answer cannot vouch for anyone: no fallback, for anyone.
            logger.error("captcha fallback store failed (%s): %s", type(exc).__name__, exc)
            return Outcome.FALLBACK, NO_CAPACITY
        return None


__all__ = [
    "NO_CAPACITY",
    "OVER_BUDGET",
    "REPLAYED",
    "REPLAY_TTL",
    "BudgetFull",
    "FallbackBudget",
    "FallbackGuard",
    "MemoryFallbackBudget",
]
