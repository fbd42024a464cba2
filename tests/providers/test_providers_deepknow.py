"""GeeTest DeepKnow end to end: a guarded app under uvicorn, the DeepKnow emulator served for
real on 127.0.0.1, every row of the fault table, and the seed's JWT vector."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from captcha_guard import DeepKnow
from captcha_guard._fields import FieldError, Fields, collect
from captcha_guard._verdict import Fault, Outcome, ProviderFailure, Verdict
from captcha_guard.providers._base import Claim, ClientRequest
from captcha_guard.providers.deepknow import encode_jwt
from captcha_guard.testing import DeepKnowEmulator, Outage
from tests.providers.guarded import Stage, patient, staged
from tests.wire import as_httpx, from_httpx

# GeeTest's example (seed 003): these claims, in this order, under this secret, give this token.
SEED_SECRET = "your-256-bit-secret"
SEED_CLAIMS = {
    "session_id": "5d03ec51309cac984f5c3c0b699b78f5",
    "user_id": "user001",
    "user_email": "user001@test.com",
    "phone_num": "12345678902",
    "flow_id": 1,
    "scene": "login",
    "attr": {"nick_name": "geetest"},
}
SEED_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzZXNzaW9uX2lkIjoiNWQwM2VjNTEzMDljYWM5ODRmNWMzYzBiNjk5"
    "Yjc4ZjUiLCJ1c2VyX2lkIjoidXNlcjAwMSIsInVzZXJfZW1haWwiOiJ1c2VyMDAxQHRlc3QuY29tIiwicGhvbmVfbnVt"
    "IjoiMTIzNDU2Nzg5MDIiLCJmbG93X2lkIjoxLCJzY2VuZSI6ImxvZ2luIiwiYXR0ciI6eyJuaWNrX25hbWUiOiJnZWV0"
    "ZXN0In19.KlLZD6mA7YFdO2WmAFQ2CsoNjYQ-eLzwoF83zLGkl2g"
)

USER_STATUSES = [3, 31, 32, 41]
OPERATOR_STATUSES = [21, 22, 34, 42, 43, 51, 53]
PROVIDER_STATUSES = [2, 4, 5, 33, 52, 99, 1000]


def user_from_header(scope: Any) -> str | None:
    """What an app's auth layer would provide; here the test sends it as a header."""
    for name, value in scope["headers"]:
        if name == b"x-user-id":
            return str(value.decode())
    return None


def broken(scope: Any) -> str:
    raise KeyError("session")


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    emulator = DeepKnowEmulator()
    with emulator.serve() as upstream:
        endpoint = upstream.endpoint("/deepknow/v2/verify")

        def make(secret: str = emulator.secret, **options: Any) -> DeepKnow:
            options.setdefault("scene", "login")
            options.setdefault("user_id", "username")
            return DeepKnow(secret, endpoint=endpoint, breaker=patient(), **options)

        main = make()
        hurried = make(timeout=0.25)
        providers = {
            "deepknow": main,
            "deepknow-closed": main,
            "hurried": hurried,
            "hurried-closed": hurried,
            "strict": make(max_risk_level=0),
            "flows": make(flow_id=7, blocking_actions=["block", "review"]),
            "wrong-secret": make("a-monitoring-secret-that-is-not-ours"),
            "unknown-scene": make(scene="checkout"),
            "by-scope": make(user_id=user_from_header),
            "broken": make(user_id=broken),
            "full": make(
                user_email="email",
                phone_num=lambda scope: "13800000000",
                attr=lambda scope: {"path": scope["path"], "nick_name": "ada"},
                flow_id="flow",
            ),
            "attr-field": make(attr="profile"),
        }
        with staged(emulator, upstream, **providers) as stage:
            yield stage


@pytest.fixture
def emulator(stage: Stage) -> Iterator[DeepKnowEmulator]:
    emulator = stage.emulator
    assert isinstance(emulator, DeepKnowEmulator)
    stage.reset()
    emulator.claims.clear()
    yield emulator
    stage.reset()
    emulator.force_status = None
    emulator.disabled = False


def login(stage: Stage, route: str, fields: dict[str, str], **extra: str) -> httpx.Response:
    return stage.post(route, {**fields, "username": "ada", **extra})


