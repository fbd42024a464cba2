"""reCAPTCHA, hCaptcha and Turnstile ``siteverify`` servers that judge like the vendors'.

Each emulator owns one secret and the site keys registered with it, issues tokens the way a
solved widget would (``issue()`` returns the client field, ``token()`` the bare token), and
answers a verification the way the vendor documents it: unknown, expired and spent tokens,
missing or wrong secrets, tokens from another site key, the vendors' public test keys, and any
error code you force with ``force_error``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx

from ._emulator import Emulator

RECAPTCHA_TEST_SECRET = "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe"
RECAPTCHA_TEST_SITEKEY = "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI"
HCAPTCHA_TEST_SECRET = "0x0000000000000000000000000000000000000000"
HCAPTCHA_TEST_SITEKEY = "10000000-ffff-ffff-ffff-000000000001"
HCAPTCHA_TEST_TOKEN = "10000000-aaaa-bbbb-cccc-000000000001"
TURNSTILE_TEST_SECRETS = {
    "1x0000000000000000000000000000000AA": "pass",
    "2x0000000000000000000000000000000AA": "fail",
    "3x0000000000000000000000000000000AA": "spent",
}
TURNSTILE_TEST_TOKEN = "XXXX.DUMMY.TOKEN.XXXX"


@dataclass
class _Token:
    sitekey: str
    hostname: str
    issued_at: float
    fields: dict[str, Any]
    used: bool = False
    idempotency_key: str | None = None
    answer: dict[str, Any] = field(default_factory=dict)


class SiteverifyEmulator(Emulator):
    """The common part of the three siteverify emulators."""

    vendor: ClassVar[str] = "siteverify"
    field: ClassVar[str] = "response"
    token_prefix: ClassVar[str] = ""
    default_lifetime: ClassVar[float] = 120.0
    unknown_code: ClassVar[str] = "invalid-input-response"
    expired_code: ClassVar[str] = "timeout-or-duplicate"
    duplicate_code: ClassVar[str] = "timeout-or-duplicate"

    def __init__(
        self,
        secret: str,
        sitekey: str,
        *,
        hostname: str = "localhost",
        token_lifetime: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.secret = secret
        self.sitekey = sitekey
        self.hostname = hostname
        self.token_lifetime = self.default_lifetime if token_lifetime is None else token_lifetime
        self.clock = clock
        #: secret -> the site keys registered with it. Add entries to emulate more sites.
        self.keys: dict[str, set[str]] = {secret: {sitekey}}
        #: Error codes every answer carries (``success: false``) while set, e.g.
        #: ``["internal-error"]``.
        self.force_error: list[str] | None = None
        self._tokens: dict[str, _Token] = {}

    def token(self, *, sitekey: str | None = None, hostname: str | None = None) -> str:
        """A fresh token, as the widget on ``hostname`` would hand the browser."""
        return self._mint(sitekey, hostname, {})

    def issue(self, *, sitekey: str | None = None, hostname: str | None = None) -> dict[str, str]:
        """The client field a form would post: ``{field: token}``."""
        return {self.field: self.token(sitekey=sitekey, hostname=hostname)}

    def _mint(self, sitekey: str | None, hostname: str | None, fields: dict[str, Any]) -> str:
        token = self.token_prefix + secrets.token_urlsafe(240)
        record = _Token(sitekey or self.sitekey, hostname or self.hostname, self.clock(), fields)
        with self._lock:
            self._tokens[token] = record
        return token

    def answer(self, request: httpx.Request) -> httpx.Response:
        form = _form(request)
        if self.force_error:
            return _refused(*self.force_error)
        secret = form.get("secret", "")
        response = form.get("response", "")
        if not secret:
            return _refused("missing-input-secret")
        special = self._test_keys(secret, response)
        if special is not None:
            return special
        if secret not in self.keys:
            return _refused("invalid-input-secret")
        if not response:
            return _refused("missing-input-response")
        token = self._tokens.get(response)
        if token is None:
            return self._unknown(response)
        refusal = self._foreign(secret, token, form)
        if refusal is not None:
            return refusal
        if self.clock() - token.issued_at > self.token_lifetime:
            return _refused(self.expired_code)
        if token.used:
            return self._again(token, form)
        token.used = True
        token.idempotency_key = form.get("idempotency_key")
        token.answer = {
            "success": True,
            "challenge_ts": _timestamp(token.issued_at),
            "hostname": token.hostname,
            "error-codes": [],
            **token.fields,
        }
        return httpx.Response(200, json=token.answer)

    def _test_keys(self, secret: str, response: str) -> httpx.Response | None:
        """The answer to the vendor's public test secrets, which need no real token."""
        return None

    def _unknown(self, response: str) -> httpx.Response:
        return _refused(self.unknown_code)

    def _foreign(self, secret: str, token: _Token, form: dict[str, str]) -> httpx.Response | None:
        """A token minted under a site key this secret does not own."""
        if token.sitekey not in self.keys[secret]:
            return _refused(self.unknown_code)
        return None

    def _again(self, token: _Token, form: dict[str, str]) -> httpx.Response:
        return _refused(self.duplicate_code)


