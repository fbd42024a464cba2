"""The siteverify family: reCAPTCHA (v2 and v3), hCaptcha and Turnstile.

The three vendors speak one protocol (a form with ``secret``, ``response`` and ``remoteip``; a
JSON answer with ``success``, ``hostname`` and ``error-codes``), so one class does the work and
three small subclasses add each vendor's field name, endpoint and extra checks.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from .._breaker import CircuitBreaker
from .._check import seconds_arg
from .._fields import Fields
from .._verdict import Fault, Hint, Note, ProviderFailure, Verdict
from ._base import (
    DEFAULT_TIMEOUT,
    Claim,
    ClientRequest,
    Provider,
    ProviderRequest,
    ProviderResponse,
    form_post,
    matching,
)
from ._base import client_ip as _ip
from ._faults import SITEVERIFY

RECAPTCHA_ENDPOINT = "https://www.google.com/recaptcha/api/siteverify"
HCAPTCHA_ENDPOINT = "https://api.hcaptcha.com/siteverify"
TURNSTILE_ENDPOINT = "https://challenges.cloudflare.com/turnstile/v0/siteverify"

# Real tokens are up to about 2 KB of URL-safe text; anything with whitespace, control
# characters or beyond this bound is junk that no vendor needs to see.
TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")

# The bins of the error codes are in the one fault table (providers/_faults.py).
OPERATOR_CODES = SITEVERIFY.codes(Fault.OPERATOR)
PROVIDER_CODES = SITEVERIFY.codes(Fault.PROVIDER)


class Siteverify(Provider):
    """The shared siteverify client. Use ReCaptcha, HCaptcha or Turnstile."""

    name: ClassVar[str] = "siteverify"
    default_endpoint: ClassVar[str] = ""
    default_field: ClassVar[str] = ""

    def __init__(
        self,
        secret: str,
        *,
        hostnames: Iterable[str] | None = None,
        field: str | None = None,
        endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        label = type(self).__name__
        if not isinstance(secret, str) or not secret.strip():
            raise ValueError(f"{label}: secret must be the vendor's secret key")
        field = self.default_field if field is None else field
        if not isinstance(field, str) or not field:
            raise ValueError(f"{label}: field must be a non-empty field name")
        super().__init__(
            endpoint=endpoint or self.default_endpoint, timeout=timeout, breaker=breaker
        )
        self._secret = secret
        self._url = self.endpoint
        self.field = field
        self.hostnames = _names(hostnames, label, "hostnames")

    def check(self, fields: Fields, request: ClientRequest) -> Claim:
        token = matching(TOKEN, self.field, fields.one(self.field))
        values = {"response": token}
        remote_ip = _ip(request.client_host)
        if remote_ip:
            values["remoteip"] = remote_ip
        values.update(self._claim_extras())
        digest = hashlib.sha256(token.encode()).hexdigest()
        return Claim(values, replay_key=f"{self.name}:{digest}", request=request)

    def build_request(self, claim: Claim) -> ProviderRequest:
        data = {"secret": self._secret, **claim.values, **self._request_extras()}
        return form_post(self._url, data)

    def read_document(
        self, claim: Claim, body: dict[str, Any], response: ProviderResponse
    ) -> Verdict | ProviderFailure:
        success = body.get("success")
        if success is True:
            return self._judge(body)
        if success is False:
            return self._refusal(_codes(body.get("error-codes")))
        return ProviderFailure(f"unexpected answer (HTTP {response.status})")

    # What subclasses add.

    def _claim_extras(self) -> dict[str, str]:
        """Values fixed once per request (so a retry would send the same)."""
        return {}

    def _request_extras(self) -> dict[str, str]:
        return {}

    def _checks(self, body: Mapping[str, Any], details: dict[str, Any]) -> Verdict | None:
        """A rejected verdict if a vendor-specific check fails, else None."""
        return None

    # The common judgement.

    def _judge(self, body: Mapping[str, Any]) -> Verdict:
        hostname = body.get("hostname")
        details: dict[str, Any] = {
            "hostname": hostname if isinstance(hostname, str) else None,
            "challenge_ts": _text(body.get("challenge_ts"), 64) or None,
        }
        allowed = self.hostnames
        if allowed is not None and (
            not isinstance(hostname, str) or hostname.lower() not in allowed
        ):
            return self.rejected(f"{self.name}: hostname not allowed", details)
        refused = self._checks(body, details)
        return refused if refused is not None else self.passed("ok", details)

    def _refusal(self, codes: list[str]) -> Verdict | ProviderFailure:
        listed = ", ".join(codes) or "no error code"
        code, entry = SITEVERIFY.decisive(codes)
        details = {"error_codes": codes}
        return SITEVERIFY.sort(
            code, provider=self.name, reason=f"{self.name}: {listed}", details=details, entry=entry
        )


class ReCaptcha(Siteverify):
    """Google reCAPTCHA v2 or v3.

    For v3 set ``min_score`` (0.0 to 1.0; 1.0 is very likely a human) and, if you like, the
    ``action`` (or actions) the page declared. A v3 answer below ``min_score``, with another
    action, or without a score at all is the client's 403.
    """

    name: ClassVar[str] = "recaptcha"
    default_endpoint: ClassVar[str] = RECAPTCHA_ENDPOINT
    default_field: ClassVar[str] = "g-recaptcha-response"

    def __init__(
        self,
        secret: str,
        *,
        min_score: float | None = None,
        action: str | Iterable[str] | None = None,
        hostnames: Iterable[str] | None = None,
        field: str | None = None,
        endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
        sitekey: str | None = None,
    ) -> None:
        super().__init__(
            secret,
            hostnames=hostnames,
            field=field,
            endpoint=endpoint,
            timeout=timeout,
            breaker=breaker,
        )
        #: The site key the page's widget is rendered with (captcha_guard.widgets); only the
        #: page uses it: Google's siteverify takes none.
        self.sitekey = _sitekey(sitekey, "ReCaptcha")
        self.min_score = _score(min_score, "ReCaptcha", "min_score")
        self.actions = _actions(action, "ReCaptcha")

    def _checks(self, body: Mapping[str, Any], details: dict[str, Any]) -> Verdict | None:
        score = _number(body.get("score"))
        details["score"] = score
        details["action"] = _text(body.get("action"), 100) or None
        if self.min_score is not None:
            if score is None:
                # success: true means the token is valid for our secret, so its kind (v2 or
                # v3) is our key's, not the client's choice: ours to fix.
                hint = "min_score is set but reCAPTCHA sent no score: is this a v2 secret?"
                return self.rejected(
                    "recaptcha: no score", details, note=Note(Hint.misconfiguration(hint))
                )
            if score < self.min_score:
                return self.rejected(f"recaptcha: score {score} below {self.min_score}", details)
        return _action_check(self, body, details, self.actions)


class HCaptcha(Siteverify):
    """hCaptcha. ``sitekey`` pins the site key the token must belong to (sent to hCaptcha).

    ``max_score`` needs hCaptcha Enterprise, whose score runs the other way from reCAPTCHA's:
    0.0 is safe, 1.0 is a threat. Over ``max_score``, or no score at all, is the client's 403.
    """

    name: ClassVar[str] = "hcaptcha"
    default_endpoint: ClassVar[str] = HCAPTCHA_ENDPOINT
    default_field: ClassVar[str] = "h-captcha-response"

    def __init__(
        self,
        secret: str,
        *,
        sitekey: str | None = None,
        max_score: float | None = None,
        hostnames: Iterable[str] | None = None,
        field: str | None = None,
        endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        super().__init__(
            secret,
            hostnames=hostnames,
            field=field,
            endpoint=endpoint,
            timeout=timeout,
            breaker=breaker,
        )
        if sitekey is not None and (not isinstance(sitekey, str) or not sitekey.strip()):
            raise ValueError("HCaptcha: sitekey must be the site key, or None")
        self.sitekey = sitekey
        self.max_score = _score(max_score, "HCaptcha", "max_score")

    def _request_extras(self) -> dict[str, str]:
        return {"sitekey": self.sitekey} if self.sitekey else {}

    def _checks(self, body: Mapping[str, Any], details: dict[str, Any]) -> Verdict | None:
        score = _number(body.get("score"))
        details["score"] = score
        reasons = body.get("score_reason")
        if isinstance(reasons, list):
            details["score_reason"] = [_text(r, 100) for r in reasons[:20]]
        if self.max_score is not None:
            if score is None:
                # As for reCAPTCHA: a valid token's score depends on our account, not the client.
                hint = "max_score is set but hCaptcha sent no score: it needs hCaptcha Enterprise"
                return self.rejected(
                    "hcaptcha: no score", details, note=Note(Hint.misconfiguration(hint))
                )
            if score > self.max_score:
                return self.rejected(f"hcaptcha: score {score} above {self.max_score}", details)
        return None


class Turnstile(Siteverify):
    """Cloudflare Turnstile. Each verification carries a fresh ``idempotency_key``, so a retry
    of the same request verifies the same token again instead of finding it spent."""

    name: ClassVar[str] = "turnstile"
    default_endpoint: ClassVar[str] = TURNSTILE_ENDPOINT
    default_field: ClassVar[str] = "cf-turnstile-response"

    def __init__(
        self,
        secret: str,
        *,
        action: str | Iterable[str] | None = None,
        hostnames: Iterable[str] | None = None,
        field: str | None = None,
        endpoint: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
        sitekey: str | None = None,
    ) -> None:
        super().__init__(
            secret,
            hostnames=hostnames,
            field=field,
            endpoint=endpoint,
            timeout=timeout,
            breaker=breaker,
        )
        #: The site key the page's widget is rendered with (captcha_guard.widgets); only the
        #: page uses it: Turnstile's siteverify takes none.
        self.sitekey = _sitekey(sitekey, "Turnstile")
        self.actions = _actions(action, "Turnstile")

    def _claim_extras(self) -> dict[str, str]:
        return {"idempotency_key": str(uuid.uuid4())}

    def _checks(self, body: Mapping[str, Any], details: dict[str, Any]) -> Verdict | None:
        details["action"] = _text(body.get("action"), 100) or None
        details["cdata"] = _text(body.get("cdata"), 255) or None
        return _action_check(self, body, details, self.actions)


def _sitekey(value: str | None, label: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{label}: sitekey must be the site key, or None")
    return value


def _action_check(
    provider: Provider,
    body: Mapping[str, Any],
    details: dict[str, Any],
    actions: frozenset[str] | None,
) -> Verdict | None:
    if actions is None:
        return None
    action = body.get("action")
    if not isinstance(action, str) or action not in actions:
        return provider.rejected(f"{provider.name}: unexpected action", details)
    return None


def _codes(value: object) -> list[str]:
    """The vendor's error codes, bounded and safe to log."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [_text(code, 64) for code in value[:8] if isinstance(code, str)]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: object, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(c if c.isprintable() else " " for c in value[:limit])


def _score(value: float | None, label: str, name: str) -> float | None:
    if value is None:
        return None
    return seconds_arg(value, name, maximum=1.0, owner=label, unit="")


def _names(values: Iterable[str] | None, label: str, name: str) -> frozenset[str] | None:
    if values is None:
        return None
    listed = [values] if isinstance(values, str) else list(values)
    if not listed or any(not isinstance(v, str) or not v for v in listed):
        raise ValueError(f"{label}: {name} must be non-empty strings")
    return frozenset(v.lower() for v in listed)


def _actions(value: str | Iterable[str] | None, label: str) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    actions = list(value)
    if not actions or any(not isinstance(a, str) or not a for a in actions):
        raise ValueError(f"{label}: action must be a non-empty string or strings")
    return frozenset(actions)


__all__ = ["HCaptcha", "ReCaptcha", "Siteverify", "Turnstile"]
