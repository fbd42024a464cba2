"""A Friendly Captcha siteverify server (v2 at ``/api/v2/captcha/siteverify``, v1 at
``/api/v1/siteverify``) that judges like the vendor's: the API key (v2's ``X-API-Key``, v1's
``secret``), the site keys registered with it, and the tokens its widget issued, each verifying
once within its lifetime."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import httpx

from ._emulator import Emulator

#: HTTP status of each v2 error code, as the vendor's SDK fixture has them.
V2_STATUS = {
    "auth_required": 401,
    "auth_invalid": 401,
    "sitekey_invalid": 400,
    "response_missing": 400,
    "bad_request": 400,
    "response_invalid": 200,
    "response_timeout": 200,
    "response_duplicate": 200,
}
V1_STATUS = {
    "secret_missing": 400,
    "secret_invalid": 401,
    "solution_missing": 400,
    "bad_request": 400,
    "solution_invalid": 200,
    "solution_timeout_or_duplicate": 200,
}


@dataclass
class _Token:
    sitekey: str
    origin: str
    issued_at: float
    used: bool = False


class FriendlyCaptchaEmulator(Emulator):
    """One account: ``api_key`` (v1 calls it the secret) and its site keys (``sitekeys``).

    ``issue()`` plays the widget and returns ``{"frc-captcha-response": token}`` (``version=1``:
    ``{"frc-captcha-solution": token}``); ``force_error = "response_invalid"`` answers that code
    (v1's codes for v1 requests).
    """

    def __init__(
        self,
        api_key: str = "A1EMULATEDFRIENDLYCAPTCHAAPIKEY0",
        sitekey: str = "FCMEMULATEDSITEKEY00000",
        *,
        origin: str = "http://localhost",
        token_lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.sitekey = sitekey
        self.sitekeys: set[str] = {sitekey}
        self.origin = origin
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.force_error: str | None = None
        self._tokens: dict[str, _Token] = {}

    def token(self, *, sitekey: str | None = None) -> str:
        token = secrets.token_urlsafe(48) + "." + secrets.token_urlsafe(160)
        with self._lock:
            self._tokens[token] = _Token(sitekey or self.sitekey, self.origin, self.clock())
        return token

    def issue(self, *, sitekey: str | None = None, version: int = 2) -> dict[str, str]:
        field = "frc-captcha-response" if version == 2 else "frc-captcha-solution"
        return {field: self.token(sitekey=sitekey)}

    def answer(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.rstrip("/").endswith("/api/v1/siteverify"):
            return self._v1(request)
        return self._v2(request)

    def _v2(self, request: httpx.Request) -> httpx.Response:
        if self.force_error:
            return _v2_error(self.force_error)
        key = request.headers.get("x-api-key")
        if not key:
            return _v2_error("auth_required")
        if key != self.api_key:
            return _v2_error("auth_invalid")
        values = _values(request)
        if values is None:
            return _v2_error("bad_request")
        response = values.get("response")
        if not isinstance(response, str) or not response:
            return _v2_error("response_missing")
        sitekey = values.get("sitekey")
        if sitekey is not None and sitekey not in self.sitekeys:
            return _v2_error("sitekey_invalid")
        verdict = self._judge(response, sitekey)
        if verdict is not None:
            code = {"unknown": "response_invalid", "expired": "response_timeout"}.get(verdict)
            return _v2_error(code or "response_duplicate")
        token = self._tokens[response]
        data = {
            "event_id": f"ev_{uuid.uuid4()}",
            "challenge": {"timestamp": _timestamp(token.issued_at), "origin": token.origin},
            "risk_intelligence": None,
        }
        return httpx.Response(200, json={"success": True, "data": data})

    def _v1(self, request: httpx.Request) -> httpx.Response:
        if self.force_error:
            return _v1_error(self.force_error)
        values = _values(request)
        if values is None:
            return _v1_error("bad_request")
        secret = values.get("secret")
        if not secret:
            return _v1_error("secret_missing")
        if secret != self.api_key:
            return _v1_error("secret_invalid")
        solution = values.get("solution")
        if not isinstance(solution, str) or not solution:
            return _v1_error("solution_missing")
        verdict = self._judge(solution, values.get("sitekey"))
        if verdict == "unknown":
            return _v1_error("solution_invalid")
        if verdict is not None:
            return _v1_error("solution_timeout_or_duplicate")
        return httpx.Response(200, json={"success": True})

    def _judge(self, response: str, sitekey: str | None) -> str | None:
        """None for a fresh token (now spent), else ``unknown``, ``expired`` or ``used``."""
        token = self._tokens.get(response)
        if token is None or (sitekey is not None and sitekey != token.sitekey):
            return "unknown"
        if self.clock() - token.issued_at > self.token_lifetime:
            return "expired"
        if token.used:
            return "used"
        token.used = True
        return None


def _values(request: httpx.Request) -> dict[str, Any] | None:
    """The request's fields from a JSON or form body (the vendor takes both)."""
    if "json" in request.headers.get("content-type", ""):
        try:
            document = json.loads(request.content)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
    return dict(parse_qsl(request.content.decode("utf-8", "replace"), keep_blank_values=True))


def _v2_error(code: str) -> httpx.Response:
    body = {"success": False, "error": {"error_code": code, "detail": ""}}
    return httpx.Response(V2_STATUS.get(code, 400), json=body)


def _v1_error(code: str) -> httpx.Response:
    body = {"success": False, "errors": [code]}
    return httpx.Response(V1_STATUS.get(code, 400), json=body)


def _timestamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