class ReCaptchaEmulator(SiteverifyEmulator):
    """Google reCAPTCHA. ``version=3`` adds a score and an action to every answer;
    the v2 test secret passes any token, as Google's does."""

    vendor: ClassVar[str] = "recaptcha"
    field: ClassVar[str] = "g-recaptcha-response"
    token_prefix: ClassVar[str] = "03A"

    def __init__(
        self,
        secret: str = "6Lemulated-recaptcha-secret-000000000000",
        sitekey: str = "6Lemulated-recaptcha-sitekey-00000000000",
        *,
        version: int = 2,
        hostname: str = "localhost",
        token_lifetime: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if version not in (2, 3):
            raise ValueError("reCAPTCHA version is 2 or 3")
        super().__init__(
            secret, sitekey, hostname=hostname, token_lifetime=token_lifetime, clock=clock
        )
        self.version = version

    def token(
        self,
        *,
        sitekey: str | None = None,
        hostname: str | None = None,
        score: float = 0.9,
        action: str = "submit",
    ) -> str:
        fields: dict[str, Any] = {"score": score, "action": action} if self.version == 3 else {}
        return self._mint(sitekey, hostname, fields)

    def issue(
        self,
        *,
        sitekey: str | None = None,
        hostname: str | None = None,
        score: float = 0.9,
        action: str = "submit",
    ) -> dict[str, str]:
        token = self.token(sitekey=sitekey, hostname=hostname, score=score, action=action)
        return {self.field: token}

    def _test_keys(self, secret: str, response: str) -> httpx.Response | None:
        if secret != RECAPTCHA_TEST_SECRET:
            return None
        if not response:
            return _refused("missing-input-response")
        answer = {
            "success": True,
            "challenge_ts": _timestamp(self.clock()),
            "hostname": "testkey.google.com",
        }
        return httpx.Response(200, json=answer)


class HCaptchaEmulator(SiteverifyEmulator):
    """hCaptcha. ``enterprise=True`` adds a score (0.0 safe, 1.0 threat) and score reasons.

    A ``sitekey`` sent with the verification must be the token's own and registered with the
    secret, else ``sitekey-secret-mismatch``. The public test secret accepts only the public
    test token (anything else is ``not-using-dummy-passcode``)."""

    vendor: ClassVar[str] = "hcaptcha"
    field: ClassVar[str] = "h-captcha-response"
    token_prefix: ClassVar[str] = "P1_"
    unknown_code: ClassVar[str] = "invalid-or-already-seen-response"
    expired_code: ClassVar[str] = "expired-input-response"
    duplicate_code: ClassVar[str] = "already-seen-response"

    def __init__(
        self,
        secret: str = "0xEmulatedHCaptchaSecret000000000000000000",
        sitekey: str = "e0000000-1111-2222-3333-444444444444",
        *,
        enterprise: bool = False,
        hostname: str = "localhost",
        token_lifetime: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            secret, sitekey, hostname=hostname, token_lifetime=token_lifetime, clock=clock
        )
        self.enterprise = enterprise

    def token(
        self,
        *,
        sitekey: str | None = None,
        hostname: str | None = None,
        score: float = 0.1,
        score_reason: Iterable[str] = (),
    ) -> str:
        fields: dict[str, Any] = {"credit": False}
        if self.enterprise:
            fields.update(score=score, score_reason=list(score_reason))
        return self._mint(sitekey, hostname, fields)

    def issue(
        self,
        *,
        sitekey: str | None = None,
        hostname: str | None = None,
        score: float = 0.1,
        score_reason: Iterable[str] = (),
    ) -> dict[str, str]:
        token = self.token(
            sitekey=sitekey, hostname=hostname, score=score, score_reason=score_reason
        )
        return {self.field: token}

    def _test_keys(self, secret: str, response: str) -> httpx.Response | None:
        if secret == HCAPTCHA_TEST_SECRET:
            if response != HCAPTCHA_TEST_TOKEN:
                return _refused("not-using-dummy-passcode")
            answer = {"success": True, "hostname": "dummy-key-pass", "credit": False}
            return httpx.Response(200, json=answer)
        return None

    def _unknown(self, response: str) -> httpx.Response:
        if response == HCAPTCHA_TEST_TOKEN:  # the test key's token under a real secret
            return _refused("not-using-dummy-passcode")
        return _refused(self.unknown_code)

    def _foreign(self, secret: str, token: _Token, form: dict[str, str]) -> httpx.Response | None:
        pinned = form.get("sitekey")
        owned = self.keys[secret]
        if token.sitekey not in owned or (pinned and pinned != token.sitekey):
            return _refused("sitekey-secret-mismatch")
        return None


class TurnstileEmulator(SiteverifyEmulator):
    """Cloudflare Turnstile. A spent token verifies again only with the same
    ``idempotency_key`` as its first verification, and then gets the same answer. The public
    test secrets (``1x…`` pass, ``2x…`` fail, ``3x…`` spent) accept only the dummy token."""

    vendor: ClassVar[str] = "turnstile"
    field: ClassVar[str] = "cf-turnstile-response"
    token_prefix: ClassVar[str] = "0."
    default_lifetime: ClassVar[float] = 300.0

    def __init__(
        self,
        secret: str = "0x4AAAAAAAEmulatedTurnstileSecret000",
        sitekey: str = "0x4AAAAAAAEmulatedSitekey",
        *,
        hostname: str = "localhost",
        token_lifetime: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            secret, sitekey, hostname=hostname, token_lifetime=token_lifetime, clock=clock
        )

    def token(
        self,
        *,
        sitekey: str | None = None,
        hostname: str | None = None,
        action: str = "",
        cdata: str = "",
    ) -> str:
        fields = {"action": action, "cdata": cdata, "metadata": {"interactive": False}}
        return self._mint(sitekey, hostname, fields)

    def issue(
        self,
        *,
        sitekey: str | None = None,
        hostname: str | None = None,
        action: str = "",
        cdata: str = "",
    ) -> dict[str, str]:
        token = self.token(sitekey=sitekey, hostname=hostname, action=action, cdata=cdata)
        return {self.field: token}

    def _test_keys(self, secret: str, response: str) -> httpx.Response | None:
        behaviour = TURNSTILE_TEST_SECRETS.get(secret)
        if behaviour is None:
            return None
        if response != TURNSTILE_TEST_TOKEN:
            return _refused("invalid-input-secret")
        if behaviour == "fail":
            return _refused("invalid-input-response")
        if behaviour == "spent":
            return _refused("timeout-or-duplicate")
        answer = {
            "success": True,
            "challenge_ts": _timestamp(self.clock()),
            "hostname": "example.com",
            "error-codes": [],
            "action": "",
            "cdata": "",
        }
        return httpx.Response(200, json=answer)

    def _again(self, token: _Token, form: dict[str, str]) -> httpx.Response:
        key = form.get("idempotency_key")
        if key and key == token.idempotency_key:
            return httpx.Response(200, json=token.answer)
        return _refused(self.duplicate_code)


def _form(request: httpx.Request) -> dict[str, str]:
    """The request's fields, from the query string and a form or JSON body (vendors take all)."""
    values = dict(request.url.params)
    content = request.content
    if "json" in request.headers.get("content-type", ""):
        try:
            document = json.loads(content)
        except ValueError:
            document = None
        if isinstance(document, dict):
            values.update({k: v for k, v in document.items() if isinstance(v, str)})
    else:
        values.update(parse_qsl(content.decode("utf-8", "replace"), keep_blank_values=True))
    return values


def _refused(*codes: str) -> httpx.Response:
    return httpx.Response(200, json={"success": False, "error-codes": list(codes)})


def _timestamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
