"""The widget snippets in headless Chromium, under a nonce-only Content-Security-Policy.

The vendors' scripts cannot load without the internet, so their snippets run against stand-ins
of each vendor's documented client API (tests/page/widget_standins.js): the snippet must render the
widget with the site key, hand its token to the form, and call the vendor's reset after every
answer that is not 2xx. ALTCHA runs for real: the npm widget solves our ProofOfWork challenge,
the gate verifies and spends the solution, the app answers 422, and the widget is reset and
solved again. Screenshots land in artifacts/.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from captcha_guard import (
    AliyunCaptcha,
    Cap,
    CaptchaGuard,
    FriendlyCaptcha,
    GeeTest,
    HCaptcha,
    ProofOfWork,
    ReCaptcha,
    Rule,
    TencentCaptcha,
    Turnstile,
)
from captcha_guard.testing import (
    CapEmulator,
    FriendlyCaptchaEmulator,
    TencentCaptchaEmulator,
    TurnstileEmulator,
)
from captcha_guard.widgets import widget
from tests import ROOT, TLS
from tests.browser import Browser, chromium
from tests.servers import serve_asgi
from tests.widgets import widget as altcha_bundle

# Real browsers and servers, real processes: seconds each.
pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "artifacts"
STANDINS = (Path(__file__).parent / "widget_standins.js").read_text()
POW_SECRET = "widget-browser-secret-0123456789abcdef"
NONCE = "t3st-n0nce"
# Only scripts carrying the nonce run: the snippet's inline runtime and the vendor's tag must
# both carry it. ALTCHA's solver runs in Web Workers it starts from blob: URLs.
CSP = f"script-src 'nonce-{NONCE}'; worker-src 'self' blob:; object-src 'none'"


def providers(turnstile_endpoint: str) -> dict[str, Any]:
    return {
        "recaptcha": ReCaptcha("secret", sitekey="6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI"),
        "hcaptcha": HCaptcha("secret", sitekey="10000000-ffff-ffff-ffff-000000000001"),
        "turnstile": Turnstile(
            TurnstileEmulator().secret,
            sitekey=TurnstileEmulator().sitekey,
            endpoint=turnstile_endpoint,
        ),
        "geetest": GeeTest("647f5ed2ed8acb4be36784e01556bb71", "key"),
        "aliyun": AliyunCaptcha("LTAI5tKey", "secret", scene_id="sc3ne1d", prefix="no8xfe"),
        "proof_of_work": ProofOfWork(POW_SECRET),
        "tencent": TencentCaptcha(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            captcha_app_id=190000000,
            app_secret_key="app-secret-key",
        ),
        "friendly-captcha": FriendlyCaptcha(
            "api-key",
            sitekey="FCMGEMUD2KTDSQ5H",
            endpoint="https://eu.frcapi.com/api/v2/captcha/siteverify",
        ),
        "friendly-captcha-v1": FriendlyCaptcha("secret", sitekey="FCMGEMUD2KTDSQ5H", version=1),
        "cap": Cap("d9256640cb53", "secret", endpoint="https://cap.example.com"),
    }


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{name}</title></head><body>
<h1>{name} ({mode})</h1>
<form method="post" action="{action}">
  <textarea name="text">{text}</textarea>
  {snippet}
  <button type="submit">Send</button>
</form>
<p id="status">-</p>
<script nonce="{nonce}">
window.answers = [];
document.addEventListener("captcha-guard:answer", function (e) {{
  var r = e.detail.response;
  window.answers.push(r ? r.status : "error");
  document.getElementById("status").textContent = r ? "answer " + r.status : "network error";
}});
</script>
</body></html>"""


