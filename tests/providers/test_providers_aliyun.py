"""Alibaba Cloud CAPTCHA 2.0 end to end: a guarded app under uvicorn, the emulator served for
real on 127.0.0.1 (recomputing every V3 signature), every row of the fault table, the
official signature vector, and the vendor's own SDK as an oracle for the signer."""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from alibabacloud_tea_openapi.utils import Utils as SdkUtils
from hypothesis import given, settings
from hypothesis import strategies as st

from captcha_guard import AliyunCaptcha
from captcha_guard._fields import Fields
from captcha_guard._verdict import Fault, ProviderFailure, Verdict
from captcha_guard.providers._base import Claim, ClientRequest
from captcha_guard.providers.aliyun import acs_date, sign
from captcha_guard.testing import AliyunCaptchaEmulator, Outage
from tests.providers.guarded import Stage, patient, staged
from tests.wire import as_httpx, from_httpx

# The official example of signature V3 (providers.md).
VECTOR_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
}
VECTOR_QUERY = [
    ("ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"),
    ("RegionId", "cn-shanghai"),
]
VECTOR_CANONICAL_HASH = "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
VECTOR_SIGNATURE = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
VECTOR_SIGNED = (
    "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
)

USER_VERIFY_CODES = ["F001", "F007", "F008", "F009", "F010", "F011", "F012", "F013"] + [
    f"F0{n}" for n in range(15, 25)
]
OPERATOR_ERRORS = [
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
    "Forbidden.AccountAccessDenied",
    "Forbidden.RAMUserAccessDenied",
    "InvalidTimeStamp.Expired",
    "SignatureNonceUsed",
    "InvalidAction.NotFound",
    "InvalidVersion",
]
PROVIDER_ERRORS = ["InternalError", "ServiceUnavailable", "Throttling.User", "SomethingNew"]
PARAMETER_ERRORS = ["MissingParameter", "InvalidParameter"]


def sdk_authorization(request: httpx.Request, access_key_id: str, secret: str) -> str:
    """What Alibaba Cloud's own SDK signs for ``request`` (its signed headers only)."""
    names = request.headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    wanted = SimpleNamespace(
        pathname=request.url.path,
        method=request.method,
        query=dict(request.url.params),
        headers={name: request.headers[name] for name in names},
    )
    payload = hashlib.sha256(request.content).hexdigest()
    return str(
        SdkUtils.get_authorization(wanted, "ACS3-HMAC-SHA256", payload, access_key_id, secret)
    )


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    emulator = AliyunCaptchaEmulator()
    with emulator.serve() as upstream:

        def make(**options: Any) -> AliyunCaptcha:
            options.setdefault("scene_id", emulator.scene_id)
            return AliyunCaptcha(
                options.pop("access_key_id", emulator.access_key_id),
                options.pop("access_key_secret", emulator.access_key_secret),
                endpoint=upstream.endpoint("/"),
                breaker=patient(),
                **options,
            )

        main = make()
        hurried = make(timeout=0.25)
        providers = {
            "aliyun": main,
            "aliyun-closed": main,
            "hurried": hurried,
            "hurried-closed": hurried,
            "no-scene": make(scene_id=None),
            "ghost-scene": make(scene_id="gh0st"),
            "foreign-scene": make(scene_id="f0re1gn"),
            "wrong-secret": make(access_key_secret="NotTheSecretOfThisKey000000000"),
            "unknown-key": make(access_key_id="LTAI5tSomebodyElsesKey"),
            "skewed-clock": make(clock=lambda: time.time() - 3600),
            "renamed": make(field="captcha"),
        }
        with staged(emulator, upstream, **providers) as stage:
            yield stage


@pytest.fixture
def emulator(stage: Stage) -> Iterator[AliyunCaptchaEmulator]:
    emulator = stage.emulator
    assert isinstance(emulator, AliyunCaptchaEmulator)
    stage.reset()
    yield emulator
    stage.reset()
    emulator.force_error = None
    emulator.forbidden = None
    emulator.test_mode = False
    emulator.foreign_scenes.clear()
    emulator.scenes = {emulator.scene_id}


