"""An Alibaba Cloud CAPTCHA 2.0 endpoint (``VerifyIntelligentCaptcha``) that judges like the
vendor's: it recomputes the V3 ``ACS3-HMAC-SHA256`` signature of every request on its own
(the code here shares nothing with the provider's signer), refuses a wrong one with the
vendor's ``SignatureDoesNotMatch`` shape, and verifies the parameters its widget issued.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx

from ._emulator import Emulator

#: HTTP status of each error code the emulator answers (as Alibaba Cloud sends them).
ERROR_STATUS = {
    "MissingParameter": 400,
    "InvalidParameter": 401,
    "IncompleteSignature": 400,
    "SignatureDoesNotMatch": 400,
    "SignatureNonceUsed": 400,
    "InvalidTimeStamp.Expired": 400,
    "InvalidAccessKeyId.NotFound": 404,
    "InvalidAccessKeyId.Inactive": 403,
    "InvalidAction.NotFound": 404,
    "InvalidVersion": 400,
    "Forbidden.AccountAccessDenied": 403,
    "Forbidden.RAMUserAccessDenied": 403,
    "Throttling.User": 400,
    "InternalError": 500,
    "ServiceUnavailable": 503,
}
ERROR_MESSAGES = {
    "MissingParameter": "One or more required parameters are not specified.",
    "InvalidParameter": "One or more specified parameters are invalid.",
    "IncompleteSignature": "The request signature does not conform to Aliyun standards.",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "SignatureNonceUsed": "Specified signature nonce was used already.",
    "InvalidTimeStamp.Expired": "Specified time stamp or date value is expired.",
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "InvalidAccessKeyId.Inactive": "Specified access key is disabled.",
    "InvalidAction.NotFound": "Specified api is not found, please check your url and method.",
    "InvalidVersion": "Specified parameter Version is not valid.",
    "Forbidden.AccountAccessDenied": "You do not have the required permissions.",
    "Forbidden.RAMUserAccessDenied": "The RAM user does not have the required permissions.",
    "Throttling.User": "Request was denied due to user flow control.",
    "InternalError": "An internal error has occurred. Try again later.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
}

_AUTHORIZATION = re.compile(
    r"ACS3-HMAC-SHA256 Credential=(?P<ak>[^,]+),SignedHeaders=(?P<names>[^,]+),"
    r"Signature=(?P<signature>[0-9a-f]{64})"
)
_MUST_SIGN = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)
_CLOCK_SKEW = 900.0  # Alibaba Cloud refuses a request dated more than 15 minutes off
_PARAM_KEYS = ("sceneId", "certifyId", "deviceToken", "data")


@dataclass
class _Issued:
    scene_id: str
    issued_at: float
    verify_code: str
    used: bool = False


class AliyunCaptchaEmulator(Emulator):
    """Knows its AccessKey pairs (``keys``), the account's scenes (``scenes``; scenes of
    another account in ``foreign_scenes``) and the parameters its widget issued.

    ``issue(verify_code="F009")`` plays the widget and returns ``{"captchaVerifyParam": ...}``
    that will be judged so (``T001``, the default, passes once within ``param_lifetime``).
    ``force_error = "Throttling.User"`` answers that error; ``test_mode = True`` answers F004;
    ``forbidden = "Forbidden.RAMUserAccessDenied"`` refuses the key's permission.
    """

    def __init__(
        self,
        access_key_id: str = "LTAI5tEmulatedAccessKeyId",
        access_key_secret: str = "EmulatedAccessKeySecret0123456789",
        *,
        scene_id: str = "emu1sc3n",
        param_lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.scene_id = scene_id
        self.keys: dict[str, str] = {access_key_id: access_key_secret}
        self.scenes: set[str] = {scene_id}
        self.foreign_scenes: set[str] = set()
        self.param_lifetime = param_lifetime
        self.clock = clock
        self.force_error: str | None = None
        self.forbidden: str | None = None
        self.test_mode = False
        self._issued: dict[str, _Issued] = {}
        self._nonces: dict[str, float] = {}

    def issue(
        self,
        *,
        scene_id: str | None = None,
        verify_code: str = "T001",
        field: str = "captchaVerifyParam",
    ) -> dict[str, str]:
        """The parameter the widget's ``success`` callback hands the page, as a field."""
        certify_id = secrets.token_urlsafe(12)
        scene = scene_id or self.scene_id
        with self._lock:
            self._issued[certify_id] = _Issued(scene, self.clock(), verify_code)
        param = {
            "sceneId": scene,
            "certifyId": certify_id,
            "deviceToken": b64encode(secrets.token_bytes(96)).decode(),
            "data": b64encode(secrets.token_bytes(192)).decode(),
        }
        return {field: json.dumps(param, separators=(",", ":"))}

    def answer(self, request: httpx.Request) -> httpx.Response:
        if self.force_error:
            return _error(self.force_error)
        refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        if request.headers.get("x-acs-action") != "VerifyIntelligentCaptcha":
            return _error("InvalidAction.NotFound")
        if request.headers.get("x-acs-version") != "2023-03-05":
            return _error("InvalidVersion")
        if self.forbidden:
            return _error(self.forbidden)
        params = dict(request.url.params)
        params.update(parse_qsl(request.content.decode("utf-8", "replace"), keep_blank_values=True))
        if "CaptchaVerifyParam" not in params:
            return _error("MissingParameter")
        return self._verify(params["CaptchaVerifyParam"], params.get("SceneId"))

    def _authenticate(self, request: httpx.Request) -> httpx.Response | None:
        match = _AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
        if match is None:
            return _error("IncompleteSignature")
        secret = self.keys.get(match["ak"])
        if secret is None:
            return _error("InvalidAccessKeyId.NotFound")
        names = match["names"].split(";")
        if names != sorted(names) or any(n not in names for n in _MUST_SIGN):
            return _error("IncompleteSignature")
        if any(n not in request.headers for n in names):
            return _error("IncompleteSignature")
        body_hash = hashlib.sha256(request.content).hexdigest()
        lines = [
            request.method,
            request.url.path or "/",
            _query(request.url.params.multi_items()),
            "".join(f"{n}:{request.headers[n].strip()}\n" for n in names),
            ";".join(names),
            body_hash,
        ]
        to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256("\n".join(lines).encode()).hexdigest()
        expected = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        claimed_hash = request.headers["x-acs-content-sha256"]
        if not hmac.compare_digest(expected, match["signature"]) or claimed_hash != body_hash:
            message = (
                f"{ERROR_MESSAGES['SignatureDoesNotMatch']} server string to sign is:{to_sign}"
            )
            return _error("SignatureDoesNotMatch", message)
        try:
            dated = datetime.strptime(request.headers["x-acs-date"], "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            return _error("InvalidTimeStamp.Expired")
        now = self.clock()
        if abs(dated.replace(tzinfo=timezone.utc).timestamp() - now) > _CLOCK_SKEW:
            return _error("InvalidTimeStamp.Expired")
        nonce = request.headers["x-acs-signature-nonce"]
        self._nonces = {n: t for n, t in self._nonces.items() if now - t <= _CLOCK_SKEW}
        if nonce in self._nonces:
            return _error("SignatureNonceUsed")
        self._nonces[nonce] = now
        return None

    def _verify(self, raw: str, scene_id: str | None) -> httpx.Response:
        if scene_id is not None:
            code = self._scene(scene_id)
            if code:
                return _result(code)
        if not raw:
            return _result("F002")
        try:
            param: Any = json.loads(raw)
        except ValueError:
            return _result("F003")
        if not isinstance(param, dict):
            return _result("F003")
        if any(not isinstance(param.get(key), str) or not param[key] for key in _PARAM_KEYS):
            return _result("F013")
        if scene_id is None:
            code = self._scene(param["sceneId"])
            if code:
                return _result(code)
        elif param["sceneId"] != scene_id:
            return _result("F012")
        if self.test_mode:
            return _result("F004")
        issued = self._issued.get(param["certifyId"])
        if issued is None or issued.scene_id != param["sceneId"]:
            return _result("F001")
        if self.clock() - issued.issued_at > self.param_lifetime:
            return _result("F007")
        if issued.used:
            return _result("F008")
        issued.used = True
        return _result(issued.verify_code)

    def _scene(self, scene_id: str) -> str | None:
        if scene_id in self.foreign_scenes:
            return "F006"
        if scene_id not in self.scenes:
            return "F005"
        return None


def _query(pairs: list[tuple[str, str]]) -> str:
    encoded = sorted((quote(k, safe="~"), quote(v, safe="~")) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _request_id() -> str:
    return "-".join(secrets.token_hex(n).upper() for n in (4, 2, 2, 2, 6))


def _result(verify_code: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "RequestId": _request_id(),
            "Success": True,
            "Code": "Success",
            "Message": "success",
            "HttpStatusCode": 200,
            "Result": {"VerifyResult": verify_code.startswith("T"), "VerifyCode": verify_code},
        },
    )


def _error(code: str, message: str | None = None) -> httpx.Response:
    request_id = _request_id()
    return httpx.Response(
        ERROR_STATUS.get(code, 400),
        json={
            "RequestId": request_id,
            "HostId": "captcha.cn-shanghai.aliyuncs.com",
            "Code": code,
            "Message": message or ERROR_MESSAGES.get(code, "error"),
            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=captcha"
            f"&requestId={request_id}",
        },
    )
