"""Proof of work that follows pressure: the policy (a table), and what each process remembers.

Theory of operation (issue 18, section 2). The levels are ProofOfWork's (``max_number`` times
1, 8, 64 by default). What raises them is counted in the shared state with the windowed
counter every door already has (``spend(namespace, bucket, limit, window)``: True while the
bucket is within its limit this window), so the whole fleet sees one count:

- every solution that *passes* is counted twice: in its network's bucket for its level, and,
  unless its network is already singled out, in the fleet's bucket for its level. Only
  passing solutions count: each one cost its sender the work, so pressure cannot be faked
  cheaply (a flood of GETs, or of forged solutions, moves nothing).
- when a bucket goes over its limit (``spend`` answers False), new challenges go one level up
  (the top level stays) for ``hold`` seconds: for that network alone, or for everyone. After
  ``hold`` without a new overflow the level steps down one, and so on every ``hold``.
- a network over its own limits stops counting toward the fleet's: a flood from a few networks
  raises those networks and lets the rest of the world's level fall back.
- signals a site chooses (``Pressure.signals``: a missing ``Accept-Language``, a user agent
  that names an automation tool, ...) add levels to a challenge at issue time. They cost a
  header lookup, and they only ever make the work harder, never skip it.

The limits are solutions per window *at a level*. A flooder who is raised solves eight times
fewer at the next level, so each level has its own, smaller limit; the top level's limit keeps
the top level held while the flood lasts.

Each process learns the levels from the answers its own ``spend`` operations get; the bucket
counts are the fleet's, so every process that judges a solution of a raised network learns it.
What a process knows is a hint for the challenges it issues: a wrong hint costs work (or
saves it), never safety, as with the escalation of full replay levels.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from .._check import int_arg, seconds_arg
from .._net import network_of
from .._request import ClientRequest
from .._state import StateFull, StateOp

#: The shared-state namespace of the pressure counts, followed by ``:<window>`` (``spend``
#: needs one window length per namespace).
NAMESPACE: Final = "pow_pressure"
#: The signals a site may choose, each a cheap look at the challenge request's headers.
SIGNALS: Final = ("no_accept_language", "no_user_agent", "automation_user_agent", "no_sec_fetch")
# Tokens of the user agents of HTTP libraries and automation tools (lower case).
_AUTOMATION = (
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp/",
    "go-http-client",
    "java/",
    "okhttp",
    "scrapy",
    "headlesschrome",
    "phantomjs",
    "puppeteer",
    "playwright",
    "selenium",
)
# Networks this process remembers as singled out, at most; the rest are judged by the fleet's
# level (a hint lost is work not asked, never a solution let through).
_MAX_NETWORKS = 65_536


@dataclass(frozen=True)
class Pressure:
    """When new challenges get harder. Read it as a table, one row per level:

    ``fleet[i]``: passing solutions of level ``i`` in one ``window``, fleet-wide (networks
    singled out excluded), above which new challenges go to level ``i + 1``, but never above
    level ``len(fleet) - 1``: a shorter ``fleet`` caps what a flood can make everyone pay;
    ``network[i]``: the same for one network (IPv4 ``/ipv4_prefix``, IPv6 ``/ipv6_prefix``),
    for that network only. A raise holds ``hold`` seconds, then steps down one level per
    ``hold``. ``signals`` maps a signal name (``SIGNALS``) to the levels it adds.
    ``network`` needs one entry per level, ``fleet`` one per level up to its cap (each last
    entry holds its highest level while the flood lasts); ``network=None`` turns the
    per-network part off.
    """

    fleet: Sequence[int] = (300, 40)
    network: Sequence[int] | None = (60, 8, 2)
    window: float = 10.0
    hold: float = 60.0
    ipv4_prefix: int = 24
    ipv6_prefix: int = 48
    signals: Mapping[str, int] = field(default_factory=dict)

    def check(self, levels: int) -> None:
        """ValueError/TypeError unless this policy fits a provider of ``levels`` levels."""
        for label, limits in (("fleet", self.fleet), ("network", self.network)):
            if limits is None and label == "network":
                continue
            if isinstance(limits, (str, bytes)) or not isinstance(limits, Sequence):
                raise TypeError(f"Pressure: {label} must be a sequence of ints")
            if label == "network" and len(limits) != levels:
                raise ValueError(f"Pressure: network needs one limit per level ({levels})")
            if not 1 <= len(limits) <= levels:
                raise ValueError(f"Pressure: fleet needs 1 to {levels} limits (one per level)")
            for limit in limits:
                int_arg(limit, f"{label} limits", owner="Pressure")
        seconds_arg(self.window, "window", owner="Pressure")
        seconds_arg(self.hold, "hold", owner="Pressure")
        if not 0 <= self.ipv4_prefix <= 32 or not 0 <= self.ipv6_prefix <= 128:
            raise ValueError("Pressure: ipv4_prefix must be in 0..32, ipv6_prefix in 0..128")
        for name, extra in self.signals.items():
            if name not in SIGNALS:
                raise ValueError(f"Pressure: unknown signal {name!r} (known: {', '.join(SIGNALS)})")
            int_arg(extra, f"signal {name!r}'s levels", owner="Pressure")

    def network_of(self, client: str | None) -> str:
        return network_of(client, ipv4_prefix=self.ipv4_prefix, ipv6_prefix=self.ipv6_prefix)

    def signalled(self, request: ClientRequest) -> int:
        """The levels the chosen signals add for this challenge request."""
        if not self.signals:
            return 0
        headers = request.headers
        agent = headers.get("user-agent", "")
        extra = 0
        for name, levels in self.signals.items():
            if (
                (name == "no_accept_language" and not headers.get("accept-language"))
                or (name == "no_user_agent" and not agent)
                or (name == "no_sec_fetch" and "sec-fetch-site" not in headers)
                or (name == "automation_user_agent" and _automated(agent))
            ):
                extra += levels
        return extra


def policy_for(option: Pressure | bool, levels: int) -> Pressure | None:
    """The policy of ProofOfWork's ``pressure=`` for a provider of ``levels`` levels."""
    if option is True:
        # The default table, cut to this provider's levels (its last row holds the top).
        default = Pressure()
        network = default.network
        assert network is not None
        return Pressure(fleet=default.fleet[:levels], network=(*network[: levels - 1], network[-1]))
    if option is False:
        return None
    if not isinstance(option, Pressure):
        raise TypeError("ProofOfWork: pressure must be a Pressure, True (the default) or False")
    option.check(levels)
    return option


