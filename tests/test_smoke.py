"""The shortest path through the product: a GeeTest-protected route under uvicorn."""

from __future__ import annotations

import httpx

from captcha_guard import CaptchaGuard, GeeTest, Rule
from captcha_guard.testing import GeeTestEmulator
from tests.servers import serve_asgi


async def echo(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    verdict = scope.get("state", {}).get("captcha")
    outcome = verdict.outcome.value if verdict else "none"
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": outcome.encode() + b" " + body})


def test_login_passes_once_then_is_refused() -> None:
    emulator = GeeTestEmulator()
    with emulator.serve() as upstream:
        provider = GeeTest(
            emulator.captcha_id, emulator.captcha_key, endpoint=upstream.endpoint("/validate")
        )
        guard = CaptchaGuard(echo, rules=[Rule("/login")], provider=provider)
        with serve_asgi(guard) as url:
            fields = emulator.issue()
            first = httpx.post(url + "/login", data=fields)
            second = httpx.post(url + "/login", data=fields)
            page = httpx.get(url + "/login")
    assert first.status_code == 200
    assert first.text.startswith("passed lot_number=")
    assert second.status_code == 403
    assert "pass_token expire" in second.text
    assert page.text == "none "
