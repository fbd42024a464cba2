"""The Alibaba Cloud emulator authenticates like the vendor (V3 signature, key, clock, nonce)
and judges the widget's parameter like it."""

from __future__ import annotations

import hashlib
import json
import secrets
from urllib.parse import quote, urlencode

import httpx
import pytest

from captcha_guard import AliyunCaptcha
from captcha_guard._fields import Fields
from captcha_guard.providers._base import ClientRequest
from captcha_guard.providers.aliyun import acs_date, sign
from captcha_guard.testing import AliyunCaptchaEmulator
from tests import TLS
from tests.wire import as_httpx

URL = "https://captcha.test/"


def signed(
    emulator: AliyunCaptchaEmulator, param: str, *, scene_id: str | None = None
) -> httpx.Request:
    provider = AliyunCaptcha(
        emulator.access_key_id,
        emulator.access_key_secret,
        scene_id=scene_id,
        endpoint=URL,
        clock=emulator.clock,
    )
    fields = Fields()
    fields.add(provider.field, param)
    claim = provider.check(fields, ClientRequest("POST", "/", None, {}, raw={}))
    return as_httpx(provider.build_request(claim))


def send(emulator: AliyunCaptchaEmulator, request: httpx.Request) -> httpx.Response:
    with httpx.Client(transport=emulator.transport()) as client:
        return client.send(request)


def code(answer: httpx.Response) -> str:
    body = answer.json()
    if "Result" in body:
        return str(body["Result"]["VerifyCode"])
    return str(body["Code"])


def with_body(request: httpx.Request, body: bytes) -> httpx.Request:
    return httpx.Request(request.method, request.url, headers=request.headers, content=body)


def test_a_signed_request_with_an_issued_parameter_passes_once() -> None:
    emulator = AliyunCaptchaEmulator()
    param = emulator.issue()["captchaVerifyParam"]
    first = send(emulator, signed(emulator, param, scene_id=emulator.scene_id))
    assert first.status_code == 200
    assert first.json()["Result"] == {"VerifyResult": True, "VerifyCode": "T001"}
    assert first.json()["Success"] is True
    again = send(emulator, signed(emulator, param, scene_id=emulator.scene_id))
    assert code(again) == "F008"


def test_authentication_refusals() -> None:
    emulator = AliyunCaptchaEmulator()
    param = emulator.issue()["captchaVerifyParam"]
    request = signed(emulator, param)

    unsigned = httpx.Request("POST", URL, headers={"x-acs-action": "x"}, content=request.content)
    assert (send(emulator, unsigned).status_code, code(send(emulator, unsigned))) == (
        400,
        "IncompleteSignature",
    )
    tampered = with_body(request, request.content + b"&SceneId=other")
    assert code(send(emulator, tampered)) == "SignatureDoesNotMatch"
    stranger = AliyunCaptchaEmulator("LTAI5tSomeoneElse", emulator.access_key_secret)
    assert code(send(stranger, signed(emulator, param))) == "InvalidAccessKeyId.NotFound"
    assert code(send(emulator, request)) == "T001"
    assert code(send(emulator, request)) == "SignatureNonceUsed"  # the same request again


def test_a_signature_that_leaves_out_a_required_header_is_incomplete() -> None:
    emulator = AliyunCaptchaEmulator()
    request = signed(emulator, emulator.issue()["captchaVerifyParam"])
    authorization = request.headers["authorization"].replace("x-acs-date;", "")
    request.headers["authorization"] = authorization
    assert code(send(emulator, request)) == "IncompleteSignature"


def test_a_date_off_by_more_than_fifteen_minutes_is_refused() -> None:
    now = [1_700_000_000.0]
    emulator = AliyunCaptchaEmulator(clock=lambda: now[0])
    request = signed(emulator, emulator.issue()["captchaVerifyParam"])
    now[0] += 901
    assert code(send(emulator, request)) == "InvalidTimeStamp.Expired"


