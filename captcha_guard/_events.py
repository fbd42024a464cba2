"""What the gate tells event hooks: one value per event, never a token, secret or address.

``event_hooks={"verdict": [...], "breaker": [...], "store_error": [...], "pow_level": [...],
"private_token": [...], "clearance": [...]}`` on either door maps an event name to callables
that take the event value (awaitables allowed under ASGI only). A hook that raises is logged
and never breaks the request. Labels a metrics backend builds from these fields come from
configuration only (provider names, rule patterns), never from the request (paths, addresses,
user agents).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._breaker import State
from ._verdict import Outcome

#: How a fallback was decided, in ``VerdictEvent.fallback``.
FALLBACK_ALLOWED = "allowed"
FALLBACK_REFUSED_REPLAY = "refused_replay"
FALLBACK_REFUSED_BUDGET = "refused_budget"
FALLBACK_REFUSED_CAPACITY = "refused_capacity"
FALLBACK_REFUSED_RULE = "refused_rule"  # fail_open=False


@dataclass(frozen=True, slots=True)
class VerdictEvent:
    """One protected request was judged (every outcome, including a 403 and a 503)."""

    provider: str  # the provider's name as the verdict carries it
    rule: str  # the rule's pattern as configured (a compiled regex: its .pattern)
    outcome: Outcome
    code: str  # a short stable reason code ("ok", "replayed", "provider_timeout", ...)
    duration: float | None  # seconds the provider call took; None when no call was made
    fallback: str | None = None  # one of FALLBACK_*, for fallback outcomes only
    replay: str | None = None  # "fallback" or "proof_of_work" when a replay was refused


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """A provider's circuit changed state."""

    provider: str
    old: State
    new: State


@dataclass(frozen=True, slots=True)
class StoreErrorEvent:
    """Shared state could not be used (and the in-process state stood in)."""

    store: str  # "breaker", "replay", "fallback_budget", "clearance"
    error: str  # the kind only: "timeout", "connection", "script", ...


@dataclass(frozen=True, slots=True)
class PrivateTokenEvent:
    """Private Access Tokens at work (``event_hooks={"private_token": [...]}``).

    ``action`` is ``"challenge"`` (code ``"sent"``, ``"greased"``: not challenged on purpose,
    ``"off"``: no issuer key), ``"redeem"`` (code a token status: ``"valid"``, ``"replayed"``,
    ``"invalid"``, ``"unknown_challenge"``, ``"unknown_key"``, ``"malformed"``,
    ``"unavailable"``, ``"off"``) or ``"directory"`` (an issuer key fetch: ``"ok"`` or
    ``"failed"``). ``issuer`` is a configured issuer name, when one is known."""

    action: str
    code: str
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class PowLevelEvent:
    """The proof-of-work level this process serves moved under pressure: for everyone
    (``scope="fleet"``), or for one network (``"network"``; which one is never said)."""

    provider: str
    scope: str
    old: int
    new: int


#: ``ClearanceEvent.result``: "issued", "cleared", or why a cookie did not clear (a
#: ``ClearanceStatus`` other than "valid" and "absent": no cookie is nothing to report).
CLEARANCE_RESULTS = (
    "issued",
    "cleared",
    "malformed",
    "invalid",
    "expired",
    "wrong_scope",
    "wrong_binding",
    "revoked",
    "exhausted",
    "unavailable",
)


@dataclass(frozen=True, slots=True)
class ClearanceEvent:
    """A clearance cookie was issued, cleared a request, or was refused
    (``event_hooks={"clearance": [...]}``). Never the cookie, its id or the client."""

    provider: str  # the rule's provider name, or "private_token"
    rule: str  # the rule's pattern as configured
    result: str  # one of CLEARANCE_RESULTS


EVENT_NAMES = ("verdict", "breaker", "store_error", "pow_level", "private_token", "clearance")

__all__ = [
    "CLEARANCE_RESULTS",
    "EVENT_NAMES",
    "FALLBACK_ALLOWED",
    "FALLBACK_REFUSED_BUDGET",
    "FALLBACK_REFUSED_CAPACITY",
    "FALLBACK_REFUSED_REPLAY",
    "FALLBACK_REFUSED_RULE",
    "BreakerEvent",
    "ClearanceEvent",
    "PowLevelEvent",
    "PrivateTokenEvent",
    "StoreErrorEvent",
    "VerdictEvent",
]
