"""The demo site: a sign-in form behind ``CaptchaGuard`` with the self-hosted ``ProofOfWork``.

``create_app()`` is the whole ASGI app (tests serve it on port 0); ``serve()`` runs it under
uvicorn for ``python -m captcha_guard demo``.
"""

from __future__ import annotations

import html
import json
import secrets
import socket
from collections.abc import Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import CaptchaGuard, ProofOfWork, Rule
from .._types import ASGIApp, Scope
from ..responses import Denial, status_line

#: Small enough that a laptop solves it in about a second, large enough to see the progress.
DEMO_MAX_NUMBER = 200_000
CHALLENGE_PATH = "/captcha-guard/challenge"
FIELD = "altcha"
EXPIRES = 300

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


def site(*, max_number: int = DEMO_MAX_NUMBER) -> Starlette:
    """The app behind the gate. It never checks a captcha itself: it only reads the verdict."""
    index = _static("index.html").format(
        challenge_path=html.escape(CHALLENGE_PATH),
        field=html.escape(FIELD),
        max_number=f"{max_number:,}",
        expires=EXPIRES,
    )
    assets = {
        "demo.js": (_static("demo.js"), "text/javascript; charset=utf-8"),
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

    return Starlette(
        routes=[
            Route("/", home),
            Route("/static/{name}", asset),
            Route("/login", login, methods=["POST"]),
            Route("/login", login_page, methods=["GET"]),
        ]
    )


def refusal(denial: Denial, scope: Scope) -> ASGIApp:
    """The gate's own answer (403 and friends), as a page that says who answered and why."""
    body = (
        f'<h1 class="denied">{html.escape(status_line(denial.status))}</h1>'
        "<p>The gate answered this request itself. The app's <code>/login</code> handler "
        "never ran.</p>"
        + _verdict_rows({"status": denial.status, "error": denial.error, "reason": denial.reason})
    )
    return _page(status_line(denial.status), body, status=denial.status)


def create_app(secret: str | None = None, *, max_number: int = DEMO_MAX_NUMBER) -> CaptchaGuard:
    """The demo site behind the gate. Without ``secret`` a random one is made for this process:
    fine for a demo, whose challenges need not outlive it."""
    provider = ProofOfWork(
        secret if secret is not None else secrets.token_urlsafe(32),
        max_number=max_number,
        expires=EXPIRES,
        challenge_path=CHALLENGE_PATH,
        field=FIELD,
    )
    return CaptchaGuard(
        site(max_number=max_number),
        rules=[Rule("/login")],
        provider=provider,
        on_reject=refusal,
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


__all__ = ["CHALLENGE_PATH", "DEMO_MAX_NUMBER", "FIELD", "create_app", "refusal", "serve", "site"]
