"""GeeTest CAPTCHA v4 second verification (``/validate``), in every region."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit, urlunsplit

from .._breaker import CircuitBreaker
from .._fields import Fields
from .._verdict import NO_NOTE, Fault, Hint, Note, ProviderFailure, Verdict
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
from ._faults import GEETEST

ENDPOINTS: dict[str | None, str] = {
    None: "https://gcaptcha4.geetest.com/validate",
    "cn": "https://gcaptcha4.geetest.com/validate",
    "global": "https://cap-global.geelabapi.com/validate",
    "eu": "https://cap-eu.geelabapi.com/validate",
    "na": "https://cap-na.geelabapi.com/validate",
}

CLIENT_FIELDS = ("lot_number", "captcha_output", "pass_token", "gen_time")

# Local shape checks. The bounds are generous (GeeTest's values are far shorter) but keep
# junk, whitespace and control characters from ever reaching the vendor.
_SHAPES: dict[str, re.Pattern[str]] = {
    "lot_number": re.compile(r"[0-9A-Za-z]{1,128}"),
    "captcha_output": re.compile(r"[\x21-\x7e]{1,4096}"),
    "pass_token": re.compile(r"[0-9A-Za-z_\-]{1,256}"),
    "gen_time": re.compile(r"[0-9]{1,13}"),  # digits only, else GeeTest answers -50005
}
_CAPTCHA_ID = re.compile(r"[0-9a-zA-Z]{1,64}")

# The bins of GeeTest's error codes are in the one fault table (providers/_faults.py).
USER_ERRORS = GEETEST.codes(Fault.USER)
OPERATOR_ERRORS = GEETEST.codes(Fault.OPERATOR)


def sign_token(captcha_key: str, lot_number: str) -> str:
    """HMAC-SHA256 of the lot number under the captcha key, lowercase hex (GeeTest's rule)."""
    return hmac.new(captcha_key.encode(), lot_number.encode(), hashlib.sha256).hexdigest()


class GeeTest(Provider):
    """GeeTest v4. ``region`` is ``"global"``, ``"eu"`` or ``"na"`` for the geelab endpoints,
    None (or ``"cn"``) for mainland China; ``endpoint`` overrides both."""

    name: ClassVar[str] = "geetest"

    def __init__(
        self,
        captcha_id: str,
        captcha_key: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not isinstance(captcha_id, str) or not _CAPTCHA_ID.fullmatch(captcha_id):
            raise ValueError("GeeTest: captcha_id must be the console's alphanumeric id")
        if not isinstance(captcha_key, str) or not captcha_key:
            raise ValueError("GeeTest: captcha_key must be the console's key")
        if region not in ENDPOINTS:
            regions = ", ".join(r for r in ENDPOINTS if r)
            raise ValueError(f"GeeTest: unknown region {region!r} (known: {regions})")
        super().__init__(endpoint=endpoint or ENDPOINTS[region], timeout=timeout, breaker=breaker)
        self.captcha_id = captcha_id
        self._captcha_key = captcha_key
        parts = urlsplit(self.endpoint)
        query = "&".join(q for q in (parts.query, urlencode({"captcha_id": captcha_id})) if q)
        self._url = urlunsplit(parts._replace(query=query))

    def check(self, fields: Fields, request: ClientRequest) -> Claim:
        values = {name: matching(_SHAPES[name], name, fields.one(name)) for name in CLIENT_FIELDS}
        # Lot numbers are hex: "ABC..." is the same lot as "abc..." to a replay guard, or one
        # captured lot could be let through again in every mix of letter cases.
        lot = values["lot_number"].lower()
        return Claim(values, replay_key=f"geetest:{lot}", request=request)

    def build_request(self, claim: Claim) -> ProviderRequest:
        # Exactly what GeeTest's own demo sends: captcha_id in the query (so a failed call can
        # be found in their logs), the rest as a form.
        data = dict(claim.values)
        data["sign_token"] = sign_token(self._captcha_key, claim.values["lot_number"])
        return form_post(self._url, data)

    def read_document(
        self, claim: Claim, body: dict[str, Any], response: ProviderResponse
    ) -> Verdict | ProviderFailure:
        status = body.get("status")
        if status == "success":
            return self._judge(body)
        if status == "error":
            code = short_text(body.get("code", ""), 16)
            reason = f"geetest error {code or '?'}: {short_text(body.get('msg'))}"
            return GEETEST.sort(code, provider=self.name, reason=reason, details={"code": code})
        return ProviderFailure(f"unexpected answer (HTTP {response.status})")

    def _judge(self, body: dict[str, Any]) -> Verdict | ProviderFailure:
        args = body.get("captcha_args")
        details: dict[str, Any] = {"captcha_args": args if isinstance(args, dict) else {}}
        result = body.get("result")
        if result == "success":
            return self.passed("ok", details)
        if result == "fail":
            reason = short_text(body.get("reason")) or "fail"
            note = NO_NOTE
            if "sign_token" in reason:
                # We compute sign_token, so GeeTest refusing it means our captcha_key is wrong.
                # Still the client's 403: whether a request passes must never hinge on a
                # message an attacker might provoke; but the operator must hear of it.
                # No client can cause it: we sign the lot the client sent with our own key.
                hint = Hint.misconfiguration("GeeTest refused sign_token: check captcha_key")
                note = Note(hint)
            return self.rejected(f"geetest: {reason}", details, note=note)
        return ProviderFailure(f"unexpected result {short_text(result)!r}")