def site(
    named: dict[str, Any], gated: Sequence[str] = ("turnstile", "proof_of_work")
) -> CaptchaGuard:
    """The test site: ``/page/<name>`` shows ``named[name]``'s widget, and the gate judges
    ``/protected/<name>`` for each of ``gated``."""

    async def page(request: Request) -> Response:
        name = request.path_params["name"]
        mode = request.query_params.get("mode", "fetch")
        provider = named[name]
        if name == "proof_of_work":
            script = "/altcha.js"
        else:
            explicit = name in ("recaptcha", "hcaptcha", "turnstile")
            script = f"/standins.js?vendor={name}" + ("&onload={onload}" if explicit else "")
        html = PAGE.format(
            name=name,
            mode=mode,
            action=request.query_params.get("action", "/answer/422"),
            text=request.query_params.get("text", ""),
            snippet=widget(provider, mode=mode, nonce=NONCE, script=script),  # type: ignore[arg-type]
            nonce=NONCE,
        )
        return HTMLResponse(html, headers={"content-security-policy": CSP})

    async def answer(request: Request) -> Response:
        form = await request.form()
        return JSONResponse(
            {"form": {k: str(v) for k, v in form.items()}},
            status_code=int(request.path_params["status"]),
        )

    async def protected(request: Request) -> Response:
        form = await request.form()
        if not form.get("text"):  # the app's own validation, after the gate spent the token
            return JSONResponse({"error": "text is required"}, status_code=422)
        return JSONResponse({"text": form["text"], "captcha": request.state.captcha.outcome.value})

    async def standins(request: Request) -> Response:
        return Response(STANDINS, media_type="text/javascript")

    async def altcha(request: Request) -> Response:
        return Response(altcha_bundle(3).read_bytes(), media_type="text/javascript")

    app = Starlette(
        routes=[
            Route("/page/{name}", page),
            Route("/answer/{status:int}", answer, methods=["POST"]),
            Route("/protected/{name}", protected, methods=["POST"]),
            Route("/standins.js", standins),
            Route("/altcha.js", altcha),
        ]
    )
    return CaptchaGuard(
        app,
        rules=[Rule(f"/protected/{name}", provider=name) for name in gated],
        provider=named["proof_of_work"],
        providers={k: v for k, v in named.items() if k in gated},
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    altcha_bundle(3)  # installed before the browser's clock starts
    with chromium() as session:
        yield session


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, TurnstileEmulator]]:
    emulator = TurnstileEmulator()
    with (
        emulator.serve() as upstream,
        serve_asgi(site(providers(upstream.endpoint("/siteverify")))) as url,
    ):
        yield url, emulator


GATED = ("tencent", "friendly-captcha", "cap")


@pytest.fixture(scope="module")
def gated() -> Iterator[tuple[str, dict[str, Any]]]:
    """The three newer vendors' widgets in front of the real gate and their emulators."""
    emulators: dict[str, Any] = {
        "tencent": TencentCaptchaEmulator(),
        "friendly-captcha": FriendlyCaptchaEmulator(),
        "cap": CapEmulator(),
    }
    with ExitStack() as stack:
        up = {name: stack.enter_context(e.serve()) for name, e in emulators.items()}
        tencent, friendly, cap = (emulators[name] for name in GATED)
        named = {
            "proof_of_work": ProofOfWork(POW_SECRET),
            "tencent": TencentCaptcha(
                tencent.secret_id,
                tencent.secret_key,
                captcha_app_id=tencent.captcha_app_id,
                app_secret_key=tencent.app_secret_key,
                endpoint=up["tencent"].endpoint("/"),
            ),
            "friendly-captcha": FriendlyCaptcha(
                friendly.api_key,
                sitekey=friendly.sitekey,
                endpoint=up["friendly-captcha"].endpoint("/api/v2/captcha/siteverify"),
            ),
            "cap": Cap(cap.site_key, cap.secret, endpoint=up["cap"].endpoint("")),
        }
        url = stack.enter_context(serve_asgi(site(named, GATED)))
        yield url, emulators


RENDERED = (
    "return window.standin && window.standin.renders.length === 1 && window.standin.renders[0]"
)
WIDGET = "return window.captchaGuard.widgets[0]"
FIELDS = "return window.captchaGuard.fields()"
RESETS = "return window.standin.resets"
ANSWERS = "return window.answers.length === arguments[0] && window.answers"


def load(browser: Browser, url: str, ready: str, what: str, timeout: float = 10) -> None:
    browser.get(url)
    browser.wait_for(ready, what=what, timeout=timeout)


def submit(browser: Browser, answers: int) -> list[Any]:
    browser.click("form button")
    return list(browser.wait_for(ANSWERS, answers, what=f"answer {answers}", timeout=20))


