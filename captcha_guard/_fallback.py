"""What keeps fail-open from becoming a bypass: a replay guard and a per-network budget.

While a provider is down the gate cannot ask whether a captcha is genuine, so it lets
well-formed requests through. Two pieces of state bound what that lets an attacker do:

- the replay guard remembers the one-time id (``Claim.replay_key``) of every captcha let
  through in fallback, so the second use is refused and one solved captcha is not a pass for
  thousands of requests;
- the budget (optional, ``fallback_limit=``) caps fallbacks per client *network* per
  minute, so fresh made-up fields can neither flood a route nor fill the replay memory. The
  network is the client's IPv6 /64 (what one host, one home or one cheap server is given) or
  its IPv4 address, both configurable (``FallbackLimit``): budgeting per IPv6 address would
  give anyone with one /64 2**64 budgets.

Both are operations on the door's state (``_state.py``), yielded by ``refusal_flow``: the
replay guard is ``remember("fallback", replay_key, REPLAY_TTL)``; the budget is
``spend("budget", network_of(client), per_minute, BUDGET_WINDOW)``. Each use has its own
namespace and so its own capacity: fallbacks never fill the proof-of-work memory, nor the
other way round. A full state refuses rather than forgets (forgetting an id would let it be
replayed); whenever the state cannot answer, the fallback is refused (503).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeAlias

from ._check import int_arg
from ._judgement import Judgement
from ._logs import OutageLog
from ._net import DEFAULT_IPV4_PREFIX, DEFAULT_IPV6_PREFIX, NO_ADDRESS, network_of
from ._state import StateFull, StateOp, StateUnavailable
from ._verdict import Code, Fault, Outcome, ProviderFailure, Verdict

logger = logging.getLogger("captcha_guard")

#: A GeeTest lot number lives about 10 minutes, longer than any other provider's token
#: (reCAPTCHA 2 min, hCaptcha 120 s, Turnstile 300 s): remembering ids that long covers all.
REPLAY_TTL = 600.0
BUDGET_WINDOW = 60.0
#: The namespaces of the shared-state operations (``remember`` / ``spend``).
REPLAY_NAMESPACE = "fallback"
BUDGET_NAMESPACE = "budget"
#: Networks budgeted as one client by default (an IPv4 address, an IPv6 /64), and the bucket of
#: every client whose address is not an IP: in _net.py, with network_of.

#: Why a fallback was refused: for the log and the verdict only. The client reads a generic
#: text (responses.FALLBACK_REJECTED_REASON, UNAVAILABLE_REASON), never these.
REPLAYED = "captcha already used"
OVER_BUDGET = "too many fallbacks from this network"
NO_CAPACITY = "fallback guard full or unavailable"


def _prefix(value: object, name: str, bits: int) -> int:
    return int_arg(value, name, minimum=0, maximum=bits)


@dataclass(frozen=True)
class FallbackLimit:
    """``fallback_limit=`` spelled out: ``per_minute`` fallbacks per client network, the
    network being the address's first ``ipv4_prefix`` / ``ipv6_prefix`` bits (32 and 64:
    one IPv4 address, one IPv6 /64). A shorter prefix is stricter (an IPv6 /48 is what a
    free tunnel broker hands anyone) and lumps more honest neighbours together.
    The counts live in the door's ``state=`` (namespace ``"budget"``), which sizes them.
    """

    per_minute: int
    ipv4_prefix: int = DEFAULT_IPV4_PREFIX
    ipv6_prefix: int = DEFAULT_IPV6_PREFIX

    def __post_init__(self) -> None:
        per_minute = self.per_minute
        int_arg(per_minute, "fallback_limit (fallbacks per minute)")
        _prefix(self.ipv4_prefix, "ipv4_prefix", 32)
        _prefix(self.ipv6_prefix, "ipv6_prefix", 128)

    def bucket(self, client: str | None) -> str:
        """The bucket ``client`` spends from: its network (shared state: ``spend("budget",
        bucket, per_minute, BUDGET_WINDOW)``)."""
        return network_of(client, ipv4_prefix=self.ipv4_prefix, ipv6_prefix=self.ipv6_prefix)


#: What ``fallback_limit=`` accepts: fallbacks per minute per network (an int), the spelled-out
#: ``FallbackLimit``, or None.
FallbackLimitOption: TypeAlias = int | FallbackLimit | None


def as_limit(option: FallbackLimitOption) -> FallbackLimit | None:
    """``option`` as a ``FallbackLimit`` (None: no budget)."""
    if option is None or isinstance(option, FallbackLimit):
        return option
    return FallbackLimit(option)


def refusal_flow(
    limit: FallbackLimit | None, replay_key: str, client: str | None
) -> Generator[StateOp, Any, tuple[Outcome, str] | None]:
    """Why this claim may not fall back (REJECTED: 403; FALLBACK: 503), or None if it may.

    The budget is spent before the id is remembered, so a claim the budget refuses can come
    again once its network's minute is over, and a replayer spends its own budget.
    """
    try:
        if limit is not None:
            args = (BUDGET_NAMESPACE, limit.bucket(client), limit.per_minute, BUDGET_WINDOW)
            if not (yield StateOp("spend", args)):
                return Outcome.REJECTED, OVER_BUDGET
        if not (yield StateOp("remember", (REPLAY_NAMESPACE, replay_key, REPLAY_TTL))):
            return Outcome.REJECTED, REPLAYED
    except StateFull:
        # Full is what a flood of made-up fields (or of networks) does: a client can cause
        # it, so a WARNING. No fallback for anyone new until entries expire.
        logger.warning("captcha fallback guard full: fallbacks refused")
        return Outcome.FALLBACK, NO_CAPACITY
    except StateUnavailable:
        # A store that cannot answer cannot vouch for anyone: no fallback, for anyone. Its
        # outage is logged where it is seen (_failover.py), once per interval.
        return Outcome.FALLBACK, NO_CAPACITY
    except Exception as exc:
        # Anything else is a bug or a backend of our own making: loud. The exception's text
        # helps ("connection refused"), unless it quotes what we asked for:
        # a lot number or a network is the client's, and stays out of the log.
        text = str(exc)[:200]
        named = [replay_key, client, limit.bucket(client) if limit else None]
        if any(part and part != NO_ADDRESS and part in text for part in named):
            text = "(text withheld: it names the request)"
        logger.error("captcha fallback store failed (%s): %s", type(exc).__name__, text)
        return Outcome.FALLBACK, NO_CAPACITY
    return None


_REFUSED = {REPLAYED: Code.REFUSED_REPLAY, OVER_BUDGET: Code.REFUSED_BUDGET}


def fallback_flow(
    provider_name: str,
    fail_open: bool,
    failure: ProviderFailure,
    limit: FallbackLimit | None,
    replay_key: str,
    client: str | None,
    outages: OutageLog,
) -> Generator[StateOp, Any, Judgement]:
    """The judgement of a request whose provider could not judge it: let through by the
    rule's fail-open, or refused (the rule, the replay guard, the budget, no capacity)."""
    operator = failure.fault is Fault.OPERATOR
    if operator:
        logger.error(
            "captcha provider %s is misconfigured (code %s): %s",
            provider_name,
            failure.code or "-",
            failure.reason,
        )
    # For the app: whose fault, and the provider's own code. Nothing here steers the answer.
    details = {"fault": failure.fault.value, "code": failure.code}
    cause = Code.MISCONFIGURED if operator else failure.cause
    if not fail_open:
        verdict = Verdict(Outcome.FALLBACK, failure.reason, provider_name, details)
        return Judgement(verdict, Code.REFUSED_RULE, failure.fault, Code.REFUSED_RULE)
    refusal = yield from refusal_flow(limit, replay_key, client)
    if refusal is None:
        if not operator:
            outages.note(provider_name, failure.reason)
        verdict = Verdict(Outcome.FALLBACK, failure.reason, provider_name, details)
        return Judgement(verdict, cause, failure.fault)
    outcome, why = refusal
    outages.note(provider_name, failure.reason, why)
    if outcome is Outcome.FALLBACK:  # no capacity: a 503
        verdict = Verdict(outcome, f"{failure.reason}; {why}", provider_name, details)
        return Judgement(verdict, Code.REFUSED_CAPACITY, failure.fault, Code.REFUSED_CAPACITY)
    # A 403 that reads generic (responses.rejected): the reason would confirm an outage.
    refused = _REFUSED.get(why, Code.REFUSED_CAPACITY)
    verdict = Verdict(outcome, why, provider_name, details)
    return Judgement(verdict, refused, failure.fault, refused)


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
    "FallbackLimit",
    "FallbackLimitOption",
    "as_limit",
    "fallback_flow",
    "network_of",
    "refusal_flow",
]