def test_a_low_risk_session_passes(stage: Stage, emulator: DeepKnowEmulator) -> None:
    answer = login(stage, "deepknow", emulator.issue(risk_code=[1001]))
    assert answer.status_code == 200
    seen = answer.json()
    assert (seen["outcome"], seen["provider"]) == ("passed", "deepknow")
    details = seen["details"]
    assert (details["risk_level"], details["risk_code"], details["action"]) == (0, [1001], None)
    assert len(details["finger_print"]) == 32
    (claims,) = emulator.claims
    assert claims == {
        "session_id": claims["session_id"],
        "user_id": "ada",
        "scene": "login",
    }


def test_the_body_is_a_bare_hs256_jwt_signed_with_the_secret(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    fields = emulator.issue()
    login(stage, "deepknow", fields)
    (request,) = emulator.requests
    token = request.content.decode()
    assert "content-type" not in request.headers  # as GeeTest's demo posts it
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, emulator.secret, algorithms=["HS256"])
    assert claims["session_id"] == fields["session_id"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "a-different-secret-of-the-same-length-00", algorithms=["HS256"])


@pytest.mark.parametrize(
    ("route", "level", "status"),
    [
        ("deepknow", 0, 200),
        ("deepknow", 3, 200),
        ("deepknow", 7, 403),
        ("deepknow", 9, 403),
        ("strict", 0, 200),
        ("strict", 3, 403),
    ],
)
def test_the_risk_level_decides(
    stage: Stage, emulator: DeepKnowEmulator, route: str, level: int, status: int
) -> None:
    answer = login(stage, route, emulator.issue(risk_level=level))
    assert answer.status_code == status
    if status == 403:
        limit = 0 if route == "strict" else 3
        assert answer.json()["reason"] == f"deepknow: risk level {level} above {limit}"
    else:
        assert answer.json()["details"]["risk_level"] == level


@pytest.mark.parametrize(
    ("action", "status"), [("block", 403), ("review", 403), ("pass", 200), (None, 200)]
)
def test_a_blocking_action_of_a_flow_is_403(
    stage: Stage, emulator: DeepKnowEmulator, action: str | None, status: int
) -> None:
    answer = login(stage, "flows", emulator.issue(action=action))
    assert answer.status_code == status
    assert emulator.claims[-1]["flow_id"] == 7
    if status == 403:
        assert answer.json()["reason"] == f"deepknow: action {action}"
    else:
        assert answer.json()["details"]["action"] == action


def test_without_a_flow_id_no_action_is_answered(stage: Stage, emulator: DeepKnowEmulator) -> None:
    answer = login(stage, "deepknow", emulator.issue(action="block"))
    assert answer.json()["details"]["action"] is None


@pytest.mark.parametrize("status", USER_STATUSES)
def test_a_status_about_the_clients_session_is_403(
    stage: Stage, emulator: DeepKnowEmulator, status: int
) -> None:
    emulator.force_status = status
    answer = login(stage, "deepknow", emulator.issue())
    assert answer.status_code == 403
    assert answer.json()["reason"].startswith(f"deepknow status {status}: ")


