"""The shared decision, without any I/O: the gate is fed the provider's answers directly."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from captcha_guard import CircuitBreaker, GeeTest, Outcome, Rule, Verdict
from captcha_guard.breaker import State
from captcha_guard.gate import Call, Gate, Route
from captcha_guard.providers.base import Claim, RequestInfo
from captcha_guard.responses import Denial
from captcha_guard.testing import GeeTestEmulator
from tests.helpers import FakeClock, assert_logs_clean, tokens_of

EMULATOR = GeeTestEmulator()
INFO = RequestInfo("POST", "/login", "127.0.0.1", {}, raw=None)
FORM = "application/x-www-form-urlencoded"


def _provider(**kwargs: Any) -> GeeTest:
    kwargs.setdefault("endpoint", "http://127.0.0.1:9/validate")
    return GeeTest(EMULATOR.captcha_id, EMULATOR.captcha_key, **kwargs)


def _gate(*rules: Rule, **kwargs: Any) -> Gate:
    kwargs.setdefault("provider", _provider())
    return Gate(rules or [Rule("/login")], **kwargs)


def _route(gate: Gate, path: str = "/login") -> Route:
    route = gate.match("POST", path)
    assert route is not None
    return route


def _begin(gate: Gate, fields: dict[str, str], path: str = "/login") -> Denial | Verdict | Call:
    return gate.begin(
        _route(gate, path),
        request=INFO,
        content_type=FORM,
        body=urlencode(fields).encode(),
        query_string=b"",
        header_value=None,
    )


def _call(gate: Gate, path: str = "/login") -> Call:
    step = _begin(gate, EMULATOR.issue(), path)
    assert isinstance(step, Call)
    return step


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
    put = gate.match("PUT", "/a")
    post = gate.match("POST", "/a")
    assert put is not None and put.rule.methods == {"PUT"}
    assert post is not None and post.rule.pattern == "/{x}"
    assert gate.match("GET", "/a") is None


# ---------------------------------------------------------------- begin: local decisions


def test_a_good_shape_gives_a_call_under_a_permit() -> None:
    gate = _gate()
    call = _call(gate)
    assert call.request.method == "POST"
    assert call.timeout == 5.0
    assert not call.permit.probe


def test_malformed_fields_are_rejected_without_a_permit() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    gate = _gate(provider=_provider(breaker=breaker))
    step = _begin(gate, {**EMULATOR.issue(), "gen_time": "abc"})
    assert isinstance(step, Verdict)
    assert step.outcome is Outcome.REJECTED
    assert step.reason == "malformed gen_time"
    denial = gate.judge(_route(gate), step)
    assert denial is not None and denial.status == 403
    # no permit was taken: the breaker would have nothing to hand it back to
    assert breaker.acquire() is not None and breaker.acquire() is not None


def test_open_circuit_falls_back_at_once(caplog: pytest.LogCaptureFixture) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=60, clock=FakeClock())
    gate = _gate(provider=_provider(breaker=breaker))
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, "captcha_guard"):
        step = _begin(gate, EMULATOR.issue())
    assert isinstance(step, Verdict)
    assert (step.outcome, step.reason) == (Outcome.FALLBACK, "circuit open")
    assert step.details == {"fault": "provider", "code": None}
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert gate.judge(_route(gate), step) is None


def test_fail_open_false_turns_a_fallback_into_503() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=60, clock=FakeClock())
    gate = _gate(Rule("/login", fail_open=False), provider=_provider(breaker=breaker))
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    step = _begin(gate, EMULATOR.issue())
    assert isinstance(step, Verdict)
    denial = gate.judge(_route(gate), step)
    assert denial is not None
    assert (denial.status, denial.error, denial.verdict) == (503, "captcha_unavailable", step)


def test_a_provider_that_cannot_build_its_request_falls_back_and_frees_the_probe(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(GeeTest):
        def build_request(self, claim: Claim) -> httpx.Request:
            raise RuntimeError("boom")

    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    provider = Broken(EMULATOR.captcha_id, EMULATOR.captcha_key, breaker=breaker)
    gate = Gate([Rule("/login")], provider)
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    clock.advance(10)
    with caplog.at_level(logging.ERROR, "captcha_guard"):
        step = _begin(gate, EMULATOR.issue())
    assert isinstance(step, Verdict) and step.outcome is Outcome.FALLBACK
    assert step.details["fault"] == "operator"
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    probe = breaker.acquire()
    assert probe is not None and probe.probe


# ---------------------------------------------------------------- finish: the three bins


def test_a_pass_is_recorded_as_healthy() -> None:
    breaker = CircuitBreaker(failure_threshold=2)
    gate = _gate(provider=_provider(breaker=breaker))
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    verdict = gate.finish(_call(gate), response=_answer(PASS))
    assert verdict.outcome is Outcome.PASSED
    assert verdict.details["captcha_args"] == {"a": 1}
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    assert breaker.state is State.CLOSED  # the pass reset the count


def test_a_rejection_is_a_healthy_call_and_a_403() -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    gate = _gate(provider=_provider(breaker=breaker))
    verdict = gate.finish(_call(gate), response=_answer(FAIL))
    assert verdict.outcome is Outcome.REJECTED
    assert breaker.state is State.CLOSED
    denial = gate.judge(_route(gate), verdict)
    assert denial is not None and denial.status == 403


def test_a_provider_failure_falls_back_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    breaker = CircuitBreaker(failure_threshold=1)
    gate = _gate(provider=_provider(breaker=breaker))
    with caplog.at_level(logging.DEBUG, "captcha_guard"):
        verdict = gate.finish(_call(gate), response=httpx.Response(502, text="bad gateway"))
    assert (verdict.outcome, verdict.reason) == (Outcome.FALLBACK, "HTTP 502")
    assert breaker.state is State.OPEN
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["captcha provider geetest unavailable: HTTP 502"]


def test_an_error_instead_of_an_answer_falls_back() -> None:
    gate = _gate()
    verdict = gate.finish(_call(gate), error="timeout")
    assert (verdict.outcome, verdict.reason) == (Outcome.FALLBACK, "timeout")
    assert gate.finish(_call(gate)).reason == "no answer"


def test_an_operator_fault_is_logged_at_error_with_its_code(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = _gate()
    with caplog.at_level(logging.DEBUG, "captcha_guard"):
        verdict = gate.finish(
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
        def read_response(self, claim: Claim, response: httpx.Response) -> Verdict:
            raise KeyError("surprise")

    breaker = CircuitBreaker(failure_threshold=1)
    provider = Fragile(EMULATOR.captcha_id, EMULATOR.captcha_key, breaker=breaker)
    gate = Gate([Rule("/login")], provider)
    with caplog.at_level(logging.ERROR, "captcha_guard"):
        verdict = gate.finish(_call(gate), response=_answer(PASS))
    assert (verdict.outcome, verdict.reason) == (Outcome.FALLBACK, "answer could not be read")
    assert breaker.state is State.OPEN


def test_abandon_frees_the_probe_and_counts_nothing() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=5, clock=clock)
    gate = _gate(provider=_provider(breaker=breaker))
    breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    clock.advance(5)
    call = _call(gate)
    assert call.permit.probe
    fallback = _begin(gate, EMULATOR.issue())
    assert isinstance(fallback, Verdict) and fallback.reason == "circuit open"
    gate.abandon(call)
    assert breaker.state is State.HALF_OPEN
    assert _call(gate).permit.probe


def test_a_named_provider_is_named_in_the_verdict() -> None:
    gate = _gate(
        Rule("/signup", provider="strict"), Rule("/login"), providers={"strict": _provider()}
    )
    verdict = gate.finish(_call(gate, "/signup"), response=_answer(PASS))
    assert verdict.provider == "strict"
    assert gate.finish(_call(gate), response=_answer(PASS)).provider == "geetest"


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
            gate.finish(step, response=answer)
    assert {r.levelname for r in caplog.records} >= {"DEBUG", "WARNING", "ERROR"}
    assert_logs_clean(caplog.records, EMULATOR.captcha_key, *tokens_of(issued))


def test_the_log_check_can_fail() -> None:
    record = logging.LogRecord(
        "captcha_guard", logging.ERROR, __file__, 1, "key %s", ("k3y",), None
    )
    with pytest.raises(AssertionError, match="logged a secret"):
        assert_logs_clean([record], "k3y")


def test_a_claim_never_prints_the_tokens_it_carries() -> None:
    request = RequestInfo("POST", "/login", None, {}, raw={})
    claim = Claim({"pass_token": "s3cr3t-token-value"}, replay_key="geetest:abc", request=request)
    assert "s3cr3t-token-value" not in repr(claim)
    assert "geetest:abc" in repr(claim)
