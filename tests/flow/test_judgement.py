"""The flow's typed result: the closed-set code, the fault, why a fallback was refused and the
hint come from typed values (``Judgement``, ``Verdict.note``, ``ProviderFailure.cause``),
never from keys a provider puts in ``details``."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest

from captcha_guard import CircuitBreaker, GeeTest, Outcome, Rule, Verdict
from captcha_guard._effects import CallProblem, Deny, Pass
from captcha_guard._events import VerdictEvent
from captcha_guard._flow import Gate
from captcha_guard._judgement import judged
from captcha_guard._verdict import Code, Hint, Note
from captcha_guard.providers import ProviderResponse
from captcha_guard.testing import GeeTestEmulator
from tests.wire import client_request, drive, state_of

EMULATOR = GeeTestEmulator()
FORM = "application/x-www-form-urlencoded"


def _run(answer: Any, *, fail_open: bool = True, fields: Any = None) -> tuple[Any, VerdictEvent]:
    events: list[VerdictEvent] = []
    provider = GeeTest(
        EMULATOR.captcha_id,
        EMULATOR.captcha_key,
        endpoint="http://127.0.0.1:9/validate",
        breaker=CircuitBreaker(failure_threshold=100),
    )
    gate = Gate(
        [Rule("/login", fail_open=fail_open)],
        provider=provider,
        event_hooks={"verdict": [events.append]},
    )
    route = gate.match("POST", "/login")
    body = urlencode(fields or EMULATOR.issue()).encode()
    request = client_request(content_type=FORM)
    run = drive(gate.decide(route, request), body=body, answer=answer, state=state_of(gate))  # type: ignore[arg-type]
    (event,) = events
    return run.decision, event


@pytest.mark.parametrize(
    ("problem", "code"),
    [
        ("timeout", Code.PROVIDER_TIMEOUT),
        ("connect_error", Code.PROVIDER_UNREACHABLE),
        ("protocol_error", Code.PROVIDER_ERROR),
    ],
)
def test_a_call_problem_names_its_code_without_a_round_trip_through_text(
    problem: str, code: Code
) -> None:
    decision, event = _run(CallProblem(problem))
    assert isinstance(decision, Pass) and decision.verdict.outcome is Outcome.FALLBACK
    assert (event.code, event.fallback, event.replay) == (code.value, "allowed", None)


def _answer(document: dict[str, Any]) -> ProviderResponse:
    return ProviderResponse(
        200, {"content-type": "application/json"}, json.dumps(document).encode()
    )


def test_an_operator_fault_is_misconfigured_and_a_refused_rule_says_so() -> None:
    error = {"status": "error", "code": "-50105", "msg": "paused"}
    decision, event = _run(_answer(error))
    assert isinstance(decision, Pass)
    assert (event.code, event.fallback) == ("misconfigured", "allowed")
    decision, event = _run(_answer(error), fail_open=False)
    assert isinstance(decision, Deny) and decision.denial.status == 503
    assert (event.code, event.fallback) == ("refused_rule", "refused_rule")


def test_a_refused_replay_is_a_generic_403_and_counted_as_a_fallback_replay() -> None:
    fields = EMULATOR.issue()
    events: list[VerdictEvent] = []
    provider = GeeTest(
        EMULATOR.captcha_id, EMULATOR.captcha_key, endpoint="http://127.0.0.1:9/validate"
    )
    gate = Gate([Rule("/login")], provider=provider, event_hooks={"verdict": [events.append]})
    route = gate.match("POST", "/login")
    body = urlencode(fields).encode()
    decisions = [
        drive(
            gate.decide(route, client_request(content_type=FORM)),  # type: ignore[arg-type]
            body=body,
            answer=CallProblem("timeout"),
            state=state_of(gate),
        ).decision
        for _ in range(2)
    ]
    assert isinstance(decisions[0], Pass)
    refused = decisions[1]
    assert isinstance(refused, Deny) and refused.denial.status == 403
    assert refused.denial.reason == "captcha rejected, solve a new one"  # generic
    assert refused.denial.verdict is not None
    assert "fallback_refused" not in refused.denial.verdict.details  # typed, not a key
    assert (events[1].code, events[1].fallback, events[1].replay) == (
        "refused_replay",
        "refused_replay",
        "fallback",
    )


def test_details_cannot_steer_the_answer_or_the_log(caplog: pytest.LogCaptureFixture) -> None:
    # A provider (or a vendor's answer copied into details) that names the old keys steers
    # nothing: only the typed note does.
    keys = {"fallback_refused": "x", "misconfiguration": "x", "suspect": "x", "fault": "x"}
    verdict = Verdict(Outcome.REJECTED, "r", "p", keys)
    judgement = judged(verdict)
    assert (judgement.code, judgement.fault, judgement.refused, judgement.hint) == (
        Code.REJECTED,
        None,
        None,
        None,
    )
    decision = judgement.decision(None)
    assert isinstance(decision, Deny) and decision.denial.reason == "r"
    fallback = judged(Verdict(Outcome.FALLBACK, "r", "p", keys))
    assert isinstance(fallback.decision(None), Pass)  # no key makes it a 503


def test_a_note_is_for_the_gate_and_not_compared() -> None:
    hint = Hint.misconfiguration("check the key")
    noted = Verdict(Outcome.REJECTED, "r", "p", note=Note(hint))
    assert noted == Verdict(Outcome.REJECTED, "r", "p") and noted.details == {}
    assert hint.level == logging.ERROR and Hint.suspect("x").level == logging.WARNING
    assert judged(noted).hint is hint
    refused = Verdict(Outcome.FALLBACK, "r", "p", note=Note(refused="store down"))
    decision = judged(refused).decision(None)
    assert isinstance(decision, Deny) and decision.denial.status == 503
    replayed = judged(Verdict(Outcome.REJECTED, "r", "p", note=Note(replayed=True)))
    assert replayed.replay == "proof_of_work" and replayed.fallback is None
