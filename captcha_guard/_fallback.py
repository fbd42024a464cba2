"""What keeps fail-open from becoming a bypass: a replay guard and a per-network budget.

While a provider is down the gate cannot ask whether a captcha is genuine, so it lets
well-formed requests through. Two pieces of state bound what that lets an attacker do:

- a ``ReplayStore`` (the same interface proof-of-work uses) remembers the one-time id
  (``Claim.replay_key``) of every captcha let through in fallback, so the second use is refused
  and one solved captcha is not a pass for thousands of requests;
- a ``FallbackBudget`` (optional, ``fallback_limit=``) caps fallbacks per client *network* per
  minute, so fresh made-up fields can neither flood a route nor fill the replay memory. The
  network is the client's IPv6 /64 (what one host, one home or one cheap server is given) or
  its IPv4 address, both configurable (``FallbackLimit``): budgeting per IPv6 address would
  give anyone with one /64 2**64 budgets.

Shared-state mapping (issue 10, ``_state.py``): the replay guard is ``remember("fallback",
replay_key, REPLAY_TTL)``; the budget is ``spend("budget", network_of(client), per_minute,
BUDGET_WINDOW)``. Each use has its own namespace and so its own capacity: fallbacks never
fill the proof-of-work memory, nor the other way round (``MemoryReplayStore`` counts per
namespace too).

Both in-memory defaults are bounded and refuse rather than forget when full: forgetting an id
would let it be replayed. Whenever a store cannot answer, the fallback is refused (503).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias, runtime_checkable

from ._replay import MemoryReplayStore, ReplayStore, ReplayStoreFull
from ._verdict import Outcome

logger = logging.getLogger("captcha_guard")

#: A GeeTest lot number lives about 10 minutes, longer than any other provider's token
#: (reCAPTCHA 2 min, hCaptcha 120 s, Turnstile 300 s): remembering ids that long covers all.
REPLAY_TTL = 600.0
BUDGET_WINDOW = 60.0
DEFAULT_BUDGET_CLIENTS = 100_000
#: The namespaces of the shared-state operations (``remember`` / ``spend``).
REPLAY_NAMESPACE = "fallback"
BUDGET_NAMESPACE = "budget"
#: Networks budgeted as one client by default: an IPv4 address, an IPv6 /64.
DEFAULT_IPV4_PREFIX = 32
DEFAULT_IPV6_PREFIX = 64
#: The bucket of every client whose address is not an IP (a unix socket, none at all).
NO_ADDRESS = "-"

#: Why a fallback was refused: for the log and the verdict only. The client reads a generic
#: text (responses.FALLBACK_REJECTED_REASON, UNAVAILABLE_REASON), never these.
REPLAYED = "captcha already used"
OVER_BUDGET = "too many fallbacks from this network"
NO_CAPACITY = "fallback guard full or unavailable"


def network_of(
    client: str | None,
    *,
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX,
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX,
) -> str:
    """The budget bucket of ``client``: its network in CIDR notation (``2001:db8::/64``,
    ``203.0.113.7/32``), or ``NO_ADDRESS`` if it is not an IP address. An IPv4-mapped IPv6
    address (``::ffff:203.0.113.7``) is the IPv4 address it carries, so a dual-stack socket
    cannot give one IPv4 client 2**32 buckets."""
    if not client:
        return NO_ADDRESS
    try:
        address = ipaddress.ip_address(client.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return NO_ADDRESS
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # The network by integer arithmetic: ip_network() costs twice as much as all of this.
    prefix, bits = (ipv4_prefix, 32) if address.version == 4 else (ipv6_prefix, 128)
    host_bits = bits - prefix
    network = type(address)(int(address) >> host_bits << host_bits)
    return f"{network}/{prefix}"


def _prefix(value: object, name: str, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= bits:
        raise ValueError(f"{name} must be an integer from 0 to {bits}")
    return value


class BudgetFull(Exception):
    """The budget counts as many networks as it may: it cannot count one more."""


@runtime_checkable
class FallbackBudget(Protocol):
    """Counts fallbacks per bucket (a client network, see ``network_of``)."""

    def spend(self, client: str) -> bool:
        """Count one fallback for the bucket ``client``; True if it is within the budget.
        Atomic. Raise when the count cannot be kept: the gate then refuses the fallback."""
        ...


class MemoryFallbackBudget:
    """The in-process ``FallbackBudget``: at most ``per_minute`` fallbacks per bucket in each
    fixed minute window (a fixed window is what ``INCR`` + ``EXPIRE`` gives a shared store;
    its price is a burst of up to twice the limit across a window boundary).

    At most ``max_clients`` buckets are counted at once; when that many are counted in the
    current window, a new one is refused (``BudgetFull``) rather than let through uncounted.
    The budget has a store of its own, so filling it never touches the replay memory.
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
                    raise BudgetFull(f"fallback budget counts {self.max_clients} networks")
                count = 0
            if count >= self.per_minute:
                return False
            self._counts[client] = count + 1
            return True


class _DefaultBudget(MemoryFallbackBudget):
    """The counter ``FallbackLimit`` builds when given no ``budget=``: with a door's
    ``state=`` the budget lives in shared state instead. A budget the site built itself (a
    ``MemoryFallbackBudget`` too) is its own, and wins over ``state=``."""