def _automated(agent: str) -> bool:
    lowered = agent[:512].lower()
    return any(token in lowered for token in _AUTOMATION)


@dataclass(frozen=True, slots=True)
class Change:
    """A level this process serves moved: for everyone (``scope="fleet"``) or for one network
    (``"network"``; which one is never said)."""

    scope: str
    old: int
    new: int


class Hints:
    """What this process knows of the raised levels: the fleet's, and per network."""

    def __init__(self, policy: Pressure, top: int, clock: Callable[[], float]) -> None:
        self.policy = policy
        self.top = top
        #: The provider's clock (Unix time): holds and step-downs are measured on it.
        self.clock = clock
        self._lock = threading.Lock()
        self._fleet = (0, float("-inf"))  # (level, held until)
        self._networks: dict[str, tuple[int, float]] = {}
        self._reported = 0

    def _now_level(self, raised: tuple[int, float], now: float) -> int:
        level, until = raised
        if level == 0 or now <= until:
            return level
        return max(0, level - 1 - int((now - until) // self.policy.hold))

    def fleet(self, now: float) -> int:
        return self._now_level(self._fleet, now)

    def network(self, network: str, now: float) -> int:
        raised = self._networks.get(network)
        return 0 if raised is None else self._now_level(raised, now)

    def level(self, request: ClientRequest | None, now: float) -> int:
        """The level pressure asks of a new challenge for ``request``'s sender."""
        if request is None:
            return self.fleet(now)
        network = self.policy.network_of(request.client_host)
        level = max(self.fleet(now), self.network(network, now))
        return min(self.top, level + self.policy.signalled(request))

    def raise_fleet(self, level: int, now: float) -> None:
        with self._lock:
            cap = min(self.top, len(self.policy.fleet) - 1)
            new = max(self.fleet(now), min(level + 1, cap))
            self._fleet = (new, now + self.policy.hold)

    def raise_network(self, network: str, level: int, now: float) -> Change | None:
        with self._lock:
            old = self.network(network, now)
            new = max(old, min(level + 1, self.top))
            if network not in self._networks and len(self._networks) >= _MAX_NETWORKS:
                self._networks = {
                    n: r for n, r in self._networks.items() if self._now_level(r, now) > 0
                }
                if len(self._networks) >= _MAX_NETWORKS:
                    return None
            self._networks[network] = (new, now + self.policy.hold)
        return Change("network", old, new) if new != old else None

    def fleet_change(self, now: float) -> Change | None:
        """The fleet's level, if it moved since the last time this was asked (raised, or
        stepped down with time): what the ``pow_level`` event reports."""
        with self._lock:
            current = self.fleet(now)
            old, self._reported = self._reported, current
        return Change("fleet", old, current) if current != old else None


Spending = Generator[StateOp, Any, bool]


def _spend(bucket: str, limit: int, window: float) -> Spending:
    """One ``spend``; the driver sends its answer, or throws the exception it raised."""
    try:
        # One window length per namespace, as spend asks: providers' windows may differ.
        namespace = f"{NAMESPACE}:{window:g}"
        within: bool = yield StateOp("spend", (namespace, bucket, limit, window))
    except StateFull:
        return False  # too many buckets to count this window: that is pressure too
    except Exception:
        return True  # a store that cannot count raises nothing
    return within


def count(
    name: str, policy: Pressure, hints: Hints, level: int, client: str | None
) -> Generator[StateOp, Any, list[Change]]:
    """Count one passing solution of ``level`` from ``client``: yields the ``spend``
    operations to perform on the door's state and receives their answers (True: within the
    limit), or has the exception an operation raised thrown in. Returns the level changes."""
    changes: list[Change] = []
    now = hints.clock()
    network = policy.network_of(client)
    singled_out = hints.network(network, now) > 0
    if policy.network is not None:
        bucket = f"{name}:net:{level}:{network}"
        within = yield from _spend(bucket, policy.network[level], policy.window)
        if not within:
            change = hints.raise_network(network, level, now)
            if change is not None:
                changes.append(change)
            singled_out = True
    if not singled_out:
        bucket = f"{name}:fleet:{level}"
        limit = policy.fleet[min(level, len(policy.fleet) - 1)]
        within = yield from _spend(bucket, limit, policy.window)
        if not within:
            hints.raise_fleet(level, now)
    fleet = hints.fleet_change(now)
    if fleet is not None:
        changes.append(fleet)
    return changes


def count_on(
    state: Any, name: str, policy: Pressure, hints: Hints, level: int, client: str | None
) -> list[Change]:
    """``count`` with its operations performed at once on an in-process ``state`` (a
    ``MemoryState``): the flow's way when the door has no shared state."""
    counting = count(name, policy, hints, level, client)
    try:
        op = next(counting)
        while True:
            try:
                within = state.run(op)
            except Exception as exc:  # count() decides what a failed spend means
                op = counting.throw(exc)
            else:
                op = counting.send(within)
    except StopIteration as stop:
        changes: list[Change] = stop.value
        return changes


__all__ = [
    "NAMESPACE",
    "SIGNALS",
    "Change",
    "Hints",
    "Pressure",
    "count",
    "count_on",
    "policy_for",
]
