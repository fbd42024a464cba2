"""The demo site: two forms behind one ``CaptchaGuard``, and the outage story told live.

- ``/login`` is protected by the self-hosted ``ProofOfWork`` (the browser solves it).
- ``/comment`` is protected by ``GeeTest``, pointed at ``captcha_guard.testing.GeeTestEmulator``
  served on a loopback port the demo picks: a real HTTP server, so a hang really waits for the
  provider timeout. No GeeTest widget is loaded: the page's "Solve" button asks the demo-only
  ``POST /demo/geetest/solve`` for fields the emulator mints, which is what the widget would
  hand the browser.
- ``POST /demo/vendor`` puts the emulated vendor into an outage mode (or back to healthy);
  ``GET /demo/panel`` is what the event hooks told the demo (``panel.Panel``), polled by the
  page.

``create_app()`` is the whole ASGI app (tests serve it on port 0); its lifespan closes the
emulator's server. ``serve()`` runs it under uvicorn for ``python -m captcha_guard demo``.
"""

from __future__ import annotations

import contextlib
import html
import json
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import CaptchaGuard, CircuitBreaker, GeeTest, ProofOfWork, Rule
from .._request import read_headers
from .._responses import Denial, render, status_line, wants_json
from .._types import ASGIApp, Scope
from ..testing import EmulatorServer, GeeTestEmulator, Outage
from .panel import Panel

#: Small enough that a laptop solves it in about a second, large enough to see the progress.
DEMO_MAX_NUMBER = 200_000
CHALLENGE_PATH = "/captcha-guard/challenge"
FIELD = "altcha"
EXPIRES = 300
#: The emulated vendor's story plays out in seconds: a short timeout, a breaker that opens
#: after 3 failures in a row and probes again after 10 s.
PROVIDER_TIMEOUT = 1.0
FAILURE_THRESHOLD = 3
RESET_TIMEOUT = 10.0
COMMENT_PATH = "/comment"
GEETEST_FIELDS = ("lot_number", "captcha_output", "pass_token", "gen_time")
HEALTHY = "healthy"
#: The vendor controls, in the order the page shows them: (mode, button label, what it does).
MODES: tuple[tuple[str, str, str], ...] = (
    (HEALTHY, "Healthy", "answers like GeeTest"),
    (Outage.HTTP_500.value, "HTTP 500", "answers 500 Internal Server Error"),
    (Outage.HTTP_429.value, "HTTP 429", "answers 429 Too Many Requests"),
    (Outage.GARBAGE.value, "Garbage", "answers 200 with a body that is not JSON"),
    (Outage.HTML.value, "HTML page", "answers 200 with an HTML error page"),
    (Outage.HANG.value, "Hang", "accepts the request and never answers"),
    (Outage.SLOW.value, "Slow", "answers after 1.5 s, past the 1 s timeout"),
    (Outage.RESET.value, "Reset", "resets the connection mid-answer"),
    (Outage.REFUSE.value, "Refuse", "stops listening: connection refused"),
)

# Everything the pages use comes from this server: the policy makes that a fact, not a hope.
_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}

