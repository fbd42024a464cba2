"""Friendly Captcha end to end: v2 and v1 against the emulator served for real, every row of
the fault table, and the vendor's SDK conformance fixture as an oracle.

The fixture: ``friendly-captcha-sdk-testserver/fixtures/captcha_siteverify_test_cases.json`` in
``FriendlyCaptcha/friendly-captcha-sdk-tooling`` (MIT licence, (c) 2023 Friendly Captcha;
version 3 of the file, 26 cases). Its cases are written below as facts: what the vendor's test
server answers, and what an SDK must conclude. Its "strict" mode is our ``fail_open=False``; its
"should accept" in non-strict mode is our fallback (``fail_open=True``); "was able to verify" is
a verdict (passed or rejected) rather than a fallback; "is client error" (the SDK's side, i.e.
ours) is the operator's bin. The one documented deviation: ``response_missing`` is the client's
403 here in both modes (a missing token is refused locally before any call, and the vendor
saying it is missing is about the client's field).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import httpx
import pytest

from captcha_guard import FriendlyCaptcha, Rule
from captcha_guard._fields import Fields
from captcha_guard._verdict import Fault, ProviderFailure, Verdict
from captcha_guard.providers._base import Claim, ClientRequest
from captcha_guard.providers.friendly import EU_ENDPOINT, GLOBAL_ENDPOINT, V1_ENDPOINT
from captcha_guard.testing import Emulator, FriendlyCaptchaEmulator, Outage
from tests.providers.guarded import Stage, guarded, patient, post, staged
from tests.wire import from_httpx

V2 = "/api/v2/captcha/siteverify"
V1 = "/api/v1/siteverify"


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    emulator = FriendlyCaptchaEmulator()
    with emulator.serve() as upstream:

        def make(**options: Any) -> FriendlyCaptcha:
            version = options.get("version", 2)
            return FriendlyCaptcha(
                options.pop("api_key", emulator.api_key),
                endpoint=upstream.endpoint(V2 if version == 2 else V1),
                breaker=patient(),
                **options,
            )

        main = make()
        providers = {
            "frc": main,
            "frc-closed": main,
            "pinned": make(sitekey=emulator.sitekey),
            "foreign-sitekey": make(sitekey="FCMNOTOURS"),
            "wrong-key": make(api_key="NOTTHEAPIKEY"),
            "v1": make(version=1),
            "v1-wrong-key": make(version=1, api_key="NOTTHEAPIKEY"),
        }
        with staged(emulator, upstream, **providers) as stage:
            yield stage


@pytest.fixture
def emulator(stage: Stage) -> Iterator[FriendlyCaptchaEmulator]:
    emulator = stage.emulator
    assert isinstance(emulator, FriendlyCaptchaEmulator)
    stage.reset()
    yield emulator
    stage.reset()
    emulator.force_error = None


def test_a_solved_widget_passes(stage: Stage, emulator: FriendlyCaptchaEmulator) -> None:
    answer = stage.post("frc", {**emulator.issue(), "email": "ada@example.com"})
    seen = answer.json()
    # The verdict names the route's provider ("frc" in this stage's providers=).
    assert (answer.status_code, seen["outcome"], seen["provider"]) == (200, "passed", "frc")
    assert seen["details"]["event_id"].startswith("ev_")
    assert seen["details"]["origin"] == "http://localhost"


def test_v2_sends_the_api_key_as_a_header_and_the_response_as_json(
    stage: Stage, emulator: FriendlyCaptchaEmulator
) -> None:
    fields = emulator.issue()
    stage.post("pinned", fields)
    (request,) = emulator.requests
    assert request.url.path == V2
    assert request.headers["x-api-key"] == emulator.api_key
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "response": fields["frc-captcha-response"],
        "sitekey": emulator.sitekey,
    }


def test_v1_sends_the_api_key_as_secret_and_reads_its_own_field(
    stage: Stage, emulator: FriendlyCaptchaEmulator
) -> None:
    fields = emulator.issue(version=1)
    assert list(fields) == ["frc-captcha-solution"]
    answer = stage.post("v1", fields)
    assert answer.json()["outcome"] == "passed"
    (request,) = emulator.requests
    assert request.url.path == V1
    assert "x-api-key" not in request.headers
    form = dict(httpx.QueryParams(request.content.decode()))
    assert form == {"solution": fields["frc-captcha-solution"], "secret": emulator.api_key}
    again = stage.post("v1", fields)
    assert again.status_code == 403
    assert again.json()["reason"] == "friendly-captcha: solution_timeout_or_duplicate"


def test_a_response_verifies_once(stage: Stage, emulator: FriendlyCaptchaEmulator) -> None:
    fields = emulator.issue()
    assert stage.post("frc", fields).status_code == 200
    again = stage.post("frc", fields)
    assert again.status_code == 403
    assert again.json()["reason"] == "friendly-captcha: response_duplicate (HTTP 200)"


@pytest.mark.parametrize("route", ["frc", "v1"])
@pytest.mark.parametrize("value", [None, ""])
def test_a_missing_or_empty_token_is_403_before_any_call(
    stage: Stage, emulator: FriendlyCaptchaEmulator, route: str, value: str | None
) -> None:
    field = "frc-captcha-response" if route == "frc" else "frc-captcha-solution"
    answer = stage.post(route, {} if value is None else {field: value})
    assert answer.status_code == 403
    assert emulator.calls == 0
    # ... even while the vendor is down: nothing to fall back on.
    emulator.outage = Outage.HTTP_500
    assert stage.post(route, {} if value is None else {field: value}).status_code == 403
    assert emulator.calls == 0


@pytest.mark.parametrize("value", [" token", "tok en", "token\n", "tökén", "A" * 16385, "a\x00b"])
def test_a_malformed_token_is_403_without_a_call(
    stage: Stage, emulator: FriendlyCaptchaEmulator, value: str
) -> None:
    answer = stage.post("frc", {"frc-captcha-response": value})
    assert answer.status_code == 403
    assert emulator.calls == 0


@pytest.mark.parametrize(
    ("route", "code"),
    [
        ("wrong-key", "auth_invalid"),
        ("foreign-sitekey", "sitekey_invalid"),
        ("v1-wrong-key", "secret_invalid"),
    ],
)
def test_our_wrong_key_or_sitekey_falls_back_and_is_logged(
    stage: Stage,
    emulator: FriendlyCaptchaEmulator,
    route: str,
    code: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    version = 1 if route.startswith("v1") else 2
    answer = stage.post(route, emulator.issue(version=version))
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"] == {"fault": "operator", "code": code}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and code in errors[0]
    assert emulator.api_key not in caplog.text


# The vendor's conformance fixture, as facts.


class Case(NamedTuple):
    name: str
    strict: bool
    status: int
    body: Any  # a JSON document, or a str sent as it is
    should_accept: bool
    was_able_to_verify: bool
    is_client_error: bool


def _ok(event: str, **extra: Any) -> dict[str, Any]:
    challenge = {"timestamp": "2023-08-04T13:01:25Z", "origin": "https://example.com"}
    return {"success": True, "data": {"event_id": f"ev_{event}", "challenge": challenge, **extra}}


def _error(code: str) -> dict[str, Any]:
    return {"success": False, "error": {"error_code": code, "detail": ""}}


HTML = "<html><body>Something went horribly wrong</body></html>"
FIXTURE: list[Case] = [
    Case("success", False, 200, _ok("a", risk_intelligence=None), True, True, False),
    Case("auth_required", False, 401, _error("auth_required"), True, False, True),
    Case("auth_invalid", False, 401, _error("auth_invalid"), True, False, True),
    Case("sitekey_invalid", False, 400, _error("sitekey_invalid"), True, False, True),
    Case("response_missing", False, 400, _error("response_missing"), True, False, True),
    Case("response_invalid", False, 200, _error("response_invalid"), False, True, False),
    Case("response_timeout", False, 200, _error("response_timeout"), False, True, False),
    Case("response_duplicate", False, 200, _error("response_duplicate"), False, True, False),
    Case("bad_request", False, 400, _error("bad_request"), True, False, True),
    Case("success_strict", True, 200, _ok("b", risk_intelligence=None), True, True, False),
    Case("auth_required strict", True, 401, _error("auth_required"), False, False, True),
    Case("auth_invalid strict", True, 401, _error("auth_invalid"), False, False, True),
    Case("sitekey_invalid strict", True, 400, _error("sitekey_invalid"), False, False, True),
    Case("response_missing strict", True, 400, _error("response_missing"), False, False, True),
    Case("response_invalid strict", True, 200, _error("response_invalid"), False, True, False),
    Case("response_timeout strict", True, 200, _error("response_timeout"), False, True, False),
    Case("response_duplicate strict", True, 200, _error("response_duplicate"), False, True, False),
    Case("bad_request strict", True, 400, _error("bad_request"), False, False, True),
    Case("bad_response_200", False, 200, HTML, True, False, False),
    Case("bad_response_200_strict", True, 200, HTML, False, False, False),
    Case("bad_response_500", False, 500, HTML, True, False, False),
    Case("bad_response_400_strict", True, 400, HTML, False, False, False),
    Case("empty_string_response_200", False, 200, "", True, False, False),
    Case("empty_string_response_200_strict", True, 200, "", False, False, False),
    Case(
        "success_with_risk_intelligence",
        False,
        200,
        _ok(
            "c",
            risk_scores={"overall": 2, "network": 1, "browser": 1},
            network={"ip": "88.64.123.45", "as": {"number": 3209, "name": "VODANET"}},
            client={"header_user_agent": "Mozilla/5.0", "browser": {"id": "firefox"}},
        ),
        True,
        True,
        False,
    ),
    Case(
        "success_with_risk_intelligence_with_null_client_browser",
        False,
        200,
        _ok(
            "d",
            risk_intelligence={
                "risk_scores": {"overall": 1, "network": 1, "browser": 1},
                "client": {"header_user_agent": "Mozilla/5.0", "browser": None},
                "network": {"ip": "127.0.0.1"},
            },
        ),
        True,
        True,
        False,
    ),
]
#: Where we refuse on purpose what the fixture accepts (see the module's docstring).
DEVIATIONS = {"response_missing"}


def test_the_fixture_has_its_26_cases() -> None:
    assert len(FIXTURE) == 26
    assert len({case.name for case in FIXTURE}) == 26


class FixtureServer(Emulator):
    """The vendor's SDK test server: each response token gets its case's status and body."""

    def __init__(self) -> None:
        super().__init__()
        self.cases: dict[str, Case] = {}

    def answer(self, request: httpx.Request) -> httpx.Response:
        case = self.cases[json.loads(request.content)["response"]]
        if isinstance(case.body, str):
            return httpx.Response(case.status, text=case.body)
        return httpx.Response(case.status, json=case.body)


def test_the_fixture_through_the_asgi_door() -> None:
    server = FixtureServer()
    tokens = {case.name: f"sdk-case-{n:02d}" for n, case in enumerate(FIXTURE)}
    server.cases = {tokens[case.name]: case for case in FIXTURE}
    with server.serve() as upstream:
        provider = FriendlyCaptcha(
            "fixture-api-key", endpoint=upstream.endpoint(V2), breaker=patient()
        )
        rules = [Rule("/lenient", fail_open=True), Rule("/strict", fail_open=False)]
        with guarded(provider, rules=rules) as url:
            for case in FIXTURE:
                route = "/strict" if case.strict else "/lenient"
                answer = post(url + route, {"frc-captcha-response": tokens[case.name]})
                _judge(case, answer)


def _judge(case: Case, answer: httpx.Response) -> None:
    if case.name.split(" ")[0] in DEVIATIONS:
        assert answer.status_code == 403, case.name
        return
    accepted = answer.status_code == 200
    assert accepted == case.should_accept, case.name
    if accepted:
        outcome = answer.json()["outcome"]
        assert (outcome == "passed") == case.was_able_to_verify, case.name
        if outcome == "fallback":
            fault = answer.json()["details"]["fault"]
            assert (fault == "operator") == case.is_client_error, case.name
    elif case.was_able_to_verify:
        assert answer.status_code == 403, case.name  # the client's: rejected
    else:
        assert answer.status_code == 503, case.name  # strict and unable to verify


@pytest.mark.parametrize("case", FIXTURE, ids=lambda c: c.name)
def test_each_fixture_answer_lands_in_its_bin(case: Case) -> None:
    provider = FriendlyCaptcha("fixture-api-key")
    if isinstance(case.body, str):
        response = httpx.Response(case.status, text=case.body)
    else:
        response = httpx.Response(case.status, json=case.body)
    result = provider.read_response(_claim(provider), from_httpx(response))
    if case.name.split(" ")[0] in DEVIATIONS:
        assert isinstance(result, Verdict) and not result.passed
    elif case.was_able_to_verify:
        assert isinstance(result, Verdict)
        assert result.passed == case.should_accept
    else:
        assert isinstance(result, ProviderFailure)
        assert (result.fault is Fault.OPERATOR) == case.is_client_error


def test_risk_scores_are_kept_and_the_clients_address_is_not() -> None:
    provider = FriendlyCaptcha("fixture-api-key")
    body = FIXTURE[-1].body
    result = provider.read_response(_claim(provider), from_httpx(httpx.Response(200, json=body)))
    assert isinstance(result, Verdict) and result.passed
    assert result.details["risk_scores"] == {"overall": 1, "network": 1, "browser": 1}
    assert "127.0.0.1" not in json.dumps(result.details)


# The provider on its own.


def _claim(provider: FriendlyCaptcha, token: str = "a-token") -> Claim:
    fields = Fields()
    fields.add(provider.field, token)
    claim = provider.check(fields, ClientRequest("POST", "/", "127.0.0.1", {}, raw={}))
    assert isinstance(claim, Claim)
    return claim


def test_endpoints_and_fields_by_version() -> None:
    assert FriendlyCaptcha("k").endpoint == GLOBAL_ENDPOINT
    assert FriendlyCaptcha("k", endpoint=EU_ENDPOINT).endpoint == EU_ENDPOINT
    assert EU_ENDPOINT == "https://eu.frcapi.com/api/v2/captcha/siteverify"
    assert FriendlyCaptcha("k", version=1).endpoint == V1_ENDPOINT
    assert FriendlyCaptcha("k").field == "frc-captcha-response"
    assert FriendlyCaptcha("k", version=1).field == "frc-captcha-solution"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"success": "true"}, Fault.PROVIDER),
        (200, {"data": {}}, Fault.PROVIDER),
        (400, {"success": True}, Fault.PROVIDER),
        (401, {"success": False, "error": "auth_invalid"}, Fault.USER),
        (429, {"success": False}, Fault.PROVIDER),
        (502, _error("response_invalid"), Fault.PROVIDER),
    ],
)
def test_odd_answers(status: int, body: object, expected: Fault) -> None:
    provider = FriendlyCaptcha("k")
    result = provider.read_response(_claim(provider), from_httpx(httpx.Response(status, json=body)))
    if expected is Fault.USER:
        # No code we can read: the table's default (the client's response is all that is free).
        assert isinstance(result, Verdict) and not result.passed
    else:
        assert isinstance(result, ProviderFailure) and result.fault is expected


def test_v1_several_errors_are_decided_by_the_one_no_client_can_cause() -> None:
    provider = FriendlyCaptcha("k", version=1)
    body = {"success": False, "errors": ["solution_invalid", "secret_invalid"]}
    result = provider.read_response(_claim(provider), from_httpx(httpx.Response(401, json=body)))
    assert isinstance(result, ProviderFailure) and result.fault is Fault.OPERATOR


@pytest.mark.parametrize(
    "build",
    [
        lambda: FriendlyCaptcha(""),
        lambda: FriendlyCaptcha("a key"),
        lambda: FriendlyCaptcha("k", version=3),
        lambda: FriendlyCaptcha("k", version=True),  # type: ignore[arg-type]
        lambda: FriendlyCaptcha("k", sitekey=""),
        lambda: FriendlyCaptcha("k", endpoint="eu.frcapi.com"),
    ],
)
def test_bad_configuration_fails_at_construction(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_repr_keeps_the_key() -> None:
    assert "TopSecret" not in repr(FriendlyCaptcha("TopSecret"))


def test_the_emulator_authenticates_like_the_vendor() -> None:
    emulator = FriendlyCaptchaEmulator()
    token = emulator.token()
    with httpx.Client(transport=emulator.transport(), base_url="https://frc.test") as client:
        bare = client.post(V2, json={"response": token})
        wrong = client.post(V2, json={"response": token}, headers={"x-api-key": "nope"})
        empty = client.post(V2, json={"response": ""}, headers={"x-api-key": emulator.api_key})
        v1 = client.post(V1, data={"solution": token})
    assert (bare.status_code, bare.json()["error"]["error_code"]) == (401, "auth_required")
    assert (wrong.status_code, wrong.json()["error"]["error_code"]) == (401, "auth_invalid")
    assert (empty.status_code, empty.json()["error"]["error_code"]) == (400, "response_missing")
    assert (v1.status_code, v1.json()["errors"]) == (400, ["secret_missing"])
    assert emulator.calls == 4
