from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest

from captcha_guard import CircuitBreaker, GeeTest, Outcome, Verdict
from captcha_guard._fields import FieldError, Fields
from captcha_guard._verdict import Fault, ProviderFailure
from captcha_guard.providers._base import Claim, ClientRequest
from captcha_guard.providers.geetest import ENDPOINTS, OPERATOR_ERRORS, USER_ERRORS, sign_token
from tests.wire import as_httpx, from_httpx

CAPTCHA_ID = "647f5ed2ed8acb4be36784e01556bb71"
CAPTCHA_KEY = "b09a7aafbfd83f73b35a9b530d0337bf"
LOT = "4dc3cfc2cdff448cad8d13107198d473"
INFO = ClientRequest("POST", "/login", "127.0.0.1", {}, raw=None)


def _provider(**kwargs: Any) -> GeeTest:
    return GeeTest(CAPTCHA_ID, CAPTCHA_KEY, **kwargs)


def _client_fields(**overrides: str) -> dict[str, str]:
    values = {
        "lot_number": LOT,
        "captcha_output": "fCKyv3ccESGAw9ITd0bmmGhGRAeFeMBBkafxq2Cm9wnMoFW0vjvRDfeRu6H8=",
        "pass_token": "bb5ae2bbfd3e3d9ac2bdf7ae2b1db4bdac1ac9a5c1da9efbd2c6a1f2b5e7a9e3",
        "gen_time": "1700000000",
    }
    values.update(overrides)
    return values


def _fields(values: dict[str, str]) -> Fields:
    fields = Fields()
    fields.extend(values.items())
    return fields


def _claim(provider: GeeTest | None = None) -> Claim:
    return (provider or _provider()).check(_fields(_client_fields()), INFO)


def _read(document: Any, status: int = 200) -> Verdict | ProviderFailure:
    if isinstance(document, (dict, list)):
        response = httpx.Response(status, json=document)
    else:
        response = httpx.Response(status, content=document)
    return _provider().read_response(_claim(), from_httpx(response))


# ---------------------------------------------------------------- the request


def test_sign_token_vector_from_providers_md() -> None:
    assert sign_token(CAPTCHA_KEY, LOT) == (
        "c99f3aa68104bdcd085f372dc6556a17a5a830a1a3d25125fb0010466977f3d8"
    )


def test_the_request_is_what_the_vendor_demo_sends() -> None:
    provider = _provider(endpoint="http://gcaptcha4.geetest.com/validate")
    values = _client_fields()
    request = as_httpx(provider.build_request(provider.check(_fields(values), INFO)))
    # The demo: url = api_server + '/validate?captcha_id=' + id; requests.post(url, query)
    demo_query = {**values, "sign_token": sign_token(CAPTCHA_KEY, LOT)}
    assert request.method == "POST"
    assert str(request.url) == f"http://gcaptcha4.geetest.com/validate?captcha_id={CAPTCHA_ID}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    body = request.read()
    assert body == urlencode(demo_query).encode()
    assert [name for name, _ in parse_qsl(body.decode())] == [
        "lot_number",
        "captcha_output",
        "pass_token",
        "gen_time",
        "sign_token",
    ]
    assert CAPTCHA_KEY.encode() not in body and CAPTCHA_KEY not in str(request.url)


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:8123/validate", "https://gcaptcha4.geetest.com/validate"]
)
def test_the_request_is_the_one_httpx_builds_from_params_and_data(endpoint: str) -> None:
    provider = _provider(endpoint=endpoint)
    values = _client_fields(captcha_output="a+b/c=d&e%f~g")
    request = as_httpx(provider.build_request(provider.check(_fields(values), INFO)))
    form = {**values, "sign_token": sign_token(CAPTCHA_KEY, LOT)}
    expected = httpx.Request("POST", endpoint, params={"captcha_id": CAPTCHA_ID}, data=form)
    assert (request.method, request.url, request.content) == (
        expected.method,
        expected.url,
        expected.content,
    )
    assert dict(request.headers) == dict(expected.headers)
    # Header for header, in order, what httpx sends for content= with a content-type.
    url = httpx.URL(endpoint, params={"captcha_id": CAPTCHA_ID})
    headers = {"content-type": "application/x-www-form-urlencoded"}
    plain = httpx.Request("POST", url, content=urlencode(form).encode(), headers=headers)
    assert request.headers.raw == plain.headers.raw
    assert request.extensions == plain.extensions == {}


def test_check_makes_a_claim_keyed_by_the_lot_number() -> None:
    claim = _claim()
    assert dict(claim.values) == _client_fields()
    assert claim.replay_key == f"geetest:{LOT}"
    assert claim.request is INFO