def test_a_solved_widget_passes(stage: Stage, emulator: AliyunCaptchaEmulator) -> None:
    answer = stage.post("aliyun", {**emulator.issue(), "account": "ada"})
    assert answer.status_code == 200
    seen = answer.json()
    assert (seen["outcome"], seen["provider"], seen["reason"]) == (
        "passed",
        "aliyun",
        "aliyun T001",
    )
    assert seen["details"]["verify_code"] == "T001"
    assert len(seen["details"]["request_id"]) == 36


def test_the_request_is_signed_as_the_vendors_sdk_signs_it(
    stage: Stage, emulator: AliyunCaptchaEmulator
) -> None:
    fields = emulator.issue()
    stage.post("aliyun", fields)
    (request,) = emulator.requests
    assert (request.method, request.url.path) == ("POST", "/")
    assert dict(parse_qsl(request.content.decode())) == {
        "CaptchaVerifyParam": fields["captchaVerifyParam"],  # forwarded unmodified
        "SceneId": emulator.scene_id,
    }
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["x-acs-action"] == "VerifyIntelligentCaptcha"
    assert request.headers["x-acs-version"] == "2023-03-05"
    assert request.headers["x-acs-content-sha256"] == hashlib.sha256(request.content).hexdigest()
    authorization = request.headers["authorization"]
    assert authorization.startswith(
        f"ACS3-HMAC-SHA256 Credential={emulator.access_key_id},SignedHeaders=content-type;host;"
        "x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
    )
    assert authorization == sdk_authorization(
        request, emulator.access_key_id, emulator.access_key_secret
    )


