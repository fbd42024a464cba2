"""The ALTCHA widget from npm, 2.x and 3.x, in headless Chromium against ProofOfWork through
both doors (ASGI under uvicorn, WSGI under wsgiref): the widget fetches our challenge, solves
it with its own code, and the form it fills is judged by the gate (issue 8, section 7).

The widget bundles are installed with npm into a cache (``tests/widgets.py``); screenshots of
each solved widget land in ``artifacts/``. One browser serves every case, to keep this short.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from captcha_guard import CaptchaGuard, ProofOfWork, Rule
from tests import ROOT, TLS
from tests.browser import Browser, chromium
from tests.docs.test_examples import load_example
from tests.servers import serve_asgi, serve_wsgi
from tests.widgets import widget

ARTIFACTS = ROOT / "artifacts"
SECRET = "widget-test-secret-0123456789abcdef"
WIDGET_PATH = "/widget.js"
MAJORS = (2, 3)


class Served:
    """Which widget major the servers hand out at ``WIDGET_PATH`` right now."""

    major = 3

    def bundle(self) -> bytes:
        return widget(self.major).read_bytes()


def widget_headers() -> list[tuple[str, str]]:
    # no-store: each page load must run the bundle of the major under test, not a cached one.
    return [("content-type", "text/javascript"), ("cache-control", "no-store")]


def asgi_site(example: ModuleType, served: Served) -> CaptchaGuard:
    """The example's page and handler, as a Starlette app behind CaptchaGuard."""

    async def page(request: Request) -> Response:
        return HTMLResponse(example.PAGE)

    async def comments(request: Request) -> Response:
        form = await request.form()
        verdict = request.state.captcha
        return JSONResponse({"text": form.get("text", ""), "captcha": verdict.outcome.value})

    async def script(request: Request) -> Response:
        return Response(served.bundle(), headers=dict(widget_headers()))

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/comments", comments, methods=["POST"]),
            Route(WIDGET_PATH, script),
        ]
    )
    return CaptchaGuard(app, rules=[Rule("/comments")], provider=ProofOfWork(SECRET))


def wsgi_site(example: ModuleType, served: Served) -> Callable[..., Any]:
    """The Flask example itself, with the widget file served beside it."""

    def site(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ["PATH_INFO"] == WIDGET_PATH:
            start_response("200 OK", widget_headers())
            return [served.bundle()]
        return example.app(environ, start_response)

    return site


@pytest.fixture(scope="module")
def example() -> Iterator[ModuleType]:
    with pytest.MonkeyPatch.context() as patch:
        yield load_example("flask_app", patch, POW_SECRET=SECRET, ALTCHA_WIDGET=WIDGET_PATH)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    for major in MAJORS:
        widget(major)  # installed before the browser's clock starts
    with chromium() as session:
        yield session


WIDGET_READY = """
const el = document.querySelector("altcha-widget");
return customElements.get("altcha-widget") !== undefined && el !== null
  && typeof el.verify === "function";
"""

# What a person does: click the widget's "I'm not a robot" label (its checkbox is drawn over).
CHECKBOX = "altcha-widget label"

SOLVED = """
const field = document.querySelector("form").elements.namedItem("altcha");
const state = document.querySelector("altcha-widget").getState?.();
if (state === "error") return {error: true};
return field && field.value ? {payload: field.value, state: state} : null;
"""

RESULT = """
return location.pathname === "/comments" && document.readyState === "complete"
  && document.body.innerText;
"""


def sign_and_post(browser: Browser, url: str, shot: Path) -> dict[str, Any]:
    browser.get(url + "/")
    browser.wait_for(WIDGET_READY, what="the widget to load", timeout=20)
    browser.clear_and_type("textarea", "hello from the widget")
    browser.click(CHECKBOX)
    solved = browser.wait_for(SOLVED, what="the widget to solve", timeout=60)
    assert "error" not in solved, "the widget reported an error"
    assert solved["state"] == "verified"
    browser.screenshot(shot)
    browser.click("form button")
    text = browser.wait_for(RESULT, what="the form's answer", timeout=20)
    return {"answer": json.loads(text), "payload": solved["payload"]}


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
def test_the_npm_widget_solves_and_the_gate_lets_the_form_through(
    door: str, example: ModuleType, browser: Browser
) -> None:
    served = Served()
    app = asgi_site(example, served) if door == "asgi" else wsgi_site(example, served)
    serve = serve_asgi if door == "asgi" else serve_wsgi
    with serve(app) as url, httpx.Client(base_url=url, verify=TLS) as client:
        for major in MAJORS:
            served.major = major
            result = sign_and_post(browser, url, ARTIFACTS / f"altcha-{major}-{door}.png")
            assert result["answer"] == {"text": "hello from the widget", "captcha": "passed"}
            payload = json.loads(base64.b64decode(result["payload"]))
            assert {"algorithm", "challenge", "number", "salt", "signature"} <= set(payload)
            assert payload["algorithm"] == "SHA-256"
            assert "&n=20000&" in payload["salt"]
            # What the widget sent was judged and spent: the same payload again is refused.
            again = client.post(
                "/comments", data={"altcha": result["payload"]}, headers={"accept": "json"}
            )
            assert again.status_code == 403
            assert again.json()["reason"] == "proof of work: challenge already used"


def test_widget_3_ignores_challengeurl_so_the_page_needs_challenge(browser: Browser) -> None:
    """Why the page carries both attributes: 3.x with only 2.x's attribute fetches the page
    itself as its challenge and fails. The same page with ``challenge=`` added works."""
    only_v2 = '<altcha-widget challengeurl="/captcha-guard/challenge"></altcha-widget>'

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == WIDGET_PATH:
            body = widget(3).read_bytes()
            headers = widget_headers()
        else:
            body = (
                f'<!doctype html><script type="module" src="{WIDGET_PATH}"></script>'
                f"<form>{only_v2}</form>"
            ).encode()
            headers = [("content-type", "text/html")]
        raw = [(k.encode(), v.encode()) for k, v in headers]
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": body})

    guard = CaptchaGuard(app, rules=[Rule("/comments")], provider=ProofOfWork(SECRET))
    with serve_asgi(guard) as url:
        browser.get(url + "/")
        browser.wait_for(WIDGET_READY, what="the widget to load", timeout=20)
        browser.click(CHECKBOX)
        failed = browser.wait_for(SOLVED, what="the widget to fail", timeout=20)
    assert failed == {"error": True}
