"""Cap (``tiagozip/cap``): verification against a Cap Standalone instance.

``POST <instance>/<site-key>/siteverify`` with JSON ``{"secret", "response"}``; the answer is
``{"success": true}`` or ``{"success": false, "error": "..."}``. Cap's HTTP statuses mix the
bins (404 is both "Invalid site key or secret" and "Token not found", 403 both a wrong secret and
"Token expired"), so the ``error`` text decides, through the one fault table (``CAP`` in
providers/_faults.py). A token is ``<site-key>:<id>:<secret>`` and verifies once.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, ClassVar

from .._breaker import CircuitBreaker
from .._fields import FieldError, Fields
from .._verdict import ProviderFailure, Verdict
from ._base import (
    DEFAULT_TIMEOUT,
    Claim,
    ClientRequest,
    Provider,
    ProviderRequest,
    ProviderResponse,
    short_text,
)
from ._faults import CAP

FIELD = "cap-token"
_SITE_KEY = re.compile(r"[0-9A-Za-z_-]{1,128}")
# Cap Standalone mints ``<site key>:<16 hex>:<30 hex>``; the bounds allow for other servers.
_TOKEN = re.compile(r"(?P<site_key>[0-9A-Za-z_-]{1,128}):[0-9A-Za-z_-]{1,256}:[0-9A-Za-z_-]{1,256}")


class Cap(Provider):
    """Cap Standalone. ``endpoint`` is the instance's base URL (``https://cap.example.com``);
    the widget's ``data-cap-api-endpoint`` is ``<endpoint>/<site_key>/``. The widget posts the
    token in ``cap-token``; a token of another site key is refused locally."""

    name: ClassVar[str] = "cap"

    def __init__(
        self,
        site_key: str,
        secret: str,
        *,
        endpoint: str,
        timeout: float = DEFAULT_TIMEOUT,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not isinstance(site_key, str) or not _SITE_KEY.fullmatch(site_key):
            raise ValueError("Cap: site_key must be the dashboard's site key")
        if not isinstance(secret, str) or not secret.strip():
            raise ValueError("Cap: secret must be the site key's secret (not the admin key)")
        if not isinstance(endpoint, str) or not endpoint:
            raise ValueError("Cap: endpoint must be the Cap Standalone instance's URL")
        base = endpoint.split("?", 1)[0].split("#", 1)[0].rstrip("/")
        super().__init__(endpoint=f"{base}/{site_key}/siteverify", timeout=timeout, breaker=breaker)
        self.site_key = site_key
        self._secret = secret
        self.instance = base

    def check(self, fields: Fields, request: ClientRequest) -> Claim:
        token = fields.one(FIELD)
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise FieldError(f"malformed {FIELD}")
        if match["site_key"] != self.site_key:
            # Cap answers this "Invalid site key or secret", as it answers our own wrong secret:
            # checked here, the vendor's answer is left to mean only the latter.
            raise FieldError(f"{FIELD} is for another site key")
        digest = hashlib.sha256(token.encode()).hexdigest()
        return Claim({"response": token}, replay_key=f"cap:{digest}", request=request)

    def build_request(self, claim: Claim) -> ProviderRequest:
        document = {"secret": self._secret, "response": claim.values["response"]}
        headers = (("content-type", "application/json"), ("accept", "application/json"))
        return ProviderRequest("POST", self.endpoint, headers, json.dumps(document).encode())

    def read_document(
        self, claim: Claim, body: dict[str, Any], response: ProviderResponse
    ) -> Verdict | ProviderFailure:
        success = body.get("success")
        if success is True and response.status == 200:
            return self.passed("ok")
        if success is not False:
            return ProviderFailure(f"unexpected answer (HTTP {response.status})")
        raw = body.get("error")
        code = short_text(raw, 80) if isinstance(raw, str) else None
        reason = f"cap: {code or 'no error'} (HTTP {response.status})"
        return CAP.sort(code or None, provider=self.name, reason=reason, details={"code": code})


__all__ = ["FIELD", "Cap"]
