"""The shared decision, without any I/O: the gate's flow is fed the provider's answers
directly (``Gate.decide`` driven by hand, as a door would)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from captcha_guard import CircuitBreaker, GeeTest, Outcome, Rule, Verdict
from captcha_guard._breaker import Permit, State
from captcha_guard._effects import BUSY, CallProblem, Decision, Deny, Flow, Pass, ProviderCall
from captcha_guard._flow import Gate
from captcha_guard._responses import Denial
from captcha_guard._route import Route
from captcha_guard.providers import ProviderRequest, ProviderResponse
from captcha_guard.providers._base import Claim, ClientRequest
from captcha_guard.testing import GeeTestEmulator
from tests.helpers import FakeClock, assert_logs_clean, tokens_of
from tests.wire import client_request, drive, from_httpx, state_of, until_call

EMULATOR = GeeTestEmulator()
FORM = "application/x-www-form-urlencoded"


class Breaker(CircuitBreaker):
    """A circuit breaker that keeps the permits it gives (the flow holds its own privately)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.permits: list[Permit] = []

    def acquire(self) -> Permit | None:
        permit = super().acquire()
        if permit is not None:
            self.permits.append(permit)
        return permit


def _provider(**kwargs: Any) -> GeeTest:
    kwargs.setdefault("endpoint", "http://127.0.0.1:9/validate")
    kwargs.setdefault("breaker", Breaker())
    return GeeTest(EMULATOR.captcha_id, EMULATOR.captcha_key, **kwargs)


def _gate(*rules: Rule, **kwargs: Any) -> Gate:
    kwargs.setdefault("provider", _provider())
    return Gate(rules or [Rule("/login")], **kwargs)


def _route(gate: Gate, path: str = "/login") -> Route:
    route = gate.route("POST", path)
    assert route is not None
    return route


@dataclass
class Call:
    """A provider call a flow has yielded and waits on (what ``gate.Call`` was): the flow, the
    effect, and the breaker permit it was given (when its breaker is a ``Breaker``)."""

    flow: Flow
    effect: ProviderCall
    permit: Permit | None
    #: The flow's decision, once ``_finish`` answered the call.
    decision: Decision | None = None
    #: The state its operations run on (the gate's, as a door would keep it).
    state: Any = None

    @property
    def request(self) -> ProviderRequest:
        return self.effect.request

    @property
    def timeout(self) -> float:
        return self.effect.timeout


def _begin(gate: Gate, fields: dict[str, str], path: str = "/login") -> Decision | Call:
    """Run the flow up to its provider call (a Call, left out) or to its decision."""
    route = _route(gate, path)
    breaker = route.provider.breaker
    given = len(breaker.permits) if isinstance(breaker, Breaker) else 0
    flow = gate.decide(route, client_request(content_type=FORM))
    step = until_call(flow, body=urlencode(fields).encode(), state=state_of(gate))
    if not isinstance(step, ProviderCall):
        return step
    permit = None
    if isinstance(breaker, Breaker):
        assert len(breaker.permits) == given + 1
        permit = breaker.permits[-1]
    return Call(flow, step, permit, state=state_of(gate))


def _call(gate: Gate, path: str = "/login") -> Call:
    step = _begin(gate, EMULATOR.issue(), path)
    assert isinstance(step, Call)
    return step


def _verdict(decision: Decision | Call) -> Verdict | None:
    """The verdict a decision carries: the one the app is given, or the one denied."""
    if isinstance(decision, Pass):
        return decision.verdict
    if isinstance(decision, Deny):
        return decision.denial.verdict
    return None


def _judge(step: Decision | Call) -> Denial | None:
    """The gate's own answer (what ``gate.judge`` gave), or None when the app is called; of
    a decision, or of a call ``_finish`` answered."""
    decision = step.decision if isinstance(step, Call) else step
    assert decision is not None
    return decision.denial if isinstance(decision, Deny) else None


def _finish(
    call: Call, *, response: httpx.Response | None = None, error: str | None = None
) -> Verdict:
    """Answer the call out with ``response`` or, instead of one, the problem ``error`` names
    (``gate.finish``'s default, when neither is given: "no answer")."""
    answer: ProviderResponse | CallProblem
    if response is not None:
        answer = from_httpx(response)
    else:
        answer = CallProblem((error or "no answer").replace(" ", "_"))
    decision = drive(call.flow, sent=answer, state=call.state).decision
    assert decision is not None
    call.decision = decision
    verdict = _verdict(decision)
    assert verdict is not None
    return verdict