def test_extra_fields_are_not_forwarded() -> None:
    provider = _provider()
    values = {**_client_fields(), "captcha_id": "0" * 32, "sign_token": "forged", "user": "x"}
    body = as_httpx(provider.build_request(provider.check(_fields(values), INFO))).read().decode()
    sent = dict(parse_qsl(body))
    assert sent["sign_token"] == sign_token(CAPTCHA_KEY, LOT)
    assert "captcha_id" not in sent and "user" not in sent


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        (None, "https://gcaptcha4.geetest.com/validate"),
        ("cn", "https://gcaptcha4.geetest.com/validate"),
        ("global", "https://cap-global.geelabapi.com/validate"),
        ("eu", "https://cap-eu.geelabapi.com/validate"),
        ("na", "https://cap-na.geelabapi.com/validate"),
    ],
)
def test_regions_map_to_their_endpoints(region: str | None, endpoint: str) -> None:
    provider = _provider(region=region)
    assert provider.endpoint == endpoint
    assert as_httpx(provider.build_request(_claim(provider))).url.host == httpx.URL(endpoint).host


def test_endpoint_overrides_the_region() -> None:
    provider = _provider(region="eu", endpoint="http://127.0.0.1:8080/v")
    assert provider.endpoint == "http://127.0.0.1:8080/v"


def test_defaults() -> None:
    provider = _provider()
    assert provider.timeout == 5.0
    assert isinstance(provider.breaker, CircuitBreaker)
    assert provider.breaker is not _provider().breaker  # one breaker per provider
    breaker = CircuitBreaker()
    assert _provider(breaker=breaker).breaker is breaker
    assert set(ENDPOINTS) == {None, "cn", "global", "eu", "na"}


@pytest.mark.parametrize(
    "captcha_id", ["", " " + CAPTCHA_ID, "647f5ed2-ed8a", "a" * 65, "ïd", None, 42]
)
def test_bad_captcha_id_is_rejected(captcha_id: object) -> None:
    with pytest.raises(ValueError, match="captcha_id"):
        GeeTest(captcha_id, CAPTCHA_KEY)  # type: ignore[arg-type]


@pytest.mark.parametrize("captcha_key", ["", None, b"key"])
def test_bad_captcha_key_is_rejected(captcha_key: object) -> None:
    with pytest.raises(ValueError, match="captcha_key"):
        GeeTest(CAPTCHA_ID, captcha_key)  # type: ignore[arg-type]


@pytest.mark.parametrize("region", ["us", "EU", "", "global "])
def test_unknown_region_is_rejected(region: str) -> None:
    with pytest.raises(ValueError, match="unknown region"):
        _provider(region=region)


@pytest.mark.parametrize("endpoint", ["ftp://x/validate", "gcaptcha4.geetest.com", "http://"])
def test_bad_endpoint_is_rejected(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        _provider(endpoint=endpoint)


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
def test_bad_timeout_is_rejected(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        _provider(timeout=timeout)


def test_repr_never_shows_the_key() -> None:
    provider = _provider()
    assert CAPTCHA_KEY not in repr(provider)
    assert CAPTCHA_KEY not in str(vars(provider).get("endpoint"))


# ---------------------------------------------------------------- local shape checks


@pytest.mark.parametrize(
    ("name", "longest_ok"),
    [("lot_number", 128), ("captcha_output", 4096), ("pass_token", 256), ("gen_time", 13)],
)
def test_lengths_are_bounded(name: str, longest_ok: int) -> None:
    char = "7"
    provider = _provider()
    provider.check(_fields(_client_fields(**{name: char * longest_ok})), INFO)
    with pytest.raises(FieldError, match=f"malformed {name}"):
        provider.check(_fields(_client_fields(**{name: char * (longest_ok + 1)})), INFO)
    with pytest.raises(FieldError, match=f"malformed {name}"):
        provider.check(_fields(_client_fields(**{name: ""})), INFO)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("gen_time", "abc"),
        ("gen_time", "17e8"),
        ("gen_time", "-1"),
        ("gen_time", "\uff11\uff17\uff10\uff10"),  # fullwidth: str.isdigit says yes, GeeTest no
        ("gen_time", " 1700000000"),
        ("lot_number", "4dc3cfc2-cdff"),
        ("lot_number", LOT + "\n"),
        ("captcha_output", "with space"),
        ("captcha_output", "tab\there"),
        ("captcha_output", "é"),
        ("pass_token", "a+b"),
        ("pass_token", "a\x00b"),
    ],
)
def test_malformed_fields_are_refused_locally(name: str, value: str) -> None:
    with pytest.raises(FieldError, match=f"malformed {name}"):
        _provider().check(_fields(_client_fields(**{name: value})), INFO)


@pytest.mark.parametrize("name", ["lot_number", "captcha_output", "pass_token", "gen_time"])
def test_missing_fields_are_refused(name: str) -> None:
    values = _client_fields()
    del values[name]
    with pytest.raises(FieldError, match=f"missing {name}"):
        _provider().check(_fields(values), INFO)


# ---------------------------------------------------------------- reading the answer