STANDIN_CASES = {
    "recaptcha": ("6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI", 0, ["g-recaptcha-response"]),
    "hcaptcha": ("10000000-ffff-ffff-ffff-000000000001", 0, ["h-captcha-response"]),
    "turnstile": (TurnstileEmulator().sitekey, 0, ["cf-turnstile-response"]),
    "geetest": (
        "647f5ed2ed8acb4be36784e01556bb71",
        "geetest",
        ["lot_number", "captcha_output", "pass_token", "gen_time"],
    ),
    "aliyun": ("no8xfe", "aliyun", ["captchaVerifyParam"]),
    "tencent": ("190000000", "tencent", ["ticket", "randstr"]),
    "friendly-captcha": ("FCMGEMUD2KTDSQ5H", "friendly-captcha", ["frc-captcha-response"]),
    "friendly-captcha-v1": ("FCMGEMUD2KTDSQ5H", "friendly-captcha-v1", ["frc-captcha-solution"]),
    # Cap's element carries the instance's API for the site key, not the key alone.
    "cap": ("https://cap.example.com/d9256640cb53/", "cap", ["cap-token"]),
}
#: The element each vendor renders into, where it is not captcha-guard-<name>-box: Tencent's
#: is a pop-up of its own; both Friendly Captcha versions are the provider "friendly-captcha".
BOXES = {"tencent": None, "friendly-captcha-v1": "captcha-guard-friendly-captcha-box"}


@pytest.mark.parametrize("name", list(STANDIN_CASES))
def test_vendor_snippet_resets_after_every_non_2xx_answer(
    name: str, browser: Browser, served: tuple[str, TurnstileEmulator]
) -> None:
    url, _ = served
    sitekey, widget_id, fields = STANDIN_CASES[name]
    browser.get(f"{url}/page/{name}?action=/answer/422")
    rendered = browser.wait_for(RENDERED, what=f"{name} to render", timeout=10)
    assert rendered["sitekey"] == sitekey
    assert rendered["box"] == BOXES.get(name, f"captcha-guard-{name}-box")
    if name == "aliyun":
        assert (rendered["region"], rendered["scene"]) == ("cn", "sc3ne1d")
        assert rendered["button"].startswith("#")
    if name == "friendly-captcha":
        assert rendered["endpoint"] == "eu"  # the provider verifies at the EU API

    browser.run("window.standin.solve('token-1')")
    solved = browser.run(FIELDS)
    assert set(solved) == set(fields) and all(solved.values())
    browser.screenshot(ARTIFACTS / f"widget-{name}-solved.png")
    # The app refuses the form (422): the token is spent all the same, the widget is reset.
    assert submit(browser, 1) == [422]
    assert browser.run(RESETS) == [widget_id]
    assert not any(browser.run(FIELDS).values())

    # A 2xx answer leaves the widget alone.
    browser.run("document.querySelector('form').action = '/answer/200'")
    browser.run("window.standin.solve('token-2')")
    assert submit(browser, 2) == [422, 200]
    assert browser.run(RESETS) == [widget_id]

    # captchaGuard.fetch: a CSRF-style 403 and a network error reset it too.
    browser.run("window.standin.solve('token-3')")
    status = browser.run(
        "return captchaGuard.fetch('/answer/403', {method: 'POST'}).then(r => r.status)"
    )
    assert status == 403
    failed = browser.run(
        "return captchaGuard.fetch('http://127.0.0.1:9/', {method: 'POST'})"
        ".then(() => 'answered', () => 'failed')"
    )
    assert failed == "failed"
    assert browser.run(RESETS) == [widget_id] * 3
    browser.screenshot(ARTIFACTS / f"widget-{name}-reset.png")


