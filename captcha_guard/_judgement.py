"""What the gate decided about one protected request, as a value: the flow's typed result.

A ``Judgement`` says what happened: the ``Verdict`` the app sees (its ``details`` are the
app's only), a closed-set ``Code``, whose fault it was when the provider could not judge, why
a fallback was refused, and a hint for the operator at the level it deserves. The answer the
client gets, the log line and the verdict event are all read from it, never from dictionary
keys, so no provider can steer them by what it puts in ``details``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._effects import Decision, Deny, Pass
from ._events import FALLBACK_ALLOWED, VerdictEvent
from ._responses import rejected, unavailable
from ._verdict import Code, Fault, Hint, Outcome, Verdict


@dataclass(frozen=True, slots=True)
class Judgement:
    """The flow's result for one protected request."""

    verdict: Verdict
    code: Code
    #: Whose fault it was that the provider could not judge (None: it judged).
    fault: Fault | None = None
    #: Why a fallback was refused (one of the REFUSED_* codes; None: let through, or none).
    refused: Code | None = None
    #: A line for the operator, logged at ``hint.level``.
    hint: Hint | None = None

    @property
    def fallback(self) -> str | None:
        """How a fallback was decided, for the event: only when the provider could not judge."""
        if self.fault is None:
            return None
        return FALLBACK_ALLOWED if self.refused is None else self.refused.value

    @property
    def replay(self) -> str | None:
        """The kind of replay refused, for the event: ``"fallback"`` or ``"proof_of_work"``."""
        if self.refused is Code.REFUSED_REPLAY:
            return "fallback"
        if self.verdict.outcome is Outcome.REJECTED and self.verdict.note.replayed:
            return "proof_of_work"
        return None

    def decision(self, body: bytes | None) -> Decision:
        """The answer: the app with ``body``, a 403, or a 503."""
        verdict = self.verdict
        if verdict.outcome is Outcome.PASSED:
            return Pass(verdict, body)
        if verdict.outcome is Outcome.REJECTED:
            # A refused fallback reads generic: its reason would confirm an outage.
            return Deny(rejected(verdict, generic=self.refused is not None))
        if self.refused is None and verdict.note.refused is None:
            return Pass(verdict, body)
        return Deny(unavailable(verdict))  # fail_open=False, or a refused fallback

    def event(self, rule: str, duration: float | None) -> VerdictEvent:
        verdict = self.verdict
        return VerdictEvent(
            provider=verdict.provider,  # the rule's provider, or "private_token"
            rule=rule,
            outcome=verdict.outcome,
            code=self.code.value,
            duration=duration,
            fallback=self.fallback,
            replay=self.replay,
        )


def judged(verdict: Verdict) -> Judgement:
    """The judgement of a verdict a provider (or a clearance) gave."""
    if verdict.outcome is Outcome.PASSED:
        code = Code.OK
    elif verdict.outcome is Outcome.REJECTED:
        code = Code.REJECTED
    else:  # a provider's own FALLBACK: it could not vouch (a replay store that did not answer)
        code = Code.PROVIDER_ERROR
    return Judgement(verdict, code, hint=verdict.note.hint)


__all__ = ["Judgement", "judged"]
