"""Tencent Cloud Captcha second verification: ``DescribeCaptchaResult`` (API 2019-07-22).

A Tencent Cloud API 3.0 call signed with TC3-HMAC-SHA256, written here with ``hmac`` and
``hashlib`` so no vendor SDK is needed at run time. Two credential pairs take part and users mix
them up: the CAM ``SecretId``/``SecretKey`` sign the request, the captcha app's
``CaptchaAppId``/``AppSecretKey`` travel in its body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .._breaker import CircuitBreaker
from .._fields import Fields
from .._verdict import ProviderFailure, Verdict
from ._base import (
    DEFAULT_TIMEOUT,
    Claim,
    ClientRequest,
    Provider,
    ProviderRequest,
    ProviderResponse,
    client_ip,
    matching,
    short_text,
)
from ._faults import TENCENT, TENCENT_CAPTCHA
from ._wire import host_header

ACTION = "DescribeCaptchaResult"
VERSION = "2019-07-22"
SERVICE = "captcha"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
#: ``CaptchaType`` is always 9 (the console chooses the real type).
CAPTCHA_TYPE = 9

#: The mainland endpoint (``region=None``); ``"intl"`` is the International site's.
ENDPOINT = "https://captcha.tencentcloudapi.com/"
INTL_ENDPOINT = "https://captcha.intl.tencentcloudapi.com/"
_REGION = re.compile(r"[a-z]{2,8}(-[a-z0-9]{2,16}){1,3}")

#: The prefix of the tickets the widget makes up when its script cannot load (Tencent's
#: "disaster" tickets): anyone can make one, so they are verified like any other.
DISASTER_PREFIX = "trerror_"

CLIENT_FIELDS = ("ticket", "randstr")
# Tickets are about 100-200 characters of URL-safe base64 and '*' (the docs' example:
# ``tr03XaCU...QTKQ*``); randstr is short (``@Vki``). The bounds are generous, but no
# whitespace, control character or non-ASCII byte ever reaches Tencent.
_SHAPES = {
    "ticket": re.compile(r"[\x21-\x7e]{1,4096}"),
    "randstr": re.compile(r"[\x21-\x7e]{1,128}"),
}
_SECRET_ID = re.compile(r"[\x21-\x7e]{1,128}")

CAPTCHA_MESSAGES = {
    "7": "Randstr does not match the ticket",
    "8": "ticket expired",
    "9": "ticket reused",
    "10": "ticket format error",
    "15": "ticket could not be decrypted",
    "16": "CaptchaAppId does not match the ticket",
    "21": "refused by risk control",
    "25": "blocked by policy",
    "26": "system internal error",
    "31": "no valid package or account in arrears",
    "100": "CaptchaAppId, AppSecretKey and ticket do not match",
}


# TC3-HMAC-SHA256.


@dataclass(frozen=True)
class Signature:
    canonical_request: str
    string_to_sign: str
    signed_headers: str
    signature: str
    authorization: str


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    """The credential scope's date: the UTC date of ``timestamp`` (never the local one)."""
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")


def sign(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    timestamp: int,
    headers: Mapping[str, str],
    payload: bytes,
    method: str = "POST",
    path: str = "/",
    query: str = "",
) -> Signature:
    """Sign a Tencent Cloud API 3.0 request. ``headers`` are the headers to sign (at least
    ``content-type`` and ``host``): names and values lower-cased and trimmed, as TC3 says."""
    canonical = {name.strip().lower(): value.strip().lower() for name, value in headers.items()}
    names = sorted(canonical)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            query,
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    date = utc_date(timestamp)
    scope = f"{date}/{service}/tc3_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), service), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signature(canonical_request, string_to_sign, signed_headers, signature, authorization)


def endpoint_for(region: str | None) -> str:
    """The endpoint of ``region``: None the mainland's, ``"intl"`` the International site's,
    a region name (``"ap-singapore"``) its regional host."""
    if region is None:
        return ENDPOINT
    if region == "intl":
        return INTL_ENDPOINT
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ValueError(
            f"TencentCaptcha: region must be None, 'intl' or a region name such as "
            f"'ap-guangzhou', not {region!r}"
        )
    return f"https://captcha.{region}.tencentcloudapi.com/"