def test_geetest_form_mode_posts_the_four_fields_and_resets_from_the_bfcache(
    browser: Browser, served: tuple[str, TurnstileEmulator]
) -> None:
    url, _ = served
    load(browser, f"{url}/page/geetest?mode=form&action=/answer/200", RENDERED, "geetest")
    # Back to this page from the back-forward cache: its form holds a spent token; reset.
    browser.run("window.standin.solve('spent')")
    browser.run("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    assert browser.run(RESETS) == ["geetest"]
    assert not any(browser.run(FIELDS).values())
    # A page loaded afresh (persisted false) is left alone.
    browser.run("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: false}))")
    assert browser.run(RESETS) == ["geetest"]
    browser.run("window.standin.solve('0123456789abcdef0123456789abcdef')")
    browser.click("form button")
    text = browser.wait_for(
        "return location.pathname === '/answer/200' && document.body.innerText",
        what="the form's answer",
    )
    posted = json.loads(text)["form"]
    assert posted["lot_number"] == "0123456789abcdef0123456789abcdef"
    assert posted["pass_token"] == "pass-0123456789abcdef0123456789abcdef"
    assert posted["gen_time"] == "1700000000"


def test_turnstile_token_spent_by_the_gate_then_reset(
    browser: Browser, served: tuple[str, TurnstileEmulator]
) -> None:
    """Through the real gate: a token passes once; the same token again is refused (403) and
    the snippet asks the widget for a fresh one."""
    url, emulator = served
    load(
        browser,
        f"{url}/page/turnstile?action=/protected/turnstile&text=hello",
        RENDERED,
        "turnstile",
    )
    token = emulator.token()
    browser.run("window.standin.solve(arguments[0])", token)
    assert submit(browser, 1) == [200]
    assert browser.run(RESETS) == []
    browser.run("window.standin.solve(arguments[0])", token)  # a page that kept the old one
    assert submit(browser, 2) == [200, 403]
    assert browser.run(RESETS) == [0]


@pytest.mark.parametrize("name", GATED)
def test_newer_vendors_token_spent_by_the_gate_then_reset(
    name: str, browser: Browser, gated: tuple[str, dict[str, Any]]
) -> None:
    """Through the real gate and the vendor's emulator: the widget's values pass once; the
    same values again are refused (403) and the snippet asks the widget for fresh ones."""
    url, emulators = gated
    load(browser, f"{url}/page/{name}?action=/protected/{name}&text=hello", RENDERED, name)
    values = list(emulators[name].issue().values())  # what the vendor's widget would hand over
    browser.run("window.standin.solve.apply(null, arguments[0])", values)
    assert submit(browser, 1) == [200]
    assert browser.run(RESETS) == []
    browser.run("window.standin.solve.apply(null, arguments[0])", values)  # kept the old ones
    assert submit(browser, 2) == [200, 403]
    assert browser.run(RESETS) == [name]
    assert not any(browser.run(FIELDS).values())
    browser.screenshot(ARTIFACTS / f"widget-{name}-gate-reset.png")


ALTCHA_READY = """
const el = document.querySelector("altcha-widget");
return customElements.get("altcha-widget") !== undefined && el !== null
  && typeof el.reset === "function" && window.captchaGuard.widgets[0].mounted;
"""
ALTCHA_SOLVED = """
const field = document.querySelector("form").elements.namedItem("altcha");
return field && field.value ? field.value : null;
"""
ALTCHA_RESET = """
const field = document.querySelector("form").elements.namedItem("altcha");
return window.captchaGuard.widgets[0].resets === arguments[0] && !(field && field.value);
"""


def test_altcha_widget_is_reset_after_the_app_refuses_and_solves_again(
    browser: Browser, served: tuple[str, TurnstileEmulator]
) -> None:
    url, _ = served
    load(
        browser,
        f"{url}/page/proof_of_work?action=/protected/proof_of_work",
        ALTCHA_READY,
        "ALTCHA",
        20,
    )
    browser.click("altcha-widget label")
    first = browser.wait_for(ALTCHA_SOLVED, what="the widget to solve", timeout=60)
    browser.screenshot(ARTIFACTS / "widget-altcha-solved.png")
    # No text: the gate passes (and spends) the solution, then the app answers 422.
    assert submit(browser, 1) == [422]
    browser.wait_for(ALTCHA_RESET, 1, what="the widget to be reset", timeout=10)
    browser.screenshot(ARTIFACTS / "widget-altcha-reset.png")
    spent = httpx.post(
        f"{url}/protected/proof_of_work",
        data={"altcha": first, "text": "again"},
        headers={"accept": "application/json"},
        verify=TLS,
    )
    assert spent.status_code == 403
    assert spent.json()["reason"] == "proof of work: challenge already used"

    browser.clear_and_type("textarea", "hello from the widget")
    browser.click("altcha-widget label")
    second = browser.wait_for(ALTCHA_SOLVED, what="the widget to solve again", timeout=60)
    assert second != first
    payload = json.loads(base64.b64decode(second))
    assert payload["algorithm"] == "SHA-256"
    assert submit(browser, 2) == [422, 200]
    assert browser.run("return window.captchaGuard.widgets[0].resets") == 1
    browser.screenshot(ARTIFACTS / "widget-altcha-passed.png")