def _answer(document: dict[str, Any], status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=document)


PASS = {"status": "success", "result": "success", "reason": "", "captcha_args": {"a": 1}}
FAIL = {"status": "success", "result": "fail", "reason": "pass_token expire"}


# ---------------------------------------------------------------- construction


def test_bad_max_body_size() -> None:
    with pytest.raises(TypeError):
        _gate(max_body_size="1mb")
    with pytest.raises(TypeError):
        _gate(max_body_size=True)
    with pytest.raises(ValueError):
        _gate(max_body_size=-1)


def test_providers_must_be_providers() -> None:
    with pytest.raises(TypeError, match="expected a captcha_guard provider"):
        _gate(provider=object())
    with pytest.raises(TypeError, match="expected a captcha_guard provider"):
        _gate(providers={"x": "geetest"})


def test_rules_must_be_rules() -> None:
    with pytest.raises(TypeError, match="Rule objects"):
        Gate(["/login"], _provider())  # type: ignore[list-item]


def test_one_breaker_per_provider_instance_is_listed_once() -> None:
    shared = _provider()
    gate = Gate([Rule("/a"), Rule("/b"), Rule("/c", provider="other")], shared, {"other": shared})
    assert gate.providers == (shared,)


def test_match_uses_methods_and_first_rule() -> None:
    gate = _gate(Rule("/a", methods=["PUT"]), Rule("/{x}"))
    put = gate.route("PUT", "/a")
    post = gate.route("POST", "/a")
    assert put is not None and put.rule.methods == {"PUT"}
    assert post is not None and post.rule.pattern == "/{x}"
    assert gate.route("GET", "/a") is None


# ---------------------------------------------------------------- begin: local decisions


def test_a_good_shape_gives_a_call_under_a_permit() -> None:
    gate = _gate()
    call = _call(gate)
    assert call.request.method == "POST"
    assert call.timeout == 5.0
    assert call.permit is not None
    assert not call.permit.probe


def test_malformed_fields_are_rejected_without_a_permit() -> None:
    breaker = Breaker(failure_threshold=1)
    gate = _gate(provider=_provider(breaker=breaker))
    decision = _begin(gate, {**EMULATOR.issue(), "gen_time": "abc"})
    step = _verdict(decision)
    assert isinstance(step, Verdict)
    assert step.outcome is Outcome.REJECTED
    assert step.reason == "malformed gen_time"
    denial = _judge(decision)
    assert denial is not None and denial.status == 403
    # no permit was taken: the breaker would have nothing to hand it back to
    assert breaker.acquire() is not None and breaker.acquire() is not None


def test_open_circuit_falls_back_at_once(caplog: pytest.LogCaptureFixture) -> None:
    breaker = Breaker(failure_threshold=1, reset_timeout=60, clock=FakeClock())
    gate = _gate(provider=_provider(breaker=breaker))
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "captcha_guard"):
        decision = _begin(gate, EMULATOR.issue())
    step = _verdict(decision)
    assert isinstance(step, Verdict)
    assert (step.outcome, step.reason) == (Outcome.FALLBACK, "circuit open")
    assert step.details == {"fault": "provider", "code": None}
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert _judge(decision) is None


def test_fail_open_false_turns_a_fallback_into_503() -> None:
    breaker = Breaker(failure_threshold=1, reset_timeout=60, clock=FakeClock())
    gate = _gate(Rule("/login", fail_open=False), provider=_provider(breaker=breaker))
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    decision = _begin(gate, EMULATOR.issue())
    step = _verdict(decision)
    assert isinstance(step, Verdict)
    denial = _judge(decision)
    assert denial is not None
    assert (denial.status, denial.error, denial.verdict) == (503, "captcha_unavailable", step)