@pytest.mark.parametrize(
    ("param", "scene_id", "expected"),
    [
        ("", None, "F002"),
        ("not json", None, "F003"),
        ('{"sceneId": "emu1sc3n"}', None, "F013"),
        ("@other-scene", None, "F005"),
        ("@emu1sc3n", "n0tOurs", "F005"),
        ('{"sceneId":"emu1sc3n","certifyId":"forged","deviceToken":"d","data":"d"}', None, "F001"),
    ],
)
def test_parameter_verdicts(param: str, scene_id: str | None, expected: str) -> None:
    emulator = AliyunCaptchaEmulator()
    if param.startswith("@"):
        param = emulator.issue(scene_id=param[1:])["captchaVerifyParam"]
    form = [("CaptchaVerifyParam", param), *([("SceneId", scene_id)] if scene_id else [])]
    assert code(send(emulator, signed_form(emulator, form))) == expected


def signed_form(emulator: AliyunCaptchaEmulator, form: list[tuple[str, str]]) -> httpx.Request:
    """A correctly signed request carrying exactly ``form`` (which the provider never sends
    malformed), to reach the emulator's parameter checks."""
    body = urlencode(form, quote_via=quote).encode()
    headers = {
        "host": "captcha.test",
        "content-type": "application/x-www-form-urlencoded",
        "x-acs-action": "VerifyIntelligentCaptcha",
        "x-acs-version": "2023-03-05",
        "x-acs-date": acs_date(emulator.clock()),
        "x-acs-signature-nonce": secrets.token_hex(16),
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    signature = sign(
        access_key_id=emulator.access_key_id,
        access_key_secret=emulator.access_key_secret,
        method="POST",
        path="/",
        query=[],
        headers=headers,
        payload_hash=headers["x-acs-content-sha256"],
    )
    headers["authorization"] = signature.authorization
    return httpx.Request("POST", URL, headers=headers, content=body)


def test_a_request_without_the_parameter_is_missing_parameter() -> None:
    emulator = AliyunCaptchaEmulator()
    answer = send(emulator, signed_form(emulator, [("SceneId", emulator.scene_id)]))
    assert (answer.status_code, code(answer)) == (400, "MissingParameter")


def test_the_scene_of_the_parameter_must_be_the_scene_sent() -> None:
    emulator = AliyunCaptchaEmulator()
    emulator.scenes.add("s3c0nd")
    param = emulator.issue(scene_id="s3c0nd")["captchaVerifyParam"]
    form = [("CaptchaVerifyParam", param), ("SceneId", emulator.scene_id)]
    assert code(send(emulator, signed_form(emulator, form))) == "F012"


def test_switches_for_errors_test_mode_and_permissions() -> None:
    emulator = AliyunCaptchaEmulator()
    emulator.test_mode = True
    assert code(send(emulator, signed(emulator, emulator.issue()["captchaVerifyParam"]))) == "F004"
    emulator.forbidden = "Forbidden.AccountAccessDenied"
    answer = send(emulator, signed(emulator, emulator.issue()["captchaVerifyParam"]))
    assert (answer.status_code, code(answer)) == (403, "Forbidden.AccountAccessDenied")
    emulator.force_error = "ServiceUnavailable"
    answer = send(emulator, signed(emulator, "{}"))
    assert (answer.status_code, code(answer)) == (503, "ServiceUnavailable")


def test_issued_parameters_look_like_the_widgets() -> None:
    emulator = AliyunCaptchaEmulator()
    param = json.loads(emulator.issue()["captchaVerifyParam"])
    assert set(param) == {"sceneId", "certifyId", "deviceToken", "data"}
    assert param["sceneId"] == emulator.scene_id


def test_served_for_real_the_host_header_is_signed_with_its_port() -> None:
    emulator = AliyunCaptchaEmulator()
    with emulator.serve() as server:
        provider = AliyunCaptcha(
            emulator.access_key_id, emulator.access_key_secret, endpoint=server.endpoint("/")
        )
        fields = Fields()
        fields.add(provider.field, emulator.issue()["captchaVerifyParam"])
        request = as_httpx(
            provider.build_request(
                provider.check(fields, ClientRequest("POST", "/", None, {}, raw={}))
            )
        )
        with httpx.Client(verify=TLS) as client:
            answer = client.send(request)
    assert request.headers["host"] == f"127.0.0.1:{server.port}"
    assert code(answer) == "T001"
