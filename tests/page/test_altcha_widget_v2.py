"""ALTCHA widget 3.x in headless Chromium posts real proof-of-work v2 solutions to
``ProofOfWork(secret, version=2)`` through both doors (ASGI under uvicorn, WSGI under wsgiref):
the widget fetches our v2 challenge, derives keys with Web Crypto's PBKDF2 in its workers, and
the form it fills is judged by the gate (issue 17, section 4).

The page is the one the v1 test uses (``challenge=`` for 3.x); nothing on it names the
version: the challenge's shape tells the widget which protocol to speak.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from captcha_guard import CaptchaGuard, ProofOfWork, Rule, WSGICaptchaGuard
from tests import TLS
from tests.browser import Browser, chromium
from tests.page.test_altcha_widget import ARTIFACTS, sign_and_post
from tests.servers import serve_asgi, serve_wsgi
from tests.widgets import widget

SECRET = "widget-v2-test-secret-0123456789abcdef"
WIDGET_PATH = "/widget.js"
CHALLENGE_PATH = "/captcha-guard/challenge"
PAGE = f"""<!doctype html>
<meta charset="utf-8">
<script async defer src="{WIDGET_PATH}" type="module"></script>
<form method="post" action="/comments">
  <textarea name="text"></textarea>
  <altcha-widget challenge="{CHALLENGE_PATH}"></altcha-widget>
  <button>Post</button>
</form>
"""


def _answer(text: str, verdict: Any) -> tuple[str, list[tuple[str, str]], bytes]:
    if verdict is None:  # pragma: no cover - the gate lets only judged requests through
        raise AssertionError("no verdict")
    body = json.dumps({"text": text, "captcha": verdict.outcome.value}).encode()
    return "200 OK", [("content-type", "application/json")], body


def _site(environ_or_scope: dict[str, Any], method: str, path: str, form: bytes) -> Any:
    if path == WIDGET_PATH:
        headers = [("content-type", "text/javascript"), ("cache-control", "no-store")]
        return "200 OK", headers, widget(3).read_bytes()
    if path == "/comments" and method == "POST":
        text = parse_qs(form.decode()).get("text", [""])[0]
        verdict = environ_or_scope.get("captcha_guard.verdict")
        if verdict is None:
            verdict = environ_or_scope.get("state", {}).get("captcha")
        return _answer(text, verdict)
    return "200 OK", [("content-type", "text/html")], PAGE.encode()


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    form = b""
    while True:
        message = await receive()
        form += message.get("body", b"")
        if not message.get("more_body"):
            break
    status, headers, body = _site(scope, scope["method"], scope["path"], form)
    raw = [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": int(status[:3]), "headers": raw})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    form = environ["wsgi.input"].read(length) if length else b""
    status, headers, body = _site(environ, environ["REQUEST_METHOD"], environ["PATH_INFO"], form)
    start_response(status, headers)
    return [body]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    widget(3)  # installed before the browser's clock starts
    with chromium() as session:
        yield session


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
def test_widget_3_solves_v2_and_the_gate_lets_the_form_through(door: str, browser: Browser) -> None:
    provider = ProofOfWork(SECRET, version=2)
    rules = [Rule("/comments")]
    if door == "asgi":
        serve: Any = serve_asgi(CaptchaGuard(asgi_app, rules=rules, provider=provider))
    else:
        serve = serve_wsgi(WSGICaptchaGuard(wsgi_app, rules=rules, provider=provider))
    with serve as url, httpx.Client(base_url=url, verify=TLS) as client:
        result = sign_and_post(browser, url, ARTIFACTS / f"altcha-3-v2-{door}.png")
        assert result["answer"] == {"text": "hello from the widget", "captcha": "passed"}
        payload = json.loads(base64.b64decode(result["payload"]))
        # A real v2 solution: the challenge as issued, the counter and the key it found.
        assert set(payload) == {"challenge", "solution"}
        parameters = payload["challenge"]["parameters"]
        assert parameters["algorithm"] == "PBKDF2/SHA-256"
        assert parameters["data"] == {"n": str(provider.max_number)}
        assert payload["solution"]["derivedKey"].startswith(parameters["keyPrefix"])
        # Judged and spent: the same payload again is refused.
        again = client.post(
            "/comments", data={"altcha": result["payload"]}, headers={"accept": "json"}
        )
        assert again.status_code == 403
        assert again.json()["reason"] == "proof of work: challenge already used"