@dataclass(frozen=True)
class FallbackLimit:
    """``fallback_limit=`` spelled out: ``per_minute`` fallbacks per client network, the
    network being the address's first ``ipv4_prefix`` / ``ipv6_prefix`` bits (32 and 64:
    one IPv4 address, one IPv6 /64). A shorter prefix is stricter (an IPv6 /48 is what a
    free tunnel broker hands anyone) and lumps more honest neighbours together.
    ``budget`` replaces the in-memory counter (a shared one, say); ``max_networks`` sizes it.
    """

    per_minute: int
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX
    max_networks: int = DEFAULT_BUDGET_CLIENTS
    budget: FallbackBudget | None = None

    def __post_init__(self) -> None:
        _prefix(self.ipv4_prefix, "ipv4_prefix", 32)
        _prefix(self.ipv6_prefix, "ipv6_prefix", 128)
        if self.budget is None:
            counter = _DefaultBudget(self.per_minute, max_clients=self.max_networks)
            object.__setattr__(self, "budget", counter)
        elif not isinstance(self.budget, FallbackBudget):
            raise TypeError("budget must have a spend(bucket) method")

    def bucket(self, client: str | None) -> str:
        """The bucket ``client`` spends from: its network (shared state: ``spend("budget",
        bucket, per_minute, BUDGET_WINDOW)``)."""
        return network_of(client, ipv4_prefix=self.ipv4_prefix, ipv6_prefix=self.ipv6_prefix)

    def spend(self, client: str | None) -> bool:
        """Count one fallback for ``client``'s network; True while within the budget."""
        assert self.budget is not None  # set in __post_init__
        return self.budget.spend(self.bucket(client))


#: What ``fallback_limit=`` accepts: fallbacks per minute per network (an int), the spelled-out
#: ``FallbackLimit``, a ``FallbackBudget`` of your own (counted per default network), or None.
FallbackLimitOption: TypeAlias = int | FallbackLimit | FallbackBudget | None


def as_limit(option: FallbackLimitOption) -> FallbackLimit | None:
    """``option`` as a ``FallbackLimit`` (None: no budget)."""
    if option is None or isinstance(option, FallbackLimit):
        return option
    if isinstance(option, FallbackBudget):
        # A budget of one's own keeps its own limit; per_minute is then only informative.
        per_minute = getattr(option, "per_minute", 1)
        if isinstance(per_minute, bool) or not isinstance(per_minute, int) or per_minute < 1:
            per_minute = 1
        return FallbackLimit(per_minute, budget=option)
    return FallbackLimit(option)


class FallbackGuard:
    """Decides whether a well-formed claim may fall back: not twice, not over budget."""

    def __init__(
        self,
        replay_store: ReplayStore | None = None,
        fallback_limit: FallbackLimitOption = None,
        *,
        ttl: float = REPLAY_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if replay_store is not None and not callable(getattr(replay_store, "remember", None)):
            raise TypeError("replay_store must have a remember(key, expires_at, now) method")
        self.replay_store: ReplayStore = (
            replay_store if replay_store is not None else MemoryReplayStore()
        )
        self.limit = as_limit(fallback_limit)
        self.budget: FallbackBudget | None = self.limit.budget if self.limit else None
        self.ttl = ttl
        self._clock = clock

    def refusal(self, replay_key: str, client: str | None) -> tuple[Outcome, str] | None:
        """Why this claim may not fall back (REJECTED: 403; FALLBACK: 503), or None if it may.

        The budget is spent before the id is remembered, so a claim the budget refuses can
        come again once its network's minute is over, and a replayer spends its own budget.
        """
        try:
            limit = self.limit
            if limit is not None and not limit.spend(client):
                return Outcome.REJECTED, OVER_BUDGET
            now = self._clock()
            # Namespaced, so one shared store can serve proof-of-work and fallbacks, each
            # with a capacity of its own.
            key = f"{REPLAY_NAMESPACE}:{replay_key}"
            if not self.replay_store.remember(key, now + self.ttl, now):
                return Outcome.REJECTED, REPLAYED
        except (BudgetFull, ReplayStoreFull) as exc:
            # Full is what a flood of made-up fields (or of networks) does: a client can cause
            # it, so a WARNING. No fallback for anyone new until entries expire.
            logger.warning(
                "captcha fallback guard full (%s): fallbacks refused", type(exc).__name__
            )
            return Outcome.FALLBACK, NO_CAPACITY
        except Exception as exc:
            # A store that cannot answer cannot vouch for anyone: no fallback, for anyone.
            # The store is ours to fix: ERROR. The exception's text helps ("connection
            # refused"), unless it quotes what we asked for: a lot number or a network is the
            # client's, and stays out of the log.
            text = str(exc)[:200]
            named = [replay_key, client, self.limit.bucket(client) if self.limit else None]
            if any(part and part != NO_ADDRESS and part in text for part in named):
                text = "(text withheld: it names the request)"
            logger.error("captcha fallback store failed (%s): %s", type(exc).__name__, text)
            return Outcome.FALLBACK, NO_CAPACITY
        return None


__all__ = [
    "BUDGET_NAMESPACE",
    "BUDGET_WINDOW",
    "DEFAULT_IPV4_PREFIX",
    "DEFAULT_IPV6_PREFIX",
    "NO_ADDRESS",
    "NO_CAPACITY",
    "OVER_BUDGET",
    "REPLAYED",
    "REPLAY_NAMESPACE",
    "REPLAY_TTL",
    "BudgetFull",
    "FallbackBudget",
    "FallbackGuard",
    "FallbackLimit",
    "FallbackLimitOption",
    "MemoryFallbackBudget",
    "as_limit",
    "network_of",
]