def test_a_provider_that_cannot_build_its_request_falls_back_and_frees_the_probe(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(GeeTest):
        def build_request(self, claim: Claim) -> ProviderRequest:
            raise RuntimeError("boom")

    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    provider = Broken(EMULATOR.captcha_id, EMULATOR.captcha_key, breaker=breaker)
    gate = Gate([Rule("/login")], provider)
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    clock.advance(10)
    with caplog.at_level(logging.ERROR, "captcha_guard"):
        step = _verdict(_begin(gate, EMULATOR.issue()))
    assert isinstance(step, Verdict) and step.outcome is Outcome.FALLBACK
    assert step.details["fault"] == "operator"
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    probe = breaker.acquire()
    assert probe is not None and probe.probe


# ---------------------------------------------------------------- finish: the three bins


def test_a_pass_is_recorded_as_healthy() -> None:
    breaker = Breaker(failure_threshold=2)
    gate = _gate(provider=_provider(breaker=breaker))
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    verdict = _finish(_call(gate), response=_answer(PASS))
    assert verdict.outcome is Outcome.PASSED
    assert verdict.details["captcha_args"] == {"a": 1}
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    assert breaker.state is State.CLOSED  # the pass reset the count


def test_a_rejection_is_a_healthy_call_and_a_403() -> None:
    breaker = Breaker(failure_threshold=1)
    gate = _gate(provider=_provider(breaker=breaker))
    call = _call(gate)
    verdict = _finish(call, response=_answer(FAIL))
    assert verdict.outcome is Outcome.REJECTED
    assert breaker.state is State.CLOSED
    denial = _judge(call)
    assert denial is not None and denial.status == 403


def test_a_provider_failure_falls_back_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    breaker = Breaker(failure_threshold=1)
    gate = _gate(provider=_provider(breaker=breaker))
    with caplog.at_level(logging.DEBUG, "captcha_guard"):
        verdict = _finish(_call(gate), response=httpx.Response(502, text="bad gateway"))
    assert (verdict.outcome, verdict.reason) == (Outcome.FALLBACK, "HTTP 502")
    assert breaker.state is State.OPEN
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["captcha provider geetest unavailable: HTTP 502"]


def test_an_error_instead_of_an_answer_falls_back() -> None:
    gate = _gate()
    verdict = _finish(_call(gate), error="timeout")
    assert (verdict.outcome, verdict.reason) == (Outcome.FALLBACK, "timeout")
    assert _finish(_call(gate)).reason == "no answer"


def test_an_operator_fault_is_logged_at_error_with_its_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = _gate()
    with caplog.at_level(logging.DEBUG, "captcha_guard"):
        verdict = _finish(
            _call(gate),
            response=_answer({"status": "error", "code": "-50105", "msg": "captcha_id paused"}),
        )
    assert verdict.outcome is Outcome.FALLBACK
    assert verdict.details == {"fault": "operator", "code": "-50105"}
    (record,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR
    assert "-50105" in record.getMessage()


def test_an_answer_the_provider_cannot_read_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    class Fragile(GeeTest):
        def read_response(self, claim: Claim, response: ProviderResponse) -> Verdict:
            raise KeyError("surprise")

    breaker = CircuitBreaker(failure_threshold=1)
    provider = Fragile(EMULATOR.captcha_id, EMULATOR.captcha_key, breaker=breaker)
    gate = Gate([Rule("/login")], provider)
    with caplog.at_level(logging.ERROR, "captcha_guard"):
        verdict = _finish(_call(gate), response=_answer(PASS))
    assert (verdict.outcome, verdict.reason) == (Outcome.FALLBACK, "answer could not be read")
    assert breaker.state is State.OPEN


def test_abandon_frees_the_probe_and_counts_nothing() -> None:
    clock = FakeClock()
    breaker = Breaker(failure_threshold=1, reset_timeout=5, clock=clock)
    gate = _gate(provider=_provider(breaker=breaker))
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    clock.advance(5)
    call = _call(gate)
    assert call.permit is not None
    assert call.permit.probe
    fallback = _verdict(_begin(gate, EMULATOR.issue()))
    assert isinstance(fallback, Verdict) and fallback.reason == "circuit open"
    call.flow.close()  # the door was cancelled while the call was out
    assert breaker.state is State.HALF_OPEN
    again = _call(gate).permit
    assert again is not None
    assert again.probe


def test_busy_is_a_503_that_charges_nothing_and_frees_the_probe() -> None:
    clock = FakeClock()
    breaker = Breaker(failure_threshold=1, reset_timeout=5, clock=clock)
    gate = _gate(provider=_provider(breaker=breaker))
    # Closed: BUSY again and again does not open the circuit (one failure would).
    for _ in range(3):
        decision = drive(_call(gate).flow, sent=BUSY, state=state_of(gate)).decision
        assert isinstance(decision, Deny)
        assert (decision.denial.status, decision.denial.error) == (503, "captcha_busy")
        assert decision.denial.verdict is None  # never a fallback
    assert breaker.state is State.CLOSED
    # Half-open: the probe that found no connection is handed back, uncounted.
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    clock.advance(5)
    call = _call(gate)
    assert call.permit is not None and call.permit.probe
    assert isinstance(drive(call.flow, sent=BUSY, state=call.state).decision, Deny)
    assert breaker.state is State.HALF_OPEN
    again = _call(gate).permit
    assert again is not None and again.probe


def test_events_are_emitted_for_a_call_and_none_for_a_cancelled_one() -> None:
    seen: list[object] = []
    clock = FakeClock()
    breaker = Breaker(failure_threshold=1, reset_timeout=5, clock=clock)
    hooks = {"verdict": [seen.append], "breaker": [seen.append]}
    gate = _gate(provider=_provider(breaker=breaker), event_hooks=hooks)
    call = _call(gate)
    call.flow.close()
    assert seen == []
    run = drive(_call(gate).flow, sent=from_httpx(httpx.Response(502)), state=state_of(gate))
    assert isinstance(run.decision, Pass)  # fail-open fallback
    kinds = [type(event).__name__ for event in run.events]
    assert kinds == ["BreakerEvent", "VerdictEvent"]
    assert seen == run.events


def test_a_named_provider_is_named_in_the_verdict() -> None:
    gate = _gate(
        Rule("/signup", provider="strict"), Rule("/login"), providers={"strict": _provider()}
    )
    verdict = _finish(_call(gate, "/signup"), response=_answer(PASS))
    assert verdict.provider == "strict"
    assert _finish(_call(gate), response=_answer(PASS)).provider == "geetest"


def test_the_gate_never_logs_a_secret_or_a_token(caplog: pytest.LogCaptureFixture) -> None:
    gate = _gate()
    issued = [EMULATOR.issue() for _ in range(6)]
    answers: list[httpx.Response] = [
        _answer(PASS),
        _answer(FAIL),
        _answer({"status": "success", "result": "fail", "reason": "illegal sign_token"}),
        _answer({"status": "error", "code": "-50101", "msg": "not captcha_id"}),
        _answer({"status": "error", "code": "-50000", "msg": "runtime error"}),
        httpx.Response(500),
    ]
    with caplog.at_level(logging.DEBUG):
        for fields, answer in zip(issued, answers, strict=True):
            step = _begin(gate, fields)
            assert isinstance(step, Call)
            _finish(step, response=answer)
    assert {r.levelname for r in caplog.records} >= {"DEBUG", "WARNING", "ERROR"}
    assert_logs_clean(caplog.records, EMULATOR.captcha_key, *tokens_of(issued))


def test_the_log_check_can_fail() -> None:
    record = logging.LogRecord(
        "captcha_guard", logging.ERROR, __file__, 1, "key %s", ("k3y",), None
    )
    with pytest.raises(AssertionError, match="logged a secret"):
        assert_logs_clean([record], "k3y")


def test_a_claim_never_prints_the_tokens_it_carries() -> None:
    request = ClientRequest("POST", "/login", None, {}, raw={})
    claim = Claim({"pass_token": "s3cr3t-token-value"}, replay_key="geetest:abc", request=request)
    assert "s3cr3t-token-value" not in repr(claim)
    assert "geetest:abc" in repr(claim)


def test_an_outage_logs_one_line_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from captcha_guard._logs import OUTAGE_LOG_INTERVAL, OutageLog

    clock = FakeClock()
    log = OutageLog(clock)
    with caplog.at_level(logging.WARNING, "captcha_guard"):
        for _ in range(500):
            log.note("geetest", "timeout")
        log.note("geetest", "timeout", "captcha already used")
        log.note("turnstile", "HTTP 500")
        clock.advance(OUTAGE_LOG_INTERVAL)
        log.note("geetest", "circuit open")
    assert [r.getMessage() for r in caplog.records] == [
        "captcha provider geetest unavailable: timeout",
        "captcha provider geetest unavailable (timeout); fallback refused: captcha already used",
        "captcha provider turnstile unavailable: HTTP 500",
        "captcha provider geetest unavailable: circuit open (499 more since the last line)",
    ]
