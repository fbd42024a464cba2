"""Alibaba Cloud CAPTCHA 2.0 second verification: ``VerifyIntelligentCaptcha`` (2023-03-05).

An RPC-style OpenAPI call signed with an AccessKey pair (signature V3, ``ACS3-HMAC-SHA256``),
written here with ``hmac`` and ``hashlib`` so no vendor SDK is needed at run time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .._breaker import CircuitBreaker
from .._fields import FieldError, Fields
from .._verdict import Fault, Hint, Note, ProviderFailure, Verdict
from ._base import (
    DEFAULT_TIMEOUT,
    Claim,
    ClientRequest,
    Provider,
    ProviderRequest,
    ProviderResponse,
    matching,
    short_text,
)
from ._faults import (
    ALIYUN,
    ALIYUN_AUTH_REFUSED,
    ALIYUN_OPERATOR_STATUSES,
    ALIYUN_SCENE_CODES,
    ALIYUN_VERIFY,
)
from ._wire import host_header

ACTION = "VerifyIntelligentCaptcha"
VERSION = "2023-03-05"
ALGORITHM = "ACS3-HMAC-SHA256"

ENDPOINTS = {
    "cn": "https://captcha.cn-shanghai.aliyuncs.com/",
    "sgp": "https://captcha.ap-southeast-1.aliyuncs.com/",
}

# The widget's parameter is a JSON object of ids and base64 data; the bound is generous.
VERIFY_PARAM = re.compile(r"[\x20-\x7e]{1,16384}")
_SCENE_ID = re.compile(r"[0-9A-Za-z_\-]{1,64}")

VERIFY_CODES = {
    "F001": "verification failed",
    "F002": "parameter empty",
    "F003": "parameter malformed",
    "F004": "test mode is on in the console",
    "F005": "scene id does not exist",
    "F006": "scene id is not this account's",
    "F007": "verification timed out",
    "F008": "already verified",
    "F009": "virtual device",
    "F010": "too many requests from this IP",
    "F011": "too many requests from this device",
    "F012": "scene id mismatch",
    "F013": "parameter incomplete",
}

# The bins of Alibaba's codes are in the one fault table (providers/_faults.py).
OPERATOR_CODES = tuple(sorted(ALIYUN.codes(Fault.OPERATOR)))
PROVIDER_CODES = tuple(sorted(ALIYUN.codes(Fault.PROVIDER)))
PARAMETER_CODES = tuple(sorted(ALIYUN.codes(Fault.USER)))


# Signature V3.


def percent_encode(text: str) -> str:
    """RFC 3986: everything but ``A-Z a-z 0-9 - _ . ~`` is %XX (space %20, ``*`` %2A)."""
    return quote(text, safe="~")


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((percent_encode(k), percent_encode(v)) for k, v in params)
    return "&".join(f"{k}={v}" for k, v in pairs)


@dataclass(frozen=True)
class Signature:
    canonical_request: str
    string_to_sign: str
    signed_headers: str
    signature: str
    authorization: str


def sign(
    *,
    access_key_id: str,
    access_key_secret: str,
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_hash: str,
) -> Signature:
    """Sign a request with V3. ``headers`` are the headers to sign (``host``, ``content-type``,
    every ``x-acs-*``); ``payload_hash`` is the lowercase hex SHA-256 of the body."""
    canonical = {name.lower(): value.strip() for name, value in headers.items()}
    names = sorted(canonical)
    signed_headers = ";".join(names)
    canonical_request = "\n".join(
        [
            method.upper(),
            path or "/",
            canonical_query(query),
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            signed_headers,
            payload_hash,
        ]
    )
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    string_to_sign = f"{ALGORITHM}\n{digest}"
    signature = hmac.new(
        access_key_secret.encode(), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={signed_headers},Signature={signature}"
    )
    return Signature(canonical_request, string_to_sign, signed_headers, signature, authorization)


def acs_date(moment: float) -> str:
    """``x-acs-date``: ISO 8601 UTC to the second."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_PREFIX = re.compile(r"[0-9A-Za-z_-]{1,64}")