@pytest.mark.parametrize("status", OPERATOR_STATUSES)
def test_a_status_about_our_jwt_or_account_falls_back_and_is_logged(
    stage: Stage, emulator: DeepKnowEmulator, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_status = status
    answer = login(stage, "deepknow", emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"] == {"fault": "operator", "code": str(status)}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and f"(code {status})" in errors[0]
    assert login(stage, "deepknow-closed", emulator.issue()).status_code == 503


@pytest.mark.parametrize("status", PROVIDER_STATUSES)
def test_a_status_about_geetest_itself_falls_back(
    stage: Stage, emulator: DeepKnowEmulator, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_status = status
    answer = login(stage, "deepknow", emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"] == {"fault": "provider", "code": str(status)}
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize("outage", list(Outage))
def test_every_outage_falls_back_or_503(
    stage: Stage, emulator: DeepKnowEmulator, outage: Outage
) -> None:
    emulator.outage = outage
    emulator.delay = 2.0
    opened = login(stage, "hurried", emulator.issue())
    closed = login(stage, "hurried-closed", emulator.issue())
    assert opened.json()["outcome"] == "fallback"
    assert opened.json()["details"]["fault"] == "provider"
    assert closed.status_code == 503


def test_a_wrong_secret_is_the_operators_fault(
    stage: Stage, emulator: DeepKnowEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    answer = login(stage, "wrong-secret", emulator.issue())
    assert answer.json()["details"] == {"fault": "operator", "code": "21"}
    assert "a-monitoring-secret-that-is-not-ours" not in caplog.text


def test_an_unconfigured_scene_is_the_operators_fault(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    answer = login(stage, "unknown-scene", emulator.issue(scene="checkout"))
    assert answer.json()["details"] == {"fault": "operator", "code": "34"}


def test_a_disabled_account_is_the_operators_fault(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    emulator.disabled = True
    answer = login(stage, "deepknow", emulator.issue())
    assert answer.json()["details"] == {"fault": "operator", "code": "43"}


def test_unknown_expired_and_foreign_sessions_are_403(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    now = [1_700_000_000.0]
    emulator.clock = lambda: now[0]
    try:
        expired = emulator.issue()
        now[0] += emulator.session_lifetime + 1
        other_scene = emulator.issue(scene="comment")
        unknown = {"session_id": "0123456789abcdef0123456789abcdef"}
        answers = [login(stage, "deepknow", f) for f in (expired, unknown, other_scene)]
    finally:
        emulator.clock = time.time
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert [a.json()["reason"][:18] for a in answers] == ["deepknow status 41"] * 2 + [
        "deepknow status 32"
    ]


def test_user_id_from_a_callable_on_the_scope(stage: Stage, emulator: DeepKnowEmulator) -> None:
    answer = stage.post("by-scope", emulator.issue(), headers={"x-user-id": "u-1789"})
    assert answer.json()["outcome"] == "passed"
    assert emulator.claims[-1]["user_id"] == "u-1789"
    anonymous = stage.post("by-scope", emulator.issue())
    assert anonymous.status_code == 403
    assert anonymous.json()["reason"] == "missing user_id"


def test_a_failing_user_id_callable_is_403_and_logged(
    stage: Stage, emulator: DeepKnowEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    answer = login(stage, "broken", emulator.issue())
    assert answer.status_code == 403
    assert answer.json()["reason"] == "deepknow: no user_id"
    assert "the user_id callable raised KeyError" in caplog.text
    assert emulator.calls == 0


def test_optional_claims_from_fields_callables_and_constants(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    fields = emulator.issue()
    answer = login(stage, "full", fields, email="ada@example.org", flow="12")
    assert answer.json()["outcome"] == "passed"
    assert emulator.claims[-1] == {
        "session_id": fields["session_id"],
        "user_id": "ada",
        "user_email": "ada@example.org",
        "phone_num": "13800000000",
        "flow_id": 12,
        "scene": "login",
        "attr": {"path": "/full", "nick_name": "ada"},
    }
    passed = login(stage, "attr-field", emulator.issue(), profile='{"plan": "pro"}')
    assert passed.json()["outcome"] == "passed"
    assert emulator.claims[-1]["attr"] == {"plan": "pro"}


@pytest.mark.parametrize(
    ("route", "fields", "reason"),
    [
        ("deepknow", {"username": "ada"}, "missing session_id"),
        ("deepknow", {"session_id": "", "username": "ada"}, "malformed session_id"),
        ("deepknow", {"session_id": "a b", "username": "ada"}, "malformed session_id"),
        ("deepknow", {"session_id": "a" * 129, "username": "ada"}, "malformed session_id"),
        ("deepknow", {"session_id": "ab"}, "missing username"),
        ("deepknow", {"session_id": "ab", "username": "a\x00b"}, "malformed user_id"),
        ("deepknow", {"session_id": "ab", "username": "x" * 257}, "malformed user_id"),
        ("full", {"session_id": "ab", "username": "a", "email": "a b@x", "flow": "1"}, None),
        ("full", {"session_id": "ab", "username": "a", "email": "a@x", "flow": "-1"}, None),
        ("attr-field", {"session_id": "ab", "username": "a", "profile": "[1]"}, None),
        ("attr-field", {"session_id": "ab", "username": "a", "profile": "{"}, None),
    ],
)
def test_malformed_fields_are_403_without_a_call(
    stage: Stage,
    emulator: DeepKnowEmulator,
    route: str,
    fields: dict[str, str],
    reason: str | None,
) -> None:
    answer = stage.post(route, fields)
    assert answer.status_code == 403
    if reason:
        assert answer.json()["reason"] == reason
    assert emulator.calls == 0


# The seed's vector.


def seed_request(host: str | None = None) -> tuple[DeepKnow, Claim]:
    provider = DeepKnow(
        SEED_SECRET,
        scene="login",
        user_email="user_email",
        phone_num="phone_num",
        flow_id=1,
        attr={"nick_name": "geetest"},
    )
    fields = Fields()
    fields.extend((k, v) for k, v in SEED_CLAIMS.items() if isinstance(v, str) and k != "scene")
    claim = provider.check(fields, ClientRequest("POST", "/login", host, {}, raw={}))
    assert isinstance(claim, Claim)
    return provider, claim


def test_the_seed_vector_is_what_we_send() -> None:
    provider, claim = seed_request()
    request = as_httpx(provider.build_request(claim))
    assert request.content.decode() == SEED_TOKEN
    assert request.url == "https://dkapi.geetest.com/deepknow/v2/verify"
    assert provider.claims(claim) == SEED_CLAIMS
    assert list(provider.claims(claim)) == list(SEED_CLAIMS)  # GeeTest's order


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_the_seed_vector_is_pyjwts_own_encoding_and_the_emulator_accepts_it() -> None:
    assert jwt.encode(SEED_CLAIMS, SEED_SECRET, algorithm="HS256") == SEED_TOKEN
    emulator = DeepKnowEmulator(SEED_SECRET)
    emulator.issue(session_id=SEED_CLAIMS["session_id"], risk_level=3)  # type: ignore[arg-type]
    with httpx.Client(transport=emulator.transport()) as client:
        answer = client.post("https://dkapi.test/deepknow/v2/verify", content=SEED_TOKEN)
    assert (answer.json()["status"], answer.json()["risk_level"]) == (1, 3)
    assert emulator.claims == [SEED_CLAIMS]


def test_the_replay_key_hashes_the_session_id() -> None:
    _, claim = seed_request()
    assert claim.replay_key.startswith("deepknow:")
    assert SEED_CLAIMS["session_id"] not in claim.replay_key  # type: ignore[operator]
    assert len(claim.replay_key) == len("deepknow:") + 64


def _answer(
    provider: DeepKnow, claim: Claim, response: httpx.Response
) -> Verdict | ProviderFailure:
    return provider.read_response(claim, from_httpx(response))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "41", "message": "expired"}, Outcome.REJECTED),
        ({"status": 1, "message": "ok"}, Fault.PROVIDER),  # no risk_level
        ({"status": 1, "risk_level": "0"}, Fault.PROVIDER),
        ({"status": True, "risk_level": 0}, Fault.PROVIDER),
        ({"message": "no status"}, Fault.PROVIDER),
        ([1], Fault.PROVIDER),
    ],
)
def test_odd_answers(body: object, expected: Outcome | Fault) -> None:
    provider, claim = seed_request()
    result = _answer(provider, claim, httpx.Response(200, json=body))
    if isinstance(expected, Outcome):
        assert isinstance(result, Verdict) and result.outcome is expected
    else:
        assert isinstance(result, ProviderFailure) and result.fault is expected


@pytest.mark.parametrize(
    "build",
    [
        lambda: DeepKnow("", scene="login"),
        lambda: DeepKnow("s", scene=""),
        lambda: DeepKnow("s", scene="login", user_id=""),
        lambda: DeepKnow("s", scene="login", user_id=42),
        lambda: DeepKnow("s", scene="login", session_field=""),
        lambda: DeepKnow("s", scene="login", max_risk_level=True),
        lambda: DeepKnow("s", scene="login", blocking_actions=[1]),
        lambda: DeepKnow("s", scene="login", flow_id=-1),
        lambda: DeepKnow("s", scene="login", attr={"x": object()}),
        lambda: DeepKnow("s", scene="login", attr={"x": "y" * 5000}),
    ],
)
def test_bad_configuration_fails_at_construction(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_repr_keeps_the_secret() -> None:
    assert "monitoring-secret" not in repr(DeepKnow("monitoring-secret", scene="login"))


# Client claims that are not JSON, or that the app would read another way (issue 8, section 6).


def _check(provider: DeepKnow, fields: Fields) -> Claim:
    claim = provider.check(fields, ClientRequest("POST", "/login", None, {}, raw={}))
    assert isinstance(claim, Claim)
    return claim


def _fields(**values: object) -> Fields:
    fields = Fields()
    fields.extend({"session_id": "0123456789abcdef", **values}.items())
    return fields


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        ('{"a":' * 1000 + "1" + "}" * 1000, "attr is over 4096 bytes of JSON"),
        ('{"a":' * 600 + "1" + "}" * 600, "attr is nested too deep|attr is nested deeper"),
        ('{"a":' * 17 + "1" + "}" * 17, "attr is nested deeper than 16"),
        ('{"a": NaN}', "attr is not a JSON object"),
        ('{"a": Infinity}', "attr is not a JSON object"),
        ('{"a": -Infinity}', "attr is not a JSON object"),
        ('{"a": "\\ud800"}', "lone surrogate"),
        ('{"\\udfff": 1}', "lone surrogate"),
    ],
)
def test_attr_from_a_field_that_is_not_strict_json_is_403(profile: str, reason: str) -> None:
    provider = DeepKnow("s", scene="login", user_id="username", attr="profile")
    with pytest.raises(FieldError, match=reason):
        provider.check(
            _fields(username="ada", profile=profile), ClientRequest("POST", "/", None, {}, raw={})
        )


def test_attr_from_a_field_nested_1000_deep_is_403_under_a_real_server(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    # Inside the 4096-byte bound and deep enough to exhaust json's recursion before the fix.
    deep = "[" * 1500 + "]" * 1500
    answer = login(stage, "attr-field", emulator.issue(), profile='{"a":' + deep + "}")
    assert answer.status_code == 403
    assert answer.json()["reason"].startswith("attr is nested")
    assert emulator.calls == 0


@pytest.mark.parametrize(
    "attr",
    [
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": "\ud800"},
        {"\udc00": 1},
        {"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]},
    ],
)
def test_attr_from_a_callable_that_is_not_strict_json_is_403(attr: dict[str, object]) -> None:
    provider = DeepKnow("s", scene="login", user_id="username", attr=lambda scope: attr)
    with pytest.raises(FieldError, match="attr"):
        provider.check(_fields(username="ada"), ClientRequest("POST", "/", None, {}, raw={}))


@pytest.mark.parametrize("claim", ["user_id", "user_email", "phone_num"])
@pytest.mark.parametrize("value", ["ad\ud800a", "\udfff"])
def test_a_lone_surrogate_in_a_text_claim_is_403(claim: str, value: str) -> None:
    sources: dict[str, Any] = {"user_id": "username"}
    sources[claim] = "claimed"
    provider = DeepKnow("s", scene="login", **sources)
    fields = _fields(username="ada", claimed=value)
    with pytest.raises(FieldError, match=f"malformed {claim}"):
        provider.check(fields, ClientRequest("POST", "/", None, {}, raw={}))


def test_a_lone_surrogate_from_a_callable_is_403_too() -> None:
    provider = DeepKnow("s", scene="login", user_id=lambda scope: "ada\udc00")
    with pytest.raises(FieldError, match="malformed user_id"):
        provider.check(_fields(), ClientRequest("POST", "/", None, {}, raw={}))


def test_what_is_signed_is_strict_json() -> None:
    provider = DeepKnow("s", scene="login", user_id="username", attr="profile")
    claim = _check(provider, _fields(username="zoë", profile='{"nick": "ü", "n": 1.5}'))
    token = provider.build_request(claim).body.decode()
    payload = jwt.api_jws.decode_complete(token, options={"verify_signature": False})["payload"]
    decoded = json.loads(payload, parse_constant=lambda name: pytest.fail(name))
    assert decoded["user_id"] == "zoë"
    assert decoded["attr"] == {"nick": "ü", "n": 1.5}
    payload.decode("ascii")  # ensure_ascii: nothing a strict parser could choke on
    with pytest.raises(ValueError):
        encode_jwt({"a": float("nan")}, "s")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b'{"username": "victim"}'),
        ("", b'{"username": "victim"}'),
        ("application/octet-stream", b"username=victim"),
        ("application/x-www-form-urlencoded", b'{"username": "victim"}'),
    ],
)
def test_a_claim_is_refused_when_the_app_may_read_the_body_another_way(
    content_type: str, body: bytes
) -> None:
    # Starlette's request.json() ignores the content type: the app would log in "victim"
    # while GeeTest judged the "attacker" of the query string.
    fields = collect(
        content_type=content_type,
        body=body,
        query_string=b"session_id=0123456789abcdef&username=attacker",
        header_value=None,
    )
    provider = DeepKnow("s", scene="login", user_id="username")
    with pytest.raises(FieldError, match="username cannot be read the way the app will"):
        provider.check(fields, ClientRequest("POST", "/", None, {}, raw={}))
    # The same claim from a callable (the app's own session) is fine.
    by_scope = DeepKnow("s", scene="login", user_id=lambda scope: "ada")
    assert isinstance(by_scope.check(fields, ClientRequest("POST", "/", None, {}, raw={})), Claim)


def test_a_text_plain_json_claim_is_403_under_a_real_server(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    session = emulator.issue()["session_id"]
    answer = stage.client.post(
        f"{stage.url}/deepknow?session_id={session}&username=attacker",
        content=b'{"username": "victim"}',
        headers={"content-type": "text/plain", "accept": "application/json"},
    )
    assert answer.status_code == 403
    assert answer.json()["reason"].startswith("username cannot be read the way the app will")
    assert emulator.calls == 0


def test_an_attachment_part_is_read_as_the_app_reads_it(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    # Starlette, Werkzeug and Django all take an "attachment" part with a name for a field;
    # the gate once skipped it, and judged the query's user instead.
    session = emulator.issue()["session_id"]
    body = b'--b\r\nContent-Disposition: attachment; name="username"\r\n\r\nvictim\r\n--b--\r\n'
    answer = stage.client.post(
        f"{stage.url}/deepknow?session_id={session}&username=attacker",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=b", "accept": "application/json"},
    )
    assert answer.status_code == 403
    assert answer.json()["reason"] == "duplicated username"
    alone = stage.client.post(
        f"{stage.url}/deepknow?session_id={emulator.issue()['session_id']}",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=b", "accept": "application/json"},
    )
    assert alone.json()["outcome"] == "passed"
    assert emulator.claims[-1]["user_id"] == "victim"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        # <form accept-charset="ISO-8859-1">: "José" as the browser sends it, no charset
        ("application/x-www-form-urlencoded", b"name=Jos%E9&username=ada&session_id={sid}"),
        (
            "multipart/form-data; boundary=b",
            b'preamble\r\n--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nJos\xe9'
            b'\r\n--b\r\nContent-Disposition: form-data; name="username"\r\n\r\nada\r\n'
            b'--b\r\nContent-Disposition: form-data; name="session_id"\r\n\r\n{sid}\r\n--b--\r\n',
        ),
        (
            "multipart/form-data; boundary=b",
            b'--b\nContent-Disposition: form-data; name="username"\n\nada\n'
            b'--b\nContent-Disposition: form-data; name="session_id"\n\n{sid}\n--b--\n',
        ),
    ],
)
def test_bodies_flask_and_django_serve_pass_the_gate_under_a_real_server(
    stage: Stage, emulator: DeepKnowEmulator, content_type: str, body: bytes
) -> None:
    session = emulator.issue()["session_id"].encode()
    answer = stage.client.post(
        f"{stage.url}/deepknow",
        content=body.replace(b"{sid}", session),
        headers={"content-type": content_type, "accept": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "passed"
    assert emulator.claims[-1]["user_id"] == "ada"


def test_a_claim_in_latin_1_is_refused_with_the_reason(
    stage: Stage, emulator: DeepKnowEmulator
) -> None:
    # Starlette and Django read "Jos\ufffd", Werkzeug "Jos%E9": no one value to sign.
    session = emulator.issue()["session_id"]
    answer = stage.client.post(
        f"{stage.url}/deepknow",
        content=f"username=Jos%E9&session_id={session}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
    )
    assert answer.status_code == 403
    assert answer.json()["reason"] == (
        "username has percent-escapes that are not UTF-8, which frameworks decode differently"
    )
    assert emulator.calls == 0
