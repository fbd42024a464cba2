"""A Tencent Cloud Captcha endpoint (``DescribeCaptchaResult``) that judges like the vendor's:
it recomputes the TC3-HMAC-SHA256 signature of every request on its own (the code here shares
nothing with the provider's signer), refuses a wrong one with the vendor's ``AuthFailure``
shape, and verifies the tickets its widget issued.

The order of its checks is a model: Tencent documents the codes, not the order. Here the API
key and the signature come first (``AuthFailure.*``), then the parameters, then the captcha
app (an unknown ``CaptchaAppId``: 16; a wrong ``AppSecretKey``: 100), then the ticket (15
undecryptable, 16 minted for another app, 7 wrong randstr, 8 expired, 9 reused, 21 a
``trerror_`` disaster ticket).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx

from ._emulator import Emulator

ERROR_MESSAGES = {
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your "
    "SecretId is correct.",
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please "
    "check your signature is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp is more than 5 minutes off.",
    "AuthFailure.InvalidAuthorization": "Authorization header is malformed.",
    "InvalidAction": "The action DescribeCaptchaResult is not found.",
    "NoSuchVersion": "The requested version does not exist.",
    "MissingParameter": "The request is missing a required parameter.",
    "InvalidParameter": "A parameter error occurred.",
    "InvalidParameterValue": "A parameter value is invalid.",
    "UnauthorizedOperation.Unauthorized": "No valid package, or the account is in arrears.",
    "RequestLimitExceeded": "Request frequency exceeds the limit.",
    "InternalError": "An internal error has occurred.",
}
CAPTCHA_MESSAGES = {
    1: "OK",
    7: "captcha no match",
    8: "ticket expired",
    9: "ticket reused",
    15: "decrypt fail",
    16: "appid-ticket mismatch",
    21: "diff",
    100: "appid-secretkey-ticket mismatch",
}

_AUTHORIZATION = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<names>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})"
)
_SKEW = 300  # Tencent refuses a timestamp more than 5 minutes off


@dataclass
class _Ticket:
    app_id: int
    randstr: str
    issued_at: float
    evil_level: int
    used: bool = False


class TencentCaptchaEmulator(Emulator):
    """Knows its CAM API keys (``keys``), its captcha apps (``apps``: CaptchaAppId ->
    AppSecretKey) and the tickets its widget issued.

    ``issue()`` plays the widget and returns ``{"ticket": ..., "randstr": ...}`` (which passes
    once within ``ticket_lifetime``; ``evil_level=100`` marks it malicious, ``app_id=`` mints it
    for another app); ``disaster_ticket()`` is what the widget makes up when its script cannot
    load. ``force_error = "RequestLimitExceeded"`` answers that error; ``force_code = 26``
    answers that CaptchaCode.
    """

    def __init__(
        self,
        secret_id: str = "AKIDEmulatedTencentSecretId000000000",
        secret_key: str = "EmulatedTencentSecretKey00000000",
        *,
        captcha_app_id: int = 199999164,
        app_secret_key: str = "EmulatedAppSecretKey00000",
        ticket_lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.captcha_app_id = captcha_app_id
        self.app_secret_key = app_secret_key
        self.keys: dict[str, str] = {secret_id: secret_key}
        self.apps: dict[int, str] = {captcha_app_id: app_secret_key}
        self.ticket_lifetime = ticket_lifetime
        self.clock = clock
        self.force_error: str | None = None
        self.force_code: int | None = None
        #: The body of every authenticated request, parsed, in order.
        self.bodies: list[dict[str, Any]] = []
        self._tickets: dict[str, _Ticket] = {}

    def issue(self, *, evil_level: int = 0, app_id: int | None = None) -> dict[str, str]:
        """The two values the widget's callback hands the page, as fields."""
        ticket = "tr03" + secrets.token_urlsafe(96) + "*"
        randstr = "@" + secrets.token_urlsafe(3)[:3]
        record = _Ticket(app_id or self.captcha_app_id, randstr, self.clock(), evil_level)
        with self._lock:
            self._tickets[ticket] = record
        return {"ticket": ticket, "randstr": randstr}

    def disaster_ticket(self, app_id: int | None = None) -> dict[str, str]:
        """What the widget makes up when its script cannot load (anyone can)."""
        app = app_id or self.captcha_app_id
        ticket = f"trerror_1001_{app}_{int(self.clock())}"
        return {"ticket": ticket, "randstr": "@" + secrets.token_urlsafe(3)[:3]}

    def answer(self, request: httpx.Request) -> httpx.Response:
        if self.force_error:
            return _error(self.force_error)
        refusal = self._authenticate(request)
        if refusal is not None:
            return refusal
        if request.headers.get("x-tc-action") != "DescribeCaptchaResult":
            return _error("InvalidAction")
        if request.headers.get("x-tc-version") != "2019-07-22":
            return _error("NoSuchVersion")
        try:
            body = json.loads(request.content)
        except ValueError:
            return _error("InvalidParameter")
        if not isinstance(body, dict):
            return _error("InvalidParameter")
        self.bodies.append(body)
        return self._verify(body)

    def _authenticate(self, request: httpx.Request) -> httpx.Response | None:
        match = _AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
        if match is None:
            return _error("AuthFailure.InvalidAuthorization")
        secret = self.keys.get(match["id"])
        if secret is None:
            return _error("AuthFailure.SecretIdNotFound")
        names = match["names"].split(";")
        if names != sorted(names) or not {"content-type", "host"} <= set(names):
            return _error("AuthFailure.InvalidAuthorization")
        if any(n not in request.headers for n in names):
            return _error("AuthFailure.InvalidAuthorization")
        try:
            timestamp = int(request.headers.get("x-tc-timestamp", ""))
        except ValueError:
            return _error("AuthFailure.InvalidAuthorization")
        date = datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
        canonical = "\n".join(
            [
                request.method,
                request.url.path or "/",
                request.url.query.decode(),
                "".join(f"{n}:{request.headers[n].strip().lower()}\n" for n in names),
                ";".join(names),
                hashlib.sha256(request.content).hexdigest(),
            ]
        )
        scope = f"{date}/{match['service']}/tc3_request"
        to_sign = "\n".join(
            [
                "TC3-HMAC-SHA256",
                str(timestamp),
                scope,
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        key = f"TC3{secret}".encode()
        for part in (date, match["service"], "tc3_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if (
            not hmac.compare_digest(expected, match["signature"])
            or match["date"] != date
            or match["service"] != "captcha"
        ):
            return _error("AuthFailure.SignatureFailure")
        if abs(timestamp - self.clock()) > _SKEW:
            return _error("AuthFailure.SignatureExpire")
        return None

    def _verify(self, body: dict[str, Any]) -> httpx.Response:
        for name in ("CaptchaType", "Ticket", "Randstr", "CaptchaAppId", "AppSecretKey", "UserIp"):
            if name not in body:
                return _error("MissingParameter", f"The request is missing parameter {name}.")
        app = body["CaptchaAppId"]
        if isinstance(app, bool) or not isinstance(app, int):
            return _error("InvalidParameter", "CaptchaAppId must be an Integer.")
        texts = ("Ticket", "Randstr", "AppSecretKey", "UserIp")
        if body["CaptchaType"] != 9 or any(not isinstance(body[n], str) for n in texts):
            return _error("InvalidParameterValue")
        if self.force_code is not None:
            return _result(self.force_code)
        secret = self.apps.get(app)
        if secret is None:
            return _result(16)
        if not hmac.compare_digest(secret.encode(), body["AppSecretKey"].encode()):
            return _result(100)
        ticket_text: str = body["Ticket"]
        if ticket_text.startswith("trerror_"):
            return _result(21)
        ticket = self._tickets.get(ticket_text)
        if ticket is None:
            return _result(15)
        if ticket.app_id != app:
            return _result(16)
        if body["Randstr"] != ticket.randstr:
            return _result(7)
        if self.clock() - ticket.issued_at > self.ticket_lifetime:
            return _result(8)
        if ticket.used:
            return _result(9)
        ticket.used = True
        return _result(1, ticket.evil_level, int(ticket.issued_at))


def _result(code: int, evil_level: int = 0, captcha_time: int = 0) -> httpx.Response:
    answer = {
        "CaptchaCode": code,
        "CaptchaMsg": CAPTCHA_MESSAGES.get(code, "error"),
        "EvilLevel": evil_level,
        "GetCaptchaTime": captcha_time,
        "EvilBitmap": None,
        "SubmitCaptchaTime": 0,
        "DeviceRiskCategory": None,
        "RequestId": str(uuid.uuid4()),
    }
    return httpx.Response(200, json={"Response": answer})


def _error(code: str, message: str | None = None) -> httpx.Response:
    # Tencent Cloud API 3.0 answers HTTP 200 with an Error object.
    error = {"Code": code, "Message": message or ERROR_MESSAGES.get(code, "error")}
    return httpx.Response(200, json={"Response": {"Error": error, "RequestId": str(uuid.uuid4())}})