class AliyunCaptcha(Provider):
    """Alibaba Cloud CAPTCHA 2.0. ``region`` ``"cn"`` (mainland, Shanghai) or ``"sgp"``
    (outside the mainland, Singapore) picks the endpoint; ``endpoint`` overrides it. Set
    ``scene_id`` so a tampered page cannot switch the check to a laxer scene."""

    name: ClassVar[str] = "aliyun"

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        scene_id: str | None = None,
        region: str = "cn",
        endpoint: str | None = None,
        field: str = "captchaVerifyParam",
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
        clock: Callable[[], float] = time.time,
        prefix: str | None = None,
    ) -> None:
        if prefix is not None and (not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix)):
            raise ValueError("AliyunCaptcha: prefix must be the console's identity prefix, or None")
        #: The account's identity prefix from the console, which the page's widget needs
        #: (``window.AliyunCaptchaConfig.prefix``); the verification call does not use it.
        self.prefix = prefix
        if not isinstance(access_key_id, str) or not re.fullmatch(r"[\x21-\x7e]+", access_key_id):
            raise ValueError("AliyunCaptcha: access_key_id must be the AccessKey ID")
        if not isinstance(access_key_secret, str) or not access_key_secret:
            raise ValueError("AliyunCaptcha: access_key_secret must be the AccessKey secret")
        if scene_id is not None and (
            not isinstance(scene_id, str) or not _SCENE_ID.fullmatch(scene_id)
        ):
            raise ValueError("AliyunCaptcha: scene_id must be the console's scene id, or None")
        if region not in ENDPOINTS:
            raise ValueError(f"AliyunCaptcha: region must be one of {', '.join(ENDPOINTS)}")
        if not isinstance(field, str) or not field:
            raise ValueError("AliyunCaptcha: field must be a field name")
        super().__init__(endpoint=endpoint or ENDPOINTS[region], timeout=timeout, breaker=breaker)
        parts = urlsplit(self.endpoint)
        self._host = host_header(self.endpoint)
        self._path = unquote(parts.path) or "/"
        self._query = parse_qsl(parts.query, keep_blank_values=True)
        self.access_key_id = access_key_id
        self._access_key_secret = access_key_secret
        self.scene_id = scene_id
        self.region = region
        self.field = field
        self._clock = clock

    def check(self, fields: Fields, request: ClientRequest) -> Claim:
        param = matching(VERIFY_PARAM, self.field, fields.one(self.field))
        try:
            document = json.loads(param)
        except (ValueError, RecursionError):
            raise FieldError(f"malformed {self.field}") from None
        if not isinstance(document, dict):
            raise FieldError(f"malformed {self.field}")
        scene = document.get("sceneId")
        if self.scene_id is not None and scene is not None and scene != self.scene_id:
            raise FieldError(f"{self.field} is for another scene")
        # The replay key is the captcha's own id, not the text: the same parameter re-spaced
        # or with its keys reordered is the same captcha, and must not fall back twice.
        certify_id = document.get("certifyId")
        if isinstance(certify_id, str) and certify_id:
            identity = f"certifyId:{certify_id}"
        else:
            identity = json.dumps(document, sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(identity.encode()).hexdigest()
        return Claim({"CaptchaVerifyParam": param}, replay_key=f"aliyun:{digest}", request=request)

    def build_request(self, claim: Claim) -> ProviderRequest:
        form = [("CaptchaVerifyParam", claim.values["CaptchaVerifyParam"])]
        if self.scene_id is not None:
            form.append(("SceneId", self.scene_id))
        body = urlencode(form, quote_via=quote).encode()
        payload_hash = hashlib.sha256(body).hexdigest()
        signed = {
            "content-type": "application/x-www-form-urlencoded",
            "x-acs-action": ACTION,
            "x-acs-version": VERSION,
            "x-acs-date": acs_date(self._clock()),
            "x-acs-signature-nonce": secrets.token_hex(16),
            "x-acs-content-sha256": payload_hash,
        }
        # The Host header is ours, sent as signed, so no client can spell it differently.
        signature = sign(
            access_key_id=self.access_key_id,
            access_key_secret=self._access_key_secret,
            method="POST",
            path=self._path,
            query=self._query,
            headers={"host": self._host, **signed},
            payload_hash=payload_hash,
        )
        headers = (
            ("host", self._host),
            *signed.items(),
            ("accept", "application/json"),
            ("authorization", signature.authorization),
        )
        return ProviderRequest("POST", self.endpoint, headers, body)

    def read_document(
        self, claim: Claim, body: dict[str, Any], response: ProviderResponse
    ) -> Verdict | ProviderFailure:
        result = body.get("Result")
        if response.status == 200 and isinstance(result, dict):
            verify_result = result.get("VerifyResult")
            if isinstance(verify_result, bool):
                return self._judge(verify_result, result.get("VerifyCode"), body)
        code = short_text(body.get("Code"), 64) or None
        reason = f"aliyun {code or 'error'} (HTTP {response.status})"
        entry = ALIYUN.lookup(code)
        if entry is ALIYUN.default and response.status in ALIYUN_OPERATOR_STATUSES:
            entry = ALIYUN_AUTH_REFUSED
        return ALIYUN.sort(
            code, provider=self.name, reason=reason, details={"code": code}, entry=entry
        )

    def _judge(
        self, verify_result: bool, raw_code: object, body: Mapping[str, Any]
    ) -> Verdict | ProviderFailure:
        code = short_text(raw_code, 16)
        details: dict[str, Any] = {
            "verify_code": code or None,
            "request_id": short_text(body.get("RequestId"), 64) or None,
        }
        meaning = VERIFY_CODES.get(code)
        reason = f"aliyun {code}: {meaning}" if meaning else f"aliyun {code or '?'}"
        if verify_result and not code.startswith("F"):
            return self.passed(f"aliyun {code}" if code else "ok", details)
        if verify_result:
            return ProviderFailure(f"inconsistent answer: VerifyResult true with {code}")
        pinned = self.scene_id is not None
        if code in ALIYUN_SCENE_CODES and pinned:
            # We sent SceneId and checked that the client's parameter names the same scene:
            # the scene id in our configuration is what Alibaba does not know.
            return ProviderFailure(reason, Fault.OPERATOR, code)
        verdict = ALIYUN_VERIFY.sort(code, provider=self.name, reason=reason, details=details)
        hint = verdict.note.hint if isinstance(verdict, Verdict) else None
        if code == "F004" and pinned and hint is not None:
            # Test mode of the scene we pinned is ours to fix, not a client's doing: ERROR.
            verdict = self.rejected(reason, details, note=Note(Hint.misconfiguration(hint.text)))
        return verdict


__all__ = [
    "ACTION",
    "ALGORITHM",
    "ENDPOINTS",
    "VERSION",
    "AliyunCaptcha",
    "Signature",
    "acs_date",
    "canonical_query",
    "percent_encode",
    "sign",
]
