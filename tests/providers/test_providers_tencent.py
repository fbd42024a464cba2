"""Tencent Cloud Captcha end to end: a guarded app under uvicorn, the emulator served for real
on 127.0.0.1 (recomputing every TC3 signature), every row of the fault table, the official
signing vector, and the provider on its own."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from captcha_guard import TencentCaptcha
from captcha_guard._fields import Fields
from captcha_guard._logs import SuspectLog
from captcha_guard._verdict import Fault, ProviderFailure, Verdict
from captcha_guard.providers._base import Claim, ClientRequest
from captcha_guard.providers._faults import TENCENT, TENCENT_CAPTCHA
from captcha_guard.providers.tencent import endpoint_for, sign, utc_date
from captcha_guard.testing import TencentCaptchaEmulator
from tests.helpers import FakeClock
from tests.providers.guarded import Stage, patient, staged
from tests.wire import as_httpx, from_httpx, send_in_process

# The official example of TC3-HMAC-SHA256 (providers.md: the vendor's CVM example).
VECTOR_SECRET_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
VECTOR_SECRET_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
VECTOR_BODY = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
VECTOR_HEADERS = {
    "content-type": "application/json; charset=utf-8",
    "host": "cvm.tencentcloudapi.com",
}
VECTOR_PAYLOAD_HASH = "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
VECTOR_CANONICAL_HASH = "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
VECTOR_SIGNATURE = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"

OPERATOR_ERRORS = [
    "AuthFailure.SignatureFailure",
    "AuthFailure.SecretIdNotFound",
    "AuthFailure.SignatureExpire",
    "UnauthorizedOperation.Unauthorized",
    "InvalidAction",
    "NoSuchVersion",
    "UnsupportedRegion",
    "IpNotInWhitelist",
]
PROVIDER_ERRORS = ["InternalError", "RequestLimitExceeded", "FailedOperation", "SomethingNew"]
PARAMETER_ERRORS = ["InvalidParameter", "InvalidParameterValue", "MissingParameter"]


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    emulator = TencentCaptchaEmulator()
    with emulator.serve() as upstream:

        def make(**options: Any) -> TencentCaptcha:
            return TencentCaptcha(
                options.pop("secret_id", emulator.secret_id),
                options.pop("secret_key", emulator.secret_key),
                captcha_app_id=options.pop("captcha_app_id", emulator.captcha_app_id),
                app_secret_key=options.pop("app_secret_key", emulator.app_secret_key),
                endpoint=upstream.endpoint("/"),
                breaker=patient(),
                **options,
            )

        main = make()
        providers = {
            "tencent": main,
            "tencent-closed": main,
            "lenient": make(refuse_evil=False),
            "wrong-secret-key": make(secret_key="NotTheSecretKeyOfThisId000000000"),
            "unknown-secret-id": make(secret_id="AKIDSomebodyElsesSecretId"),
            "skewed-clock": make(clock=lambda: time.time() - 3600),
            "wrong-app": make(captcha_app_id=190000001),
            "wrong-app-key": make(app_secret_key="NotTheAppSecretKey0000000"),
        }
        with staged(emulator, upstream, **providers) as stage:
            yield stage


@pytest.fixture
def emulator(stage: Stage) -> Iterator[TencentCaptchaEmulator]:
    emulator = stage.emulator
    assert isinstance(emulator, TencentCaptchaEmulator)
    stage.reset()
    emulator.bodies.clear()
    yield emulator
    stage.reset()
    emulator.force_error = None
    emulator.force_code = None


def test_a_solved_widget_passes(stage: Stage, emulator: TencentCaptchaEmulator) -> None:
    answer = stage.post("tencent", {**emulator.issue(), "account": "ada"})
    assert answer.status_code == 200
    seen = answer.json()
    assert (seen["outcome"], seen["provider"], seen["reason"]) == ("passed", "tencent", "ok")
    assert seen["details"]["captcha_code"] == 1
    assert seen["details"]["evil_level"] == 0
    assert len(seen["details"]["request_id"]) == 36
    assert seen["body"].endswith("account=ada")  # the app gets the body untouched


def test_the_request_is_what_tencent_documents(
    stage: Stage, emulator: TencentCaptchaEmulator
) -> None:
    fields = emulator.issue()
    stage.post("tencent", fields)
    (request,) = emulator.requests
    assert (request.method, request.url.path) == ("POST", "/")
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.headers["x-tc-action"] == "DescribeCaptchaResult"
    assert request.headers["x-tc-version"] == "2019-07-22"
    assert abs(int(request.headers["x-tc-timestamp"]) - time.time()) < 5
    body = json.loads(request.content)
    assert body == {
        "CaptchaType": 9,
        "Ticket": fields["ticket"],
        "Randstr": fields["randstr"],
        "CaptchaAppId": emulator.captcha_app_id,
        "AppSecretKey": emulator.app_secret_key,
        "UserIp": "127.0.0.1",
    }
    assert type(body["CaptchaAppId"]) is int  # a JSON integer, not a string
    date = utc_date(int(request.headers["x-tc-timestamp"]))
    assert request.headers["authorization"].startswith(
        f"TC3-HMAC-SHA256 Credential={emulator.secret_id}/{date}/captcha/tc3_request, "
        "SignedHeaders=content-type;host, Signature="
    )


def test_a_ticket_verifies_once(stage: Stage, emulator: TencentCaptchaEmulator) -> None:
    fields = emulator.issue()
    assert stage.post("tencent", fields).status_code == 200
    again = stage.post("tencent", fields)
    assert again.status_code == 403
    assert again.json()["reason"] == "tencent 9: ticket reused"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda e: {**e.issue(), "randstr": "@bad"},
            "tencent 7: Randstr does not match the ticket",
        ),
        (
            lambda e: {"ticket": "tr03" + "A" * 40 + "*", "randstr": "@abc"},
            "tencent 15: ticket could not be decrypted",
        ),
    ],
)
def test_a_false_ticket_is_403(
    stage: Stage,
    emulator: TencentCaptchaEmulator,
    make: Callable[[Any], dict[str, str]],
    reason: str,
) -> None:
    answer = stage.post("tencent", make(emulator))
    assert answer.status_code == 403
    assert answer.json()["reason"] == reason
    assert emulator.calls == 1


def test_an_expired_ticket_is_403(stage: Stage, emulator: TencentCaptchaEmulator) -> None:
    issued_at = time.time() - emulator.ticket_lifetime - 1
    emulator.clock = lambda: issued_at
    fields = emulator.issue()
    emulator.clock = time.time
    answer = stage.post("tencent", fields)
    assert answer.json()["reason"] == "tencent 8: ticket expired"


def test_a_disaster_ticket_never_passes_on_its_own(
    stage: Stage, emulator: TencentCaptchaEmulator
) -> None:
    # Tencent's docs let the backend pass trerror_ tickets; anyone can make one.
    answer = stage.post("tencent", emulator.disaster_ticket())
    assert answer.status_code == 403
    assert answer.json()["reason"] == (
        "tencent 21: a trerror_ disaster ticket (the widget's script did not load)"
    )
    assert emulator.calls == 1  # verified like any other ticket


def test_a_disaster_ticket_that_passes_is_not_believed() -> None:
    provider = TencentCaptcha("AKID", "key", captcha_app_id=1, app_secret_key="app")
    claim = _claim(provider, "trerror_1001_1_1700000000")
    result = provider.read_response(claim, _answer({"CaptchaCode": 1, "EvilLevel": 0}))
    # Refused, not a provider failure: a failure would fall back, i.e. pass.
    assert isinstance(result, Verdict) and not result.passed
    assert result.reason == "tencent: a trerror_ disaster ticket never passes"


def test_an_evil_request_is_refused_unless_the_site_says_otherwise(
    stage: Stage, emulator: TencentCaptchaEmulator
) -> None:
    refused = stage.post("tencent", emulator.issue(evil_level=100))
    assert refused.status_code == 403
    assert refused.json()["reason"] == "tencent: EvilLevel 100 (judged malicious)"
    allowed = stage.post("lenient", emulator.issue(evil_level=100))
    assert allowed.json()["outcome"] == "passed"
    assert allowed.json()["details"]["evil_level"] == 100


@pytest.mark.parametrize("route", ["tencent", "wrong-app", "wrong-app-key"])
def test_codes_16_and_100_are_403_with_one_warning_per_interval(
    stage: Stage, emulator: TencentCaptchaEmulator, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A ticket of another app (any client can send one) and our own mixed-up app keys read the
    # same: the client's 403, a WARNING that names both keys, once per interval.
    make = (lambda: emulator.issue(app_id=190000002)) if route == "tencent" else emulator.issue
    answers = [stage.post(route, make()) for _ in range(3)]
    assert [a.status_code for a in answers] == [403, 403, 403]
    code = 100 if route == "wrong-app-key" else 16
    assert answers[0].json()["reason"].startswith(f"tencent {code}: ")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not the CAM SecretId/SecretKey" in warnings[0]
    assert "check captcha_app_id and app_secret_key" in warnings[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert emulator.app_secret_key not in caplog.text


def test_the_suspect_log_counts_what_it_did_not_write(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    log = SuspectLog(clock, interval=60.0)
    with caplog.at_level(logging.WARNING, logger="captcha_guard"):
        for _ in range(5):
            log.note("tencent", "mix-up")
        log.note("tencent", "another hint")  # each hint has its own interval
        clock.advance(60.0)
        log.note("tencent", "mix-up")
    assert [r.getMessage() for r in caplog.records] == [
        "captcha provider tencent: mix-up",
        "captcha provider tencent: another hint",
        "captcha provider tencent: mix-up (4 more since the last line)",
    ]


@pytest.mark.parametrize("code", sorted(TENCENT_CAPTCHA.codes(Fault.USER), key=int))
def test_every_user_captcha_code_is_403(
    stage: Stage, emulator: TencentCaptchaEmulator, code: str
) -> None:
    emulator.force_code = int(code)
    answer = stage.post("tencent", emulator.issue())
    assert answer.status_code == 403
    assert answer.json()["reason"].startswith(f"tencent {code}: ")


def test_an_unknown_captcha_code_is_403(stage: Stage, emulator: TencentCaptchaEmulator) -> None:
    emulator.force_code = 42
    answer = stage.post("tencent", emulator.issue())
    assert answer.status_code == 403
    assert answer.json()["reason"] == "tencent 42: error"


def test_code_31_is_our_account(
    stage: Stage, emulator: TencentCaptchaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_code = 31
    answer = stage.post("tencent", emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"] == {"fault": "operator", "code": "31"}
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


@pytest.mark.parametrize("code", OPERATOR_ERRORS)
def test_an_error_about_our_key_or_account_falls_back_and_is_logged(
    stage: Stage, emulator: TencentCaptchaEmulator, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_error = code
    answer = stage.post("tencent", emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"] == {"fault": "operator", "code": code}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and code in errors[0]
    assert emulator.secret_key not in caplog.text
    assert stage.post("tencent-closed", emulator.issue()).status_code == 503


@pytest.mark.parametrize("code", PROVIDER_ERRORS)
def test_an_error_of_the_vendor_falls_back(
    stage: Stage, emulator: TencentCaptchaEmulator, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_error = code
    answer = stage.post("tencent", emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"]["fault"] == "provider"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize("code", PARAMETER_ERRORS)
def test_a_complaint_about_parameters_is_403_and_a_warning(
    stage: Stage, emulator: TencentCaptchaEmulator, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_error = code
    answer = stage.post("tencent", emulator.issue())
    assert answer.status_code == 403
    assert answer.json()["reason"] == f"tencent {code}"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize(
    ("route", "code"),
    [
        ("wrong-secret-key", "AuthFailure.SignatureFailure"),
        ("unknown-secret-id", "AuthFailure.SecretIdNotFound"),
        ("skewed-clock", "AuthFailure.SignatureExpire"),
    ],
)
def test_our_misconfiguration_found_by_the_emulator_falls_back(
    stage: Stage, emulator: TencentCaptchaEmulator, route: str, code: str
) -> None:
    answer = stage.post(route, emulator.issue())
    assert answer.json()["details"] == {"fault": "operator", "code": code}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"randstr": "@abc"}, "missing ticket"),
        ({"ticket": "tr03abc*"}, "missing randstr"),
        ({"ticket": "", "randstr": "@abc"}, "malformed ticket"),
        ({"ticket": "tr03 abc", "randstr": "@abc"}, "malformed ticket"),
        ({"ticket": "tr03abc\n", "randstr": "@abc"}, "malformed ticket"),
        ({"ticket": "A" * 4097, "randstr": "@abc"}, "malformed ticket"),
        ({"ticket": "tr03abc*", "randstr": ""}, "malformed randstr"),
        ({"ticket": "tr03abc*", "randstr": "@é"}, "malformed randstr"),
        ({"ticket": "tr03abc*", "randstr": "@" * 129}, "malformed randstr"),
    ],
)
def test_malformed_fields_are_403_without_a_call(
    stage: Stage, emulator: TencentCaptchaEmulator, fields: dict[str, str], reason: str
) -> None:
    answer = stage.post("tencent", fields)
    assert answer.status_code == 403
    assert answer.json()["reason"] == reason
    assert emulator.calls == 0


# The signer on its own: the official vector, and the emulator as the other side.


def test_the_official_vector() -> None:
    assert hashlib.sha256(VECTOR_BODY).hexdigest() == VECTOR_PAYLOAD_HASH
    signature = sign(
        secret_id=VECTOR_SECRET_ID,
        secret_key=VECTOR_SECRET_KEY,
        service="cvm",
        timestamp=1551113065,
        headers=VECTOR_HEADERS,
        payload=VECTOR_BODY,
    )
    assert signature.canonical_request == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n"
        f"\ncontent-type;host\n{VECTOR_PAYLOAD_HASH}"
    )
    assert hashlib.sha256(signature.canonical_request.encode()).hexdigest() == VECTOR_CANONICAL_HASH
    assert signature.string_to_sign == (
        f"TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n{VECTOR_CANONICAL_HASH}"
    )
    assert signature.signature == VECTOR_SIGNATURE
    assert signature.authorization == (
        f"TC3-HMAC-SHA256 Credential={VECTOR_SECRET_ID}/2019-02-25/cvm/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={VECTOR_SIGNATURE}"
    )


def test_header_names_and_values_are_lower_cased_and_trimmed() -> None:
    shouting = {
        " Content-Type ": " Application/JSON; charset=UTF-8 ",
        "HOST": "CVM.tencentcloudapi.com",
    }
    loud = sign(
        secret_id=VECTOR_SECRET_ID,
        secret_key=VECTOR_SECRET_KEY,
        service="cvm",
        timestamp=1551113065,
        headers=shouting,
        payload=VECTOR_BODY,
    )
    assert loud.signature == VECTOR_SIGNATURE


def test_the_date_is_the_utc_date(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2019-02-25T23:30:00Z is already the 26th in Beijing: the scope must say the 25th.
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        assert utc_date(1551137400) == "2019-02-25"
    finally:
        monkeypatch.undo()
        time.tzset()


def test_the_emulator_refuses_a_tampered_body() -> None:
    emulator = TencentCaptchaEmulator()
    provider = _provider(emulator)
    request = provider.build_request(_claim(provider, **emulator.issue()))
    tampered = request.body.replace(b'"UserIp":"127.0.0.1"', b'"UserIp":"127.0.0.2"')
    with httpx.Client(transport=emulator.transport()) as client:
        answer = client.send(
            httpx.Request("POST", request.url, headers=list(request.headers), content=tampered)
        )
    assert answer.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_in_process_the_provider_and_emulator_agree() -> None:
    emulator = TencentCaptchaEmulator()
    provider = _provider(emulator)
    claim = _claim(provider, **emulator.issue())
    result = provider.read_response(claim, send_in_process(emulator, provider.build_request(claim)))
    assert isinstance(result, Verdict) and result.passed


# The provider on its own.


def _provider(emulator: TencentCaptchaEmulator, **options: Any) -> TencentCaptcha:
    return TencentCaptcha(
        emulator.secret_id,
        emulator.secret_key,
        captcha_app_id=emulator.captcha_app_id,
        app_secret_key=emulator.app_secret_key,
        endpoint="https://captcha.test/",
        **options,
    )


def _claim(
    provider: TencentCaptcha,
    ticket: str = "tr03abc*",
    randstr: str = "@abc",
    host: str | None = "127.0.0.1",
) -> Claim:
    fields = Fields()
    fields.add("ticket", ticket)
    fields.add("randstr", randstr)
    claim = provider.check(fields, ClientRequest("POST", "/", host, {}, raw={}))
    assert isinstance(claim, Claim)
    return claim


def _answer(response: dict[str, Any], status: int = 200) -> Any:
    return from_httpx(httpx.Response(status, json={"Response": response}))


def test_regions_choose_the_endpoint_and_endpoint_wins() -> None:
    def make(**options: Any) -> TencentCaptcha:
        return TencentCaptcha("AKID", "key", captcha_app_id=1, app_secret_key="app", **options)

    assert make().endpoint == "https://captcha.tencentcloudapi.com/"
    assert make(region="intl").endpoint == "https://captcha.intl.tencentcloudapi.com/"
    assert (
        make(region="ap-singapore").endpoint == "https://captcha.ap-singapore.tencentcloudapi.com/"
    )
    assert make(region="eu-frankfurt", endpoint="https://x.test/").endpoint == "https://x.test/"
    assert endpoint_for("na-ashburn") == "https://captcha.na-ashburn.tencentcloudapi.com/"
    request = as_httpx(make(region="intl").build_request(_claim(make())))
    assert request.headers["host"] == "captcha.intl.tencentcloudapi.com"


def test_the_clock_gives_the_timestamp_and_the_replay_key_hashes_the_ticket() -> None:
    provider = TencentCaptcha(
        "AKID", "key", captcha_app_id="199999164", app_secret_key="app", clock=lambda: 1551113065.9
    )
    claim = _claim(provider, ticket="tr03xyz*")
    request = as_httpx(provider.build_request(claim))
    assert request.headers["x-tc-timestamp"] == "1551113065"
    assert json.loads(request.content)["CaptchaAppId"] == 199999164  # digits become an integer
    assert claim.replay_key == "tencent:" + hashlib.sha256(b"tr03xyz*").hexdigest()


def test_without_a_client_address_userip_is_left_out() -> None:
    provider = TencentCaptcha("AKID", "key", captcha_app_id=1, app_secret_key="app")
    for host in (None, "unix-socket"):
        body = json.loads(provider.build_request(_claim(provider, host=host)).body)
        assert "UserIp" not in body
    ipv6 = json.loads(provider.build_request(_claim(provider, host="::1")).body)
    assert ipv6["UserIp"] == "::1"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"Response": {"RequestId": "r"}}, Fault.PROVIDER),
        (200, {"Response": {"CaptchaCode": "1"}}, Fault.PROVIDER),
        (200, {"Response": {"CaptchaCode": True}}, Fault.PROVIDER),
        (200, {"Response": {"Error": "oops"}}, Fault.PROVIDER),
        (200, {"Response": []}, Fault.PROVIDER),
        (200, {"CaptchaCode": 1}, Fault.PROVIDER),
        (400, {"Response": {"Error": {"Code": "AuthFailure.TokenFailure"}}}, Fault.OPERATOR),
        (200, [], Fault.PROVIDER),
    ],
)
def test_odd_answers(status: int, body: object, expected: Fault) -> None:
    provider = TencentCaptcha("AKID", "key", captcha_app_id=1, app_secret_key="app")
    answer = from_httpx(httpx.Response(status, json=body))
    result = provider.read_response(_claim(provider), answer)
    assert isinstance(result, ProviderFailure) and result.fault is expected


def test_the_key_hint_is_a_suspect_never_a_misconfiguration() -> None:
    provider = TencentCaptcha("AKID", "key", captcha_app_id=1, app_secret_key="app")
    for code in (16, 100):
        result = provider.read_response(_claim(provider), _answer({"CaptchaCode": code}))
        assert isinstance(result, Verdict) and not result.passed
        hint = result.note.hint
        assert hint is not None and hint.level == logging.WARNING  # never an ERROR
        assert "AppSecretKey" in hint.text


def test_the_tables_default_as_documented() -> None:
    assert TENCENT.lookup("AuthFailure.SignatureFailure").fault is Fault.OPERATOR
    assert TENCENT.lookup("InvalidParameterValue.Ticket").fault is Fault.USER
    assert TENCENT.lookup("BrandNew").fault is Fault.PROVIDER
    assert TENCENT_CAPTCHA.lookup("42").fault is Fault.USER


@pytest.mark.parametrize(
    "build",
    [
        lambda: TencentCaptcha("", "k", captcha_app_id=1, app_secret_key="a"),
        lambda: TencentCaptcha("AK ID", "k", captcha_app_id=1, app_secret_key="a"),
        lambda: TencentCaptcha("AKID", "", captcha_app_id=1, app_secret_key="a"),
        lambda: TencentCaptcha("AKID", "k", captcha_app_id=1, app_secret_key=""),
        lambda: TencentCaptcha("AKID", "k", captcha_app_id=1, app_secret_key="k"),
        lambda: TencentCaptcha("AKID", "k", captcha_app_id=0, app_secret_key="a"),
        lambda: TencentCaptcha("AKID", "k", captcha_app_id="12a", app_secret_key="a"),
        lambda: TencentCaptcha("AKID", "k", captcha_app_id=True, app_secret_key="a"),  # type: ignore[arg-type]
        lambda: TencentCaptcha("AKID", "k", captcha_app_id=1, app_secret_key="a", region="Mars"),
        lambda: TencentCaptcha("AKID", "k", captcha_app_id=1, app_secret_key="a", refuse_evil=1),  # type: ignore[arg-type]
        lambda: TencentCaptcha("AKID", "k", captcha_app_id=1, app_secret_key="a", endpoint="x.y"),
    ],
)
def test_bad_configuration_fails_at_construction(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_repr_keeps_the_secrets() -> None:
    text = repr(TencentCaptcha("AKID", "TopSecret", captcha_app_id=1, app_secret_key="AppSecret"))
    assert "TopSecret" not in text and "AppSecret" not in text


def _signed_body(emulator: TencentCaptchaEmulator, document: dict[str, Any]) -> httpx.Response:
    """``document`` as the body of a rightly signed request to the emulator."""
    body = json.dumps(document).encode()
    timestamp = int(time.time())
    headers = {"content-type": "application/json; charset=utf-8", "host": "captcha.test"}
    signature = sign(
        secret_id=emulator.secret_id,
        secret_key=emulator.secret_key,
        service="captcha",
        timestamp=timestamp,
        headers=headers,
        payload=body,
    )
    sent = {
        **headers,
        "x-tc-action": "DescribeCaptchaResult",
        "x-tc-version": "2019-07-22",
        "x-tc-timestamp": str(timestamp),
        "authorization": signature.authorization,
    }
    with httpx.Client(transport=emulator.transport()) as client:
        return client.post("https://captcha.test/", content=body, headers=sent)


def test_the_emulator_wants_captchaappid_as_an_integer_and_a_userip() -> None:
    emulator = TencentCaptchaEmulator()
    fields = emulator.issue()
    document: dict[str, Any] = {
        "CaptchaType": 9,
        "Ticket": fields["ticket"],
        "Randstr": fields["randstr"],
        "CaptchaAppId": str(emulator.captcha_app_id),
        "AppSecretKey": emulator.app_secret_key,
        "UserIp": "192.0.2.1",
    }
    as_text = _signed_body(emulator, document).json()["Response"]
    assert as_text["Error"]["Code"] == "InvalidParameter"
    del document["UserIp"]
    document["CaptchaAppId"] = emulator.captcha_app_id
    missing = _signed_body(emulator, document).json()["Response"]
    assert missing["Error"]["Code"] == "MissingParameter"
    document["UserIp"] = "192.0.2.1"
    assert _signed_body(emulator, document).json()["Response"]["CaptchaCode"] == 1