def app_id(value: object) -> int:
    """``captcha_app_id`` as the integer Tencent wants (a string of digits is accepted, as a
    config file's ``env:`` reference gives one)."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63:
        raise ValueError("TencentCaptcha: captcha_app_id must be the console's CaptchaAppId")
    return value


class TencentCaptcha(Provider):
    """Tencent Cloud Captcha. The client sends the widget's ``ticket`` and ``randstr``.

    ``secret_id``/``secret_key`` are the CAM API key (they sign); ``captcha_app_id``/
    ``app_secret_key`` the captcha app's (they go in the body). ``region`` picks the endpoint
    (None: mainland, ``"intl"``: International, or a region name); ``endpoint`` wins over it.
    A passed ticket that Tencent judged malicious (``EvilLevel`` 100) is refused unless
    ``refuse_evil=False``; the level is in the verdict's details either way.
    """

    name: ClassVar[str] = "tencent"

    def __init__(
        self,
        secret_id: str,
        secret_key: str,
        *,
        captcha_app_id: int | str,
        app_secret_key: str,
        region: str | None = None,
        endpoint: str | None = None,
        refuse_evil: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(secret_id, str) or not _SECRET_ID.fullmatch(secret_id):
            raise ValueError("TencentCaptcha: secret_id must be the CAM API key's SecretId")
        if not isinstance(secret_key, str) or not secret_key:
            raise ValueError("TencentCaptcha: secret_key must be the CAM API key's SecretKey")
        if not isinstance(app_secret_key, str) or not app_secret_key:
            raise ValueError("TencentCaptcha: app_secret_key must be the app's AppSecretKey")
        if app_secret_key == secret_key:
            raise ValueError(
                "TencentCaptcha: app_secret_key is the captcha app's AppSecretKey, not the CAM "
                "SecretKey (secret_key)"
            )
        if not isinstance(refuse_evil, bool):
            raise ValueError("TencentCaptcha: refuse_evil must be True or False")
        captcha_app_id = app_id(captcha_app_id)
        default = endpoint_for(region)
        super().__init__(endpoint=endpoint or default, timeout=timeout, breaker=breaker)
        parts = urlsplit(self.endpoint)
        self._host = host_header(self.endpoint)
        self._path = parts.path or "/"
        self._query = parts.query
        self.secret_id = secret_id
        self._secret_key = secret_key
        self.captcha_app_id = captcha_app_id
        self._app_secret_key = app_secret_key
        self.region = region
        self.refuse_evil = refuse_evil
        self._clock = clock

    def check(self, fields: Fields, request: ClientRequest) -> Claim:
        values = {name: matching(_SHAPES[name], name, fields.one(name)) for name in CLIENT_FIELDS}
        digest = hashlib.sha256(values["ticket"].encode()).hexdigest()
        return Claim(values, replay_key=f"tencent:{digest}", request=request)

    def build_request(self, claim: Claim) -> ProviderRequest:
        document: dict[str, Any] = {
            "CaptchaType": CAPTCHA_TYPE,
            "Ticket": claim.values["ticket"],
            "Randstr": claim.values["randstr"],
            "CaptchaAppId": self.captcha_app_id,  # a JSON integer: Tencent refuses a string
            "AppSecretKey": self._app_secret_key,
        }
        address = client_ip(claim.request.client_host)
        if address is not None:
            # Required by Tencent; without a known client address (a unix socket and no
            # client_ip=) Tencent's MissingParameter says so, at WARNING.
            document["UserIp"] = address
        body = json.dumps(document, separators=(",", ":")).encode()
        timestamp = int(self._clock())
        signature = sign(
            secret_id=self.secret_id,
            secret_key=self._secret_key,
            service=SERVICE,
            timestamp=timestamp,
            headers={"content-type": CONTENT_TYPE, "host": self._host},
            payload=body,
            path=self._path,
            query=self._query,
        )
        headers = (
            ("host", self._host),
            ("content-type", CONTENT_TYPE),
            ("x-tc-action", ACTION),
            ("x-tc-version", VERSION),
            ("x-tc-timestamp", str(timestamp)),
            ("authorization", signature.authorization),
        )
        return ProviderRequest("POST", self.endpoint, headers, body)

    def read_document(
        self, claim: Claim, body: dict[str, Any], response: ProviderResponse
    ) -> Verdict | ProviderFailure:
        answer = body.get("Response")
        if not isinstance(answer, dict):
            return ProviderFailure(f"unexpected answer (HTTP {response.status})")
        request_id = short_text(answer.get("RequestId"), 64) or None
        error = answer.get("Error")
        if error is not None:  # whatever the HTTP status: Tencent answers 200 with it
            raw = error.get("Code") if isinstance(error, dict) else None
            code = short_text(raw, 64) or None
            reason = f"tencent {code or 'error'}"
            details = {"code": code, "request_id": request_id}
            return TENCENT.sort(code, provider=self.name, reason=reason, details=details)
        captcha_code = answer.get("CaptchaCode")
        if isinstance(captcha_code, bool) or not isinstance(captcha_code, int):
            return ProviderFailure(f"answer without a CaptchaCode (HTTP {response.status})")
        return self._judge(claim, captcha_code, answer, request_id)

    def _judge(
        self, claim: Claim, captcha_code: int, answer: Mapping[str, Any], request_id: str | None
    ) -> Verdict | ProviderFailure:
        evil = answer.get("EvilLevel")
        details: dict[str, Any] = {
            "captcha_code": captcha_code,
            "evil_level": evil if isinstance(evil, int) and not isinstance(evil, bool) else None,
            "request_id": request_id,
        }
        disaster = claim.values["ticket"].startswith(DISASTER_PREFIX)
        if disaster:
            details["disaster_ticket"] = True
        if captcha_code == 1:
            if disaster:
                # Tencent answers 21 for these. Anyone can make one, so a pass is refused, and
                # never a failure: that would fall back, which is a pass by another name.
                return self.rejected("tencent: a trerror_ disaster ticket never passes", details)
            if details["evil_level"] == 100 and self.refuse_evil:
                return self.rejected("tencent: EvilLevel 100 (judged malicious)", details)
            return self.passed("ok", details)
        code = str(captcha_code)
        meaning = CAPTCHA_MESSAGES.get(code) or short_text(answer.get("CaptchaMsg")) or "refused"
        if disaster and captcha_code == 21:
            meaning = "a trerror_ disaster ticket (the widget's script did not load)"
        return TENCENT_CAPTCHA.sort(
            code, provider=self.name, reason=f"tencent {code}: {meaning}", details=details
        )


__all__ = [
    "ACTION",
    "ALGORITHM",
    "CONTENT_TYPE",
    "DISASTER_PREFIX",
    "ENDPOINT",
    "INTL_ENDPOINT",
    "SERVICE",
    "VERSION",
    "Signature",
    "TencentCaptcha",
    "app_id",
    "endpoint_for",
    "sign",
    "utc_date",
]