def test_each_request_has_a_fresh_nonce_and_the_current_date(
    stage: Stage, emulator: AliyunCaptchaEmulator
) -> None:
    before = time.time()
    stage.post("aliyun", emulator.issue())
    stage.post("aliyun", emulator.issue())
    first, second = emulator.requests
    nonces = {r.headers["x-acs-signature-nonce"] for r in (first, second)}
    assert len(nonces) == 2 and all(len(n) == 32 for n in nonces)
    dated = calendar.timegm(time.strptime(first.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ"))
    assert before - 1 <= dated <= time.time()


def test_a_parameter_verifies_once(stage: Stage, emulator: AliyunCaptchaEmulator) -> None:
    fields = emulator.issue()
    assert stage.post("aliyun", fields).status_code == 200
    again = stage.post("aliyun", fields)
    assert again.status_code == 403
    assert again.json()["reason"] == "aliyun F008: already verified"


@pytest.mark.parametrize("code", USER_VERIFY_CODES)
def test_a_failed_verification_is_403(
    stage: Stage, emulator: AliyunCaptchaEmulator, code: str
) -> None:
    answer = stage.post("aliyun", emulator.issue(verify_code=code))
    assert answer.status_code == 403
    assert answer.json()["reason"].startswith(f"aliyun {code}")


def test_an_expired_parameter_is_403(stage: Stage, emulator: AliyunCaptchaEmulator) -> None:
    issued_at = time.time() - emulator.param_lifetime - 1
    emulator.clock = lambda: issued_at
    fields = emulator.issue()
    emulator.clock = time.time
    answer = stage.post("aliyun", fields)
    assert answer.json()["reason"] == "aliyun F007: verification timed out"


def test_an_incomplete_parameter_is_403(stage: Stage, emulator: AliyunCaptchaEmulator) -> None:
    partial = json.dumps({"sceneId": emulator.scene_id, "certifyId": "x"})
    for route in ("aliyun", "no-scene"):
        answer = stage.post(route, {"captchaVerifyParam": partial})
        assert answer.json()["reason"] == "aliyun F013: parameter incomplete"


def test_test_mode_is_403_and_logged(
    stage: Stage, emulator: AliyunCaptchaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.test_mode = True
    answer = stage.post("aliyun", emulator.issue())
    assert answer.json()["reason"] == "aliyun F004: test mode is on in the console"
    assert "test mode is on" in caplog.text
    assert [r.levelno for r in caplog.records] == [logging.ERROR]


def test_our_unknown_or_foreign_scene_falls_back_and_is_logged(
    stage: Stage, emulator: AliyunCaptchaEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.foreign_scenes.add("f0re1gn")
    ghost = stage.post("ghost-scene", emulator.issue(scene_id="gh0st"))
    foreign = stage.post("foreign-scene", emulator.issue(scene_id="f0re1gn"))
    assert ghost.json()["details"] == {"fault": "operator", "code": "F005"}
    assert foreign.json()["details"] == {"fault": "operator", "code": "F006"}
    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 2


def test_a_scene_the_client_names_is_the_clients_fault(
    stage: Stage, emulator: AliyunCaptchaEmulator
) -> None:
    # Without scene_id the scene comes from the client's parameter: F005/F006 are its doing.
    emulator.foreign_scenes.add("f0re1gn")
    unknown = stage.post("no-scene", emulator.issue(scene_id="n0sc3ne"))
    foreign = stage.post("no-scene", emulator.issue(scene_id="f0re1gn"))
    assert [unknown.status_code, foreign.status_code] == [403, 403]
    assert unknown.json()["reason"] == "aliyun F005: scene id does not exist"
    assert foreign.json()["reason"] == "aliyun F006: scene id is not this account's"
    assert stage.post("no-scene", emulator.issue()).json()["outcome"] == "passed"


@pytest.mark.parametrize("code", OPERATOR_ERRORS)
def test_an_error_about_our_key_or_signature_falls_back_and_is_logged(
    stage: Stage, emulator: AliyunCaptchaEmulator, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_error = code
    answer = stage.post("aliyun", emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"] == {"fault": "operator", "code": code}
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and code in errors[0]
    assert emulator.access_key_secret not in caplog.text
    assert stage.post("aliyun-closed", emulator.issue()).status_code == 503


@pytest.mark.parametrize("code", PROVIDER_ERRORS)
def test_an_error_of_the_vendor_falls_back(
    stage: Stage, emulator: AliyunCaptchaEmulator, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_error = code
    answer = stage.post("aliyun", emulator.issue())
    assert answer.json()["outcome"] == "fallback"
    assert answer.json()["details"]["fault"] == "provider"
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize("code", PARAMETER_ERRORS)
def test_a_complaint_about_parameters_is_403_and_logged(
    stage: Stage, emulator: AliyunCaptchaEmulator, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.force_error = code
    answer = stage.post("aliyun", emulator.issue())
    assert answer.status_code == 403
    assert answer.json()["reason"].startswith(f"aliyun {code} (HTTP 40")
    # The client's parameter can provoke it: a WARNING, never an ERROR a client could trigger.
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


@pytest.mark.parametrize(
    ("route", "code"),
    [
        ("wrong-secret", "SignatureDoesNotMatch"),
        ("unknown-key", "InvalidAccessKeyId.NotFound"),
        ("skewed-clock", "InvalidTimeStamp.Expired"),
    ],
)
def test_our_misconfiguration_found_by_the_emulator_falls_back(
    stage: Stage, emulator: AliyunCaptchaEmulator, route: str, code: str
) -> None:
    answer = stage.post(route, emulator.issue())
    assert answer.json()["details"] == {"fault": "operator", "code": code}


def test_a_ram_user_without_permission_falls_back(
    stage: Stage, emulator: AliyunCaptchaEmulator
) -> None:
    emulator.forbidden = "Forbidden.RAMUserAccessDenied"
    answer = stage.post("aliyun", emulator.issue())
    assert answer.json()["details"] == {
        "fault": "operator",
        "code": "Forbidden.RAMUserAccessDenied",
    }


@pytest.mark.parametrize("outage", list(Outage))
def test_every_outage_falls_back_or_503(
    stage: Stage, emulator: AliyunCaptchaEmulator, outage: Outage
) -> None:
    emulator.outage = outage
    emulator.delay = 2.0
    opened = stage.post("hurried", emulator.issue())
    closed = stage.post("hurried-closed", emulator.issue())
    assert opened.json()["outcome"] == "fallback"
    assert opened.json()["details"]["fault"] == "provider"
    assert closed.status_code == 503


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing captchaVerifyParam"),
        ("", "malformed captchaVerifyParam"),
        ("not json", "malformed captchaVerifyParam"),
        ('["a"]', "malformed captchaVerifyParam"),
        ('{"sceneId": "x"\n}', "malformed captchaVerifyParam"),
        ('{"data": "' + "A" * 16400 + '"}', "malformed captchaVerifyParam"),
        ('{"sceneId": "0th3r", "certifyId": "c"}', "captchaVerifyParam is for another scene"),
    ],
)
def test_a_malformed_parameter_is_403_without_a_call(
    stage: Stage, emulator: AliyunCaptchaEmulator, value: str | None, reason: str
) -> None:
    answer = stage.post("aliyun", {} if value is None else {"captchaVerifyParam": value})
    assert answer.status_code == 403
    assert answer.json()["reason"] == reason
    assert emulator.calls == 0


def test_the_field_name_can_be_changed(stage: Stage, emulator: AliyunCaptchaEmulator) -> None:
    answer = stage.post("renamed", emulator.issue(field="captcha"))
    assert answer.json()["outcome"] == "passed"


# The signer on its own: the official vector, and the vendor's SDK as the other side.


def test_the_official_vector() -> None:
    empty = hashlib.sha256(b"").hexdigest()
    signature = sign(
        access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
        method="POST",
        path="/",
        query=VECTOR_QUERY,
        headers=VECTOR_HEADERS,
        payload_hash=empty,
    )
    assert hashlib.sha256(signature.canonical_request.encode()).hexdigest() == VECTOR_CANONICAL_HASH
    assert signature.string_to_sign == f"ACS3-HMAC-SHA256\n{VECTOR_CANONICAL_HASH}"
    assert signature.signature == VECTOR_SIGNATURE
    assert signature.authorization == (
        f"ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders={VECTOR_SIGNED},"
        f"Signature={VECTOR_SIGNATURE}"
    )


def vector_request(signature: str = VECTOR_SIGNATURE) -> httpx.Request:
    url = "https://ecs.cn-shanghai.aliyuncs.com/?" + "&".join(f"{k}={v}" for k, v in VECTOR_QUERY)
    authorization = (
        f"ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders={VECTOR_SIGNED},"
        f"Signature={signature}"
    )
    return httpx.Request("POST", url, headers={**VECTOR_HEADERS, "authorization": authorization})


def vector_emulator() -> AliyunCaptchaEmulator:
    emulator = AliyunCaptchaEmulator("YourAccessKeyId", "YourAccessKeySecret")
    emulator.clock = lambda: 1698315752.0  # 2023-10-26T10:22:32Z, the vector's date
    return emulator


def test_the_emulator_accepts_the_official_vectors_signature() -> None:
    with httpx.Client(transport=vector_emulator().transport()) as client:
        answer = client.send(vector_request())
    # Signed right: it gets as far as the action, which is ECS's, not CAPTCHA's.
    assert (answer.status_code, answer.json()["Code"]) == (404, "InvalidAction.NotFound")


def test_the_emulator_refuses_a_wrong_signature_in_the_vendors_shape() -> None:
    forged = VECTOR_SIGNATURE[:-1] + ("1" if VECTOR_SIGNATURE[-1] != "1" else "2")
    with httpx.Client(transport=vector_emulator().transport()) as client:
        answer = client.send(vector_request(forged))
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert body["Code"] == "SignatureDoesNotMatch"
    assert body["Message"].endswith(
        f"server string to sign is:ACS3-HMAC-SHA256\n{VECTOR_CANONICAL_HASH}"
    )


_names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", min_size=1
)


@settings(max_examples=200, deadline=None)
@given(
    query=st.dictionaries(_names, st.text(), max_size=4),
    header_values=st.lists(
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E)),
        min_size=1,
        max_size=3,
    ),
    body=st.binary(max_size=64),
    secret=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1),
)
def test_the_signer_agrees_with_the_vendors_sdk(
    query: dict[str, str], header_values: list[str], body: bytes, secret: str
) -> None:
    headers = {
        "host": "captcha.cn-shanghai.aliyuncs.com",
        "x-acs-action": "VerifyIntelligentCaptcha",
    }
    headers.update({f"x-acs-extra-{i}": v for i, v in enumerate(header_values)})
    payload = hashlib.sha256(body).hexdigest()
    ours = sign(
        access_key_id="AK",
        access_key_secret=secret,
        method="POST",
        path="/",
        query=query.items(),
        headers=headers,
        payload_hash=payload,
    )
    theirs = SdkUtils.get_authorization(
        SimpleNamespace(pathname="/", method="POST", query=query, headers=headers),
        "ACS3-HMAC-SHA256",
        payload,
        "AK",
        secret,
    )
    assert ours.authorization == theirs


# The provider on its own.


def _claim(provider: AliyunCaptcha, param: str) -> Claim:
    fields = Fields()
    fields.add(provider.field, param)
    return provider.check(fields, ClientRequest("POST", "/", "127.0.0.1", {}, raw={}))


def test_the_clock_and_region_choose_date_and_endpoint() -> None:
    provider = AliyunCaptcha("AK", "secret", region="sgp", clock=lambda: 1698315752.0)
    request = as_httpx(provider.build_request(_claim(provider, '{"sceneId":"s"}')))
    assert str(request.url) == "https://captcha.ap-southeast-1.aliyuncs.com/"
    assert request.headers["x-acs-date"] == "2023-10-26T10:22:32Z" == acs_date(1698315752.0)
    assert "SceneId" not in request.content.decode()  # none configured
    assert AliyunCaptcha("AK", "s").endpoint == "https://captcha.cn-shanghai.aliyuncs.com/"


def test_the_replay_key_is_a_hash_of_the_certify_id() -> None:
    param = '{"sceneId":"s","certifyId":"c"}'
    claim = _claim(AliyunCaptcha("AK", "s"), param)
    assert claim.replay_key == "aliyun:" + hashlib.sha256(b"certifyId:c").hexdigest()
    # The same captcha re-spaced or reordered has the same key.
    for variant in (f" {param} ", '{"certifyId": "c", "sceneId": "s"}'):
        assert _claim(AliyunCaptcha("AK", "s"), variant).replay_key == claim.replay_key
    # Without a certifyId, the parameter's canonical JSON stands for it.
    first = _claim(AliyunCaptcha("AK", "s"), '{"sceneId":"s","data":"x"}')
    second = _claim(AliyunCaptcha("AK", "s"), '{ "data" : "x", "sceneId" : "s" }')
    assert first.replay_key == second.replay_key


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"Result": {"VerifyResult": True, "VerifyCode": "F001"}}, Fault.PROVIDER),
        (200, {"Result": {"VerifyResult": "true"}}, Fault.PROVIDER),
        (200, {"Success": False}, Fault.PROVIDER),
        (403, {"Message": "no code"}, Fault.OPERATOR),
        (404, {"Code": "InvalidAction.NotFound"}, Fault.OPERATOR),
        (200, [], Fault.PROVIDER),
    ],
)
def test_odd_answers(status: int, body: object, expected: Fault) -> None:
    provider = AliyunCaptcha("AK", "s")
    answer = from_httpx(httpx.Response(status, json=body))
    result = provider.read_response(_claim(provider, "{}"), answer)
    assert isinstance(result, ProviderFailure) and result.fault is expected


def test_a_pass_without_a_code_still_passes() -> None:
    provider = AliyunCaptcha("AK", "s")
    answer = from_httpx(httpx.Response(200, json={"Result": {"VerifyResult": True}}))
    result = provider.read_response(_claim(provider, "{}"), answer)
    assert isinstance(result, Verdict) and result.passed


@pytest.mark.parametrize(
    "build",
    [
        lambda: AliyunCaptcha("", "s"),
        lambda: AliyunCaptcha("A K", "s"),
        lambda: AliyunCaptcha("AK", ""),
        lambda: AliyunCaptcha("AK", "s", region="eu"),
        lambda: AliyunCaptcha("AK", "s", scene_id="a b"),
        lambda: AliyunCaptcha("AK", "s", field=""),
        lambda: AliyunCaptcha("AK", "s", endpoint="captcha.example.org"),
    ],
)
def test_bad_configuration_fails_at_construction(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_repr_keeps_the_secret() -> None:
    assert "TopSecret" not in repr(AliyunCaptcha("AK", "TopSecret"))