def test_success_passes_with_captcha_args() -> None:
    args = {"used_type": "slide", "lot_number": LOT}
    verdict = _read({"status": "success", "result": "success", "reason": "", "captcha_args": args})
    assert isinstance(verdict, Verdict)
    assert verdict.outcome is Outcome.PASSED
    assert verdict.provider == "geetest"
    assert verdict.details["captcha_args"] == args


@pytest.mark.parametrize(
    "reason", ["pass_token expire", "lot_number not match", "anything else", "", None]
)
def test_fail_is_the_users_fault(reason: str | None) -> None:
    verdict = _read({"status": "success", "result": "fail", "reason": reason})
    assert isinstance(verdict, Verdict)
    assert verdict.outcome is Outcome.REJECTED
    assert verdict.note.hint is None


def test_illegal_sign_token_is_403_but_flags_the_misconfiguration() -> None:
    verdict = _read({"status": "success", "result": "fail", "reason": "illegal sign_token"})
    assert isinstance(verdict, Verdict)
    assert verdict.outcome is Outcome.REJECTED
    hint = verdict.note.hint
    assert hint is not None and hint.level == logging.ERROR and "captcha_key" in hint.text


@pytest.mark.parametrize("code", sorted(USER_ERRORS))
def test_user_error_codes_are_rejected(code: str) -> None:
    verdict = _read({"status": "error", "code": code, "msg": "m"})
    assert isinstance(verdict, Verdict)
    assert verdict.outcome is Outcome.REJECTED
    assert code in verdict.reason


def test_the_bins_are_the_ones_in_providers_md() -> None:
    assert (
        frozenset(["-50002", "-50003", "-50004", "-50005"] + [f"-5030{i}" for i in range(1, 9)])
        == USER_ERRORS
    )
    assert frozenset(["-50001", "-50101", "-50102", "-50103", "-50104", "-50105"]) == (
        OPERATOR_ERRORS
    )


@pytest.mark.parametrize("code", sorted(OPERATOR_ERRORS))
def test_operator_error_codes_are_the_operators_fault(code: str) -> None:
    failure = _read({"status": "error", "code": code, "msg": "m"})
    assert isinstance(failure, ProviderFailure)
    assert failure.fault is Fault.OPERATOR
    assert failure.operator
    assert failure.code == code


@pytest.mark.parametrize("code", ["-50000", "-50999", "-1", "0", "", None])
def test_other_error_codes_are_the_providers_fault(code: str | None) -> None:
    failure = _read({"status": "error", "code": code, "msg": "runtime error"})
    assert isinstance(failure, ProviderFailure)
    assert failure.fault is Fault.PROVIDER


def test_a_numeric_code_is_read_like_a_string() -> None:
    verdict = _read({"status": "error", "code": -50005, "msg": "illegal gen_time"})
    assert isinstance(verdict, Verdict) and verdict.outcome is Outcome.REJECTED
    failure = _read({"status": "error", "code": -50102, "msg": "x"})
    assert isinstance(failure, ProviderFailure) and failure.operator


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_http_errors_are_the_providers_fault(status: int) -> None:
    # even with a body that would pass: the status says the answer cannot be trusted
    failure = _read({"status": "success", "result": "success"}, status=status)
    assert isinstance(failure, ProviderFailure)
    assert failure.fault is Fault.PROVIDER
    assert str(status) in failure.reason


@pytest.mark.parametrize(
    "document",
    [
        b"<html>We're sorry</html>",
        b"\x00{not json",
        b"",
        ["status", "success"],
        {"status": "weird"},
        {"result": "success"},
        {"status": "success", "result": "maybe"},
        {"status": "success"},
        b"[" * 100_000,
    ],
)
def test_unreadable_answers_are_the_providers_fault(document: Any) -> None:
    failure = _read(document)
    assert isinstance(failure, ProviderFailure)
    assert failure.fault is Fault.PROVIDER


def test_a_4xx_with_html_is_a_failure_not_a_pass() -> None:
    failure = _read(b"<html>Not Found</html>", status=404)
    assert isinstance(failure, ProviderFailure)


def test_vendor_messages_are_bounded_and_single_line() -> None:
    msg = "line one\r\nline two " + "x" * 10_000
    failure = _read({"status": "error", "code": "-50000", "msg": msg})
    assert isinstance(failure, ProviderFailure)
    assert "\n" not in failure.reason and "\r" not in failure.reason
    assert len(failure.reason) < 150
    verdict = _read({"status": "success", "result": "fail", "reason": msg})
    assert isinstance(verdict, Verdict)
    assert "\n" not in verdict.reason and len(verdict.reason) < 150


def test_captcha_args_that_is_not_an_object_is_dropped() -> None:
    verdict = _read(
        json.loads('{"status": "success", "result": "success", "captcha_args": "junk"}')
    )
    assert isinstance(verdict, Verdict)
    assert verdict.details["captcha_args"] == {}