_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · captcha_guard demo</title>
<link rel="stylesheet" href="/static/demo.css">
</head>
<body>
<main>
{body}
<p><a href="/" id="again">Back to the sign-in form</a></p>
</main>
</body>
</html>
"""


def _static(name: str) -> str:
    return (resources.files(__package__) / "static" / name).read_text(encoding="utf-8")


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    content = _SHELL.format(title=html.escape(title), body=body)
    return HTMLResponse(content, status_code=status, headers=_HEADERS)


def _verdict_rows(rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(name)}</th><td id=verdict-{html.escape(name)}>"
        f"{html.escape(str(value))}</td></tr>"
        for name, value in rows.items()
    )
    return f'<table class="verdict">{cells}</table>'


class Vendor:
    """The emulated GeeTest: ``GeeTestEmulator`` behind a real HTTP server on 127.0.0.1 (a
    port the OS picks), so every outage is what the network would do to the gate."""

    def __init__(self, timeout: float = PROVIDER_TIMEOUT) -> None:
        self.emulator = GeeTestEmulator()
        self.emulator.delay = timeout * 1.5  # SLOW answers, but only after the gate gave up
        self.server = EmulatorServer(self.emulator)
        self.endpoint = self.server.endpoint("/validate")

    @property
    def mode(self) -> str:
        outage = self.emulator.outage
        return HEALTHY if outage is None else outage.value

    def set_mode(self, mode: str) -> None:
        """Raises ValueError for a mode the demo does not offer."""
        if mode not in {m for m, _, _ in MODES}:
            raise ValueError(f"unknown mode {mode!r}")
        self.emulator.outage = None if mode == HEALTHY else Outage(mode)

    def issue(self) -> dict[str, str]:
        """What the widget would hand the browser once a person solved the captcha."""
        return self.emulator.issue()

    def close(self) -> None:
        self.server.close()


def _mode_buttons() -> str:
    return "\n".join(
        f'<button type="button" data-mode="{html.escape(mode)}" id="mode-{html.escape(mode)}" '
        f'title="{html.escape(what)}">{html.escape(label)}</button>'
        for mode, label, what in MODES
    )


def site(
    *,
    vendor: Vendor,
    panel: Panel,
    max_number: int = DEMO_MAX_NUMBER,
    reset_timeout: float = RESET_TIMEOUT,
) -> Starlette:
    """The app behind the gate. It never checks a captcha itself: it only reads the verdict."""
    index = _static("index.html").format(
        challenge_path=html.escape(CHALLENGE_PATH),
        field=html.escape(FIELD),
        max_number=f"{max_number:,}",
        expires=EXPIRES,
        comment_path=html.escape(COMMENT_PATH),
        vendor_endpoint=html.escape(vendor.endpoint.removeprefix("http://")),  # on loopback
        mode_buttons=_mode_buttons(),
        timeout=f"{PROVIDER_TIMEOUT:g}",
        threshold=FAILURE_THRESHOLD,
        reset_timeout=f"{reset_timeout:g}",
    )
    assets = {
        "demo.js": (_static("demo.js"), "text/javascript; charset=utf-8"),
        "outage.js": (_static("outage.js"), "text/javascript; charset=utf-8"),
        "demo.css": (_static("demo.css"), "text/css; charset=utf-8"),
    }

    async def home(request: Request) -> Response:
        return HTMLResponse(index, headers=_HEADERS)

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(found[0], media_type=found[1], headers=_HEADERS)

    async def login(request: Request) -> Response:
        form = await request.form()
        user = str(form.get("username") or "someone")
        verdict = request.state.captcha  # set by CaptchaGuard: this handler runs only if passed
        body = (
            f'<h1 class="passed">Signed in as {html.escape(user)}</h1>'
            "<p>The gate checked the proof of work and called the app, which found this "
            "verdict at <code>request.state.captcha</code>:</p>"
            + _verdict_rows(
                {
                    "outcome": verdict.outcome.value,
                    "reason": verdict.reason,
                    "provider": verdict.provider,
                    "details": json.dumps(dict(verdict.details), default=str),
                }
            )
            + "<p class=note>The same solution sent again is refused: each challenge is "
            "good for one request.</p>"
        )
        return _page("Signed in", body)

    async def login_page(request: Request) -> Response:
        return RedirectResponse("/", status_code=303)

    async def comment(request: Request) -> Response:
        # Runs only when the gate let the request through: passed, or fallback (fail-open).
        verdict = request.state.captcha
        document = {
            "app": "ran",
            "outcome": verdict.outcome.value,
            "reason": verdict.reason,
            "provider": verdict.provider,
        }
        return JSONResponse(document, headers=_HEADERS)

    # Demo-only endpoints. They change state, so they take JSON only: a cross-site page
    # cannot send that without the browser asking this server first (CORS preflight).

    def json_only(request: Request) -> Response | None:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return JSONResponse({"error": "send application/json"}, status_code=415)
        return None

    async def solve(request: Request) -> Response:
        refused = json_only(request)
        if refused is not None:
            return refused
        return JSONResponse(vendor.issue(), headers=_HEADERS)

    async def set_vendor(request: Request) -> Response:
        refused = json_only(request)
        if refused is not None:
            return refused
        try:
            mode = (await request.json())["mode"]
            # Stopping or starting to listen joins the server's thread: not on the event loop.
            await run_in_threadpool(vendor.set_mode, str(mode))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "unknown mode"}, status_code=400)
        return JSONResponse({"mode": vendor.mode}, headers=_HEADERS)

    async def show_panel(request: Request) -> Response:
        return JSONResponse({**panel.snapshot(), "vendor": vendor.mode}, headers=_HEADERS)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await run_in_threadpool(vendor.close)

    return Starlette(
        routes=[
            Route("/", home),
            Route("/static/{name}", asset),
            Route("/login", login, methods=["POST"]),
            Route("/login", login_page, methods=["GET"]),
            Route(COMMENT_PATH, comment, methods=["POST"]),
            Route("/demo/geetest/solve", solve, methods=["POST"]),
            Route("/demo/vendor", set_vendor, methods=["POST"]),
            Route("/demo/panel", show_panel, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def refusal(denial: Denial, scope: Scope) -> ASGIApp:
    """The gate's own answer (403 and friends): the gate's JSON for a client that asks for
    JSON (the comment form), else a page that says who answered and why."""
    headers = read_headers(scope["headers"])
    if wants_json(headers.get("accept", ""), headers.get("content-type", "")):
        _, body = render(denial, as_json=True)
        return Response(body, status_code=denial.status, media_type="application/json")
    body_html = (
        f'<h1 class="denied">{html.escape(status_line(denial.status))}</h1>'
        "<p>The gate answered this request itself. The app's <code>/login</code> handler "
        "never ran.</p>"
        + _verdict_rows({"status": denial.status, "error": denial.error, "reason": denial.reason})
    )
    return _page(status_line(denial.status), body_html, status=denial.status)


def create_app(
    secret: str | None = None,
    *,
    max_number: int = DEMO_MAX_NUMBER,
    reset_timeout: float = RESET_TIMEOUT,
) -> CaptchaGuard:
    """The demo site behind the gate. Without ``secret`` a random one is made for this process:
    fine for a demo, whose challenges need not outlive it. ``reset_timeout`` is the GeeTest
    breaker's (tests shorten it). The emulated vendor's server starts here and stops with the
    app's lifespan."""
    provider = ProofOfWork(
        secret if secret is not None else secrets.token_urlsafe(32),
        max_number=max_number,
        expires=EXPIRES,
        challenge_path=CHALLENGE_PATH,
        field=FIELD,
    )
    vendor = Vendor(PROVIDER_TIMEOUT)
    breaker = CircuitBreaker(FAILURE_THRESHOLD, reset_timeout)
    geetest = GeeTest(
        vendor.emulator.captcha_id,
        vendor.emulator.captcha_key,
        endpoint=vendor.endpoint,
        timeout=PROVIDER_TIMEOUT,
        breaker=breaker,
    )
    panel = Panel({"geetest": breaker}, local=("proof_of_work",))
    return CaptchaGuard(
        site(vendor=vendor, panel=panel, max_number=max_number, reset_timeout=reset_timeout),
        rules=[Rule("/login"), Rule(COMMENT_PATH, provider="geetest")],
        provider=provider,
        providers={"geetest": geetest},
        on_reject=refusal,
        event_hooks=panel.hooks(),
    )


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    announce: Callable[[str], None] = print,
) -> None:
    """Run the demo under uvicorn until interrupted. ``port=0`` lets the OS pick one; the URL
    is announced once the socket listens, so whoever reads it can connect at once."""
    import uvicorn  # the demo extra; the library itself does not need it

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    announce(f"captcha_guard demo: open http://{shown}:{bound}/ (Ctrl+C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(
            "note: browsers give Web Crypto only to secure contexts; from another machine "
            "the page needs HTTPS (or open it as http://127.0.0.1 on this one)."
        )
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="info"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


__all__ = [
    "CHALLENGE_PATH",
    "COMMENT_PATH",
    "DEMO_MAX_NUMBER",
    "FIELD",
    "MODES",
    "RESET_TIMEOUT",
    "Vendor",
    "create_app",
    "refusal",
    "serve",
    "site",
]
