"""A Cap Standalone instance's siteverify (``POST /<site-key>/siteverify``) that answers as
``standalone/src/siteverify.js`` does, check for check and status for status: the site keys and
their secrets, and the tokens its widget redeemed, each verifying once (``getdel``) within its
lifetime (two hours, Cap's ``TOKEN_TTL_MS``)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

from ._emulator import Emulator


class CapEmulator(Emulator):
    """One Cap Standalone instance: ``site_keys`` maps each site key to its secret.

    ``issue()`` plays the widget and returns ``{"cap-token": token}``; ``force_error =
    ("Token expired", 403)`` answers that error text and status.
    """

    def __init__(
        self,
        site_key: str = "d9256640cb53",
        secret: str = "emulated-cap-secret-0000000000000000",
        *,
        token_lifetime: float = 2 * 60 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.site_key = site_key
        self.secret = secret
        self.site_keys: dict[str, str] = {site_key: secret}
        self.token_lifetime = token_lifetime
        self.clock = clock
        self.force_error: tuple[str, int] | None = None
        self._tokens: dict[str, float] = {}  # token -> expires at

    def token(self, *, site_key: str | None = None) -> str:
        key = site_key or self.site_key
        token = f"{key}:{secrets.token_hex(8)}:{secrets.token_hex(15)}"
        with self._lock:
            self._tokens[token] = self.clock() + self.token_lifetime
        return token

    def issue(self, *, site_key: str | None = None) -> dict[str, str]:
        return {"cap-token": self.token(site_key=site_key)}

    def answer(self, request: httpx.Request) -> httpx.Response:
        parts = [p for p in request.url.path.split("/") if p]
        if request.method != "POST" or not parts or parts[-1] != "siteverify" or len(parts) > 2:
            return _refused("NOT_FOUND", 404)
        if self.force_error:
            return _refused(*self.force_error)
        path_key = parts[0] if len(parts) == 2 else None
        try:
            body: Any = json.loads(request.content or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _refused("Internal server error", 500)  # siteverify.js destructures it
        secret, response = body.get("secret"), body.get("response")
        if not isinstance(response, str):
            return _refused("Internal server error", 500)  # response.split throws
        if len(response.split(":")) != 3:
            return _refused("Missing required parameters", 400)
        site_key = path_key or response.split(":")[0]
        if path_key and not response.startswith(path_key):
            return _refused("Invalid site key or secret", 404)
        if not secret or not response:
            return _refused("Missing required parameters", 400)
        known = self.site_keys.get(site_key)
        if known is None:
            return _refused("Invalid site key or secret", 404)
        if secret != known:
            return _refused("Invalid site key or secret", 403)
        expires = self._tokens.pop(response, None)  # getdel: single use
        if expires is None:
            return _refused("Token not found", 404)
        if expires < self.clock():
            return _refused("Token expired", 403)
        return httpx.Response(200, json={"success": True})


def _refused(error: str, status: int) -> httpx.Response:
    return httpx.Response(status, json={"success": False, "error": error})
