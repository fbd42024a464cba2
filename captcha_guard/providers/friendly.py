"""Friendly Captcha siteverify: v2 (``X-API-Key``, the default) and v1 (``secret``).

The vendor's own advice, and its SDK conformance fixture in non-strict mode, accept a request
on any answer that is not a clear "no", a *missing* token included: a site that copied that lets
empty forms through. Here a missing or empty token is the client's 403 before any call, and every
other answer is sorted by the one fault table (``FRIENDLY`` in providers/_faults.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

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
    form_post,
    matching,
    short_text,
)
from ._faults import FRIENDLY

GLOBAL_ENDPOINT = "https://global.frcapi.com/api/v2/captcha/siteverify"
EU_ENDPOINT = "https://eu.frcapi.com/api/v2/captcha/siteverify"
V1_ENDPOINT = "https://api.friendlycaptcha.com/api/v1/siteverify"

V2_FIELD = "frc-captcha-response"
V1_FIELD = "frc-captcha-solution"

# The vendor bounds a response at 16 KB; no whitespace, control character or non-ASCII byte.
TOKEN = re.compile(r"[\x21-\x7e]{1,16384}")
_KEY = re.compile(r"[\x21-\x7e]{1,256}")


class FriendlyCaptcha(Provider):
    """Friendly Captcha. ``version=2`` (the default) verifies at ``GLOBAL_ENDPOINT`` with the
    ``X-API-Key`` header and reads the widget's ``frc-captcha-response``; pass
    ``endpoint=EU_ENDPOINT`` on an EU plan. ``version=1`` sends ``api_key`` as ``secret`` to
    the v1 API and reads ``frc-captcha-solution``. ``sitekey`` pins the site key the token
    must belong to (sent to the vendor)."""

    name: ClassVar[str] = "friendly-captcha"

    def __init__(
        self,
        api_key: str,
        *,
        sitekey: str | None = None,
        version: int = 2,
        endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not _KEY.fullmatch(api_key):
            raise ValueError("FriendlyCaptcha: api_key must be the API key (v1: the secret)")
        if sitekey is not None and (not isinstance(sitekey, str) or not _KEY.fullmatch(sitekey)):
            raise ValueError("FriendlyCaptcha: sitekey must be the site key, or None")
        if version not in (1, 2) or isinstance(version, bool):
            raise ValueError("FriendlyCaptcha: version must be 2 (siteverify v2) or 1")
        default = GLOBAL_ENDPOINT if version == 2 else V1_ENDPOINT
        super().__init__(endpoint=endpoint or default, timeout=timeout, breaker=breaker)
        self._api_key = api_key
        self.sitekey = sitekey
        self.version = version
        self.field = V2_FIELD if version == 2 else V1_FIELD

    def check(self, fields: Fields, request: ClientRequest) -> Claim:
        # Missing and empty are both refused here, whatever the vendor would answer.
        token = matching(TOKEN, self.field, fields.one(self.field))
        digest = hashlib.sha256(token.encode()).hexdigest()
        return Claim({"response": token}, replay_key=f"{self.name}:{digest}", request=request)

    def build_request(self, claim: Claim) -> ProviderRequest:
        token = claim.values["response"]
        if self.version == 1:
            data = {"solution": token, "secret": self._api_key}
            if self.sitekey:
                data["sitekey"] = self.sitekey
            return form_post(self.endpoint, data)
        document = {"response": token}
        if self.sitekey:
            document["sitekey"] = self.sitekey
        headers = (
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("x-api-key", self._api_key),
        )
        return ProviderRequest("POST", self.endpoint, headers, json.dumps(document).encode())

    def read_document(
        self, claim: Claim, body: dict[str, Any], response: ProviderResponse
    ) -> Verdict | ProviderFailure:
        success = body.get("success")
        if success is True and response.status == 200:
            return self.passed("ok", _details(body))
        if success is not False:
            return ProviderFailure(f"unexpected answer (HTTP {response.status})")
        if self.version == 1:
            errors = body.get("errors")
            codes = [short_text(c, 64) for c in errors[:8]] if isinstance(errors, list) else []
            code, entry = FRIENDLY.decisive(codes)
            reason = f"{self.name}: {', '.join(codes) or 'no error code'}"
            details = {"error_codes": codes}
            return FRIENDLY.sort(
                code, provider=self.name, reason=reason, details=details, entry=entry
            )
        error = body.get("error")
        raw = error.get("error_code") if isinstance(error, dict) else None
        code = short_text(raw, 64) or None
        reason = f"{self.name}: {code or 'no error code'} (HTTP {response.status})"
        return FRIENDLY.sort(code, provider=self.name, reason=reason, details={"code": code})


def _details(body: Mapping[str, Any]) -> dict[str, Any]:
    """What an app may want of a v2 pass: the event id, the challenge's time and origin, and
    the risk scores (never the rest of ``risk_intelligence``, which carries the client's
    address)."""
    data = body.get("data")
    data = data if isinstance(data, dict) else {}
    challenge = data.get("challenge")
    challenge = challenge if isinstance(challenge, dict) else {}
    details: dict[str, Any] = {
        "event_id": short_text(data.get("event_id"), 128) or None,
        "timestamp": short_text(challenge.get("timestamp"), 64) or None,
        "origin": short_text(challenge.get("origin"), 256) or None,
    }
    intelligence = data.get("risk_intelligence")
    scores = intelligence.get("risk_scores") if isinstance(intelligence, dict) else None
    if isinstance(scores, dict):
        details["risk_scores"] = {
            short_text(k, 32): v
            for k, v in list(scores.items())[:8]
            if isinstance(v, int) and not isinstance(v, bool)
        }
    return details


__all__ = [
    "EU_ENDPOINT",
    "GLOBAL_ENDPOINT",
    "TOKEN",
    "V1_ENDPOINT",
    "V1_FIELD",
    "V2_FIELD",
    "FriendlyCaptcha",
]
