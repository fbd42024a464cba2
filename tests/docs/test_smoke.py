"""The shortest path through the product: a GeeTest-protected route under uvicorn."""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import httpx

from captcha_guard import CaptchaGuard, GeeTest, Rule
from captcha_guard.testing import GeeTestEmulator
from tests import TLS
from tests.apps import echo_asgi
from tests.servers import serve_asgi


def test_login_passes_once_then_is_refused() -> None:
    emulator = GeeTestEmulator()
    with emulator.serve() as upstream:
        provider = GeeTest(
            emulator.captcha_id, emulator.captcha_key, endpoint=upstream.endpoint("/validate")
        )
        guard = CaptchaGuard(echo_asgi, rules=[Rule("/login")], provider=provider)
        with serve_asgi(guard) as url:
            fields = emulator.issue()
            first = httpx.post(url + "/login", data=fields, verify=TLS)
            second = httpx.post(url + "/login", data=fields, verify=TLS)
            page = httpx.get(url + "/login", verify=TLS)
    assert first.status_code == 200
    assert first.json() == {
        "outcome": "passed",
        "sha256": hashlib.sha256(urlencode(fields).encode()).hexdigest(),
    }
    assert second.status_code == 403
    assert "pass_token expire" in second.text
    assert page.json()["outcome"] is None
