"""A clearance cookie through a real browser: headless Chromium gets it from uvicorn over
http://127.0.0.1 and sends it back.

The first tests use a minimal ASGI app that calls the clearance as the decision flow does, so
every branch of the cookie can be driven: ``issue_flow`` after a verified pass, ``check_flow``
on a rule that allows clearance, every yielded ``StateOp`` performed with ``await
state.arun(op)`` (or nothing yielded at all without shared state). The last test goes through
the real CaptchaGuard.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from captcha_guard import Clearance
from captcha_guard._clearance import rule_scope
from captcha_guard._memory import MemoryState
from captcha_guard._state import StateOp
from tests import TLS
from tests.browser import Browser, chromium
from tests.servers import serve_asgi

SECRET = "clearance-browser-test-secret-0123456789"
PAGE = b"<!doctype html><title>clearance</title><h1>clearance</h1>"


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        import time

        return time.time() + self.offset


class Opted:
    """A rule as the flow will see it: its pattern, methods and ``clearance`` setting."""

    def __init__(self, pattern: str, clearance: bool | str) -> None:
        self.pattern = pattern
        self.methods = frozenset({"POST"})
        self.clearance = clearance


RULES = {"/comments": Opted("/comments", True), "/login": Opted("/login", True)}


class FlowApp:
    """``POST /pass`` stands for a verified captcha pass on /comments (it issues the cookie);
    ``POST /comments`` and ``POST /login`` are rules that allow clearance; ``POST /revoke``
    revokes every clearance."""

    def __init__(self, clearance: Clearance, state: MemoryState | None) -> None:
        self.clearance = clearance
        #: None: the in-process state a door without ``state=`` has.
        self.given = state is not None
        self.state = state if state is not None else MemoryState()
        clearance.bind_state(self.state)

    async def _drive(self, flow: Generator[StateOp, Any, Any]) -> Any:
        try:
            op = next(flow)
            while True:
                try:
                    result = await self.state.arun(op)
                except Exception as exc:
                    op = flow.throw(exc)
                else:
                    op = flow.send(result)
        except StopIteration as stop:
            return stop.value

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        headers = scope["headers"]
        cookies = [value for name, value in headers if name == b"cookie"]
        agent = next((value for name, value in headers if name == b"user-agent"), None)
        host = next((value.decode("latin-1") for name, value in headers if name == b"host"), None)
        client = scope["client"][0] if scope.get("client") else None
        ctx = self.clearance.context(client, agent, scope["scheme"] == "https", host)
        status, body, extra = 404, {"error": "not_found"}, []
        path = scope["path"]
        if scope["method"] == "GET" and path == "/":
            await self._send(send, 200, PAGE, [(b"content-type", b"text/html")])
            return
        if scope["method"] == "POST" and path == "/pass":
            rule_scope_name = rule_scope(RULES["/comments"])
            assert rule_scope_name is not None
            header = await self._drive(self.clearance.issue_flow(ctx, rule_scope_name))
            status, body = 200, {"issued": header is not None}
            if header is not None:
                extra.append((b"set-cookie", header.encode("latin-1")))
        elif scope["method"] == "POST" and path == "/revoke":
            if not self.given:
                self.clearance.revoke_all()
            else:
                await self.clearance.arevoke_all(self.state)
            status, body = 200, {"revoked": True}
        elif scope["method"] == "POST" and path in RULES:
            name = rule_scope(RULES[path])
            assert name is not None
            check = await self._drive(self.clearance.check_flow(cookies, ctx, name))
            status = 200 if check.cleared else 403
            body = {"status": check.status.value}
        payload = json.dumps(body).encode()
        await self._send(send, status, payload, [(b"content-type", b"application/json"), *extra])

    @staticmethod
    async def _send(
        send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
    ) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


FETCH = """
const [path] = arguments;
window.__answer = null;
fetch(path, {method: "POST", credentials: "same-origin"})
  .then(async (r) => { window.__answer = {status: r.status, body: await r.json()}; })
  .catch((e) => { window.__answer = {status: -1, body: String(e)}; });
"""


def post(browser: Browser, path: str) -> tuple[int, dict[str, Any]]:
    browser.run("window.__answer = null;")
    browser.run(FETCH, path)
    answer = browser.wait_for("return window.__answer;", timeout=15, what=f"POST {path}")
    return int(answer["status"]), dict(answer["body"])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as session:
        yield session


def test_browser_gets_and_returns_the_cookie_in_process(browser: Browser) -> None:
    clock = Clock()
    clearance = Clearance(SECRET, ttl=900, clock=clock, secure=False)  # plain HTTP, loopback
    with serve_asgi(FlowApp(clearance, None)) as url:
        browser.get(url + "/")
        browser.delete_cookies()
        assert post(browser, "/comments") == (403, {"status": "absent"})
        assert post(browser, "/pass") == (200, {"issued": True})
        assert post(browser, "/comments") == (200, {"status": "valid"})
        assert post(browser, "/comments") == (200, {"status": "valid"})
        # Scoped: a clearance earned on /comments does not clear /login.
        assert post(browser, "/login") == (403, {"status": "absent"})

        # The browser stored it as asked: HttpOnly (no script reads it), Lax, host-only, /.
        assert browser.run("return document.cookie;") == ""
        (cookie,) = [c for c in browser.cookies() if c["name"].startswith("cg_clearance-")]
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax"
        assert cookie["path"] == "/" and cookie["secure"] is False  # plain HTTP, loopback
        assert cookie["domain"] == "127.0.0.1"  # host-only: no Domain attribute was sent
        assert 890 <= cookie["expiry"] - clock() <= 901

        # A stolen copy: worthless from another browser, good only with the same agent from
        # the same network (here both are 127.0.0.1: the binding cannot tell them apart).
        agent = browser.run("return navigator.userAgent;")
        stolen = {cookie["name"]: cookie["value"]}
        with httpx.Client(base_url=url, cookies=stolen, verify=TLS) as thief:
            answer = thief.post("/comments", headers={"user-agent": "python-httpx"})
            assert (answer.status_code, answer.json()) == (403, {"status": "wrong_binding"})
            answer = thief.post("/comments", headers={"user-agent": agent})
            assert (answer.status_code, answer.json()) == (200, {"status": "valid"})

        # Past ceil(issued + ttl) by the server's clock; the browser's own Max-Age has not run
        # out, so it still sends the cookie, and the server refuses it.
        clock.offset = 901
        assert post(browser, "/comments") == (403, {"status": "expired"})
        clock.offset = 0
        assert post(browser, "/revoke") == (200, {"revoked": True})
        assert post(browser, "/comments") == (403, {"status": "revoked"})
        assert post(browser, "/pass") == (200, {"issued": True})  # replaces the cookie
        assert post(browser, "/comments") == (200, {"status": "valid"})


def test_browser_with_shared_state_caps_uses_and_revokes(browser: Browser) -> None:
    state = MemoryState()  # stands for the door's state= (Redis in production)
    clearance = Clearance(SECRET, ttl=900, max_uses=2, recheck=0, secure=False)
    with serve_asgi(FlowApp(clearance, state)) as url:
        browser.get(url + "/")
        browser.delete_cookies()
        assert post(browser, "/pass") == (200, {"issued": True})
        assert post(browser, "/comments") == (200, {"status": "valid"})
        assert post(browser, "/comments") == (200, {"status": "valid"})
        assert post(browser, "/comments") == (403, {"status": "exhausted"})
        assert state.counted("clearance") == 1  # counted in the state
        assert post(browser, "/pass") == (200, {"issued": True})
        assert post(browser, "/comments") == (200, {"status": "valid"})
        # Another worker (its own Clearance, same secret, same state) revokes them all.
        Clearance(SECRET).revoke_all(state)
        assert post(browser, "/comments") == (403, {"status": "revoked"})


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throw-away self-signed certificate for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_browser_over_https_gets_a_secure_host_prefixed_cookie(
    certificate: tuple[Path, Path],
) -> None:
    cert, key = certificate
    clearance = Clearance(SECRET, ttl=600)
    app = FlowApp(clearance, None)
    # The browser closes before the server, so no TLS connection of its keeps uvicorn's
    # shutdown waiting.
    with (
        serve_asgi(app, ssl_certfile=str(cert), ssl_keyfile=str(key)) as url,
        chromium(accept_insecure_certs=True) as secure_browser,
    ):
        url = url.replace("http://", "https://", 1)
        secure_browser.get(url + "/")
        assert post(secure_browser, "/pass") == (200, {"issued": True})
        (cookie,) = secure_browser.cookies()
        # The browser accepted the __Host- prefix: Secure, Path=/, no Domain, over HTTPS.
        assert cookie["name"].startswith("__Host-cg_clearance-")
        assert cookie["secure"] is True and cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax" and cookie["path"] == "/"
        assert cookie["domain"] == "127.0.0.1"
        assert post(secure_browser, "/comments") == (200, {"status": "valid"})
        assert post(secure_browser, "/login") == (403, {"status": "absent"})


def test_browser_through_the_door(browser: Browser) -> None:
    """The real CaptchaGuard: a verified GeeTest pass in the browser earns the cookie, and the
    next post from that browser passes on it alone, with no captcha fields."""
    from captcha_guard import CaptchaGuard, GeeTest, Rule
    from captcha_guard.testing import GeeTestEmulator
    from tests.apps import echo_asgi

    emulator = GeeTestEmulator()

    async def site(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            fields = json.dumps(emulator.issue()).encode()  # what the widget would hand over
            body = PAGE + b"<script>window.solved = " + fields + b";</script>"
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        await echo_asgi(scope, receive, send)

    with emulator.serve() as upstream:
        provider = GeeTest(
            emulator.captcha_id, emulator.captcha_key, endpoint=upstream.endpoint("/validate")
        )
        guard = CaptchaGuard(
            site,
            rules=[Rule("/comments", clearance=True)],
            provider=provider,
            clearance=Clearance(SECRET, ttl=900, secure=False),
        )
        with serve_asgi(guard) as url:
            browser.get(url + "/")
            browser.delete_cookies()
            send = (
                "const [path, fields] = arguments;"
                "const r = await fetch(path, {method: 'POST',"
                " headers: {accept: 'application/json'}, body: new URLSearchParams(fields)});"
                "return [r.status, (await r.json()).outcome];"
            )
            run = "return (async () => {" + send + "})();"
            assert browser.run(run, "/comments", {}) == [403, None]
            assert browser.run(run.replace("fields)", "window.solved)"), "/comments", {}) == [
                200,
                "passed",
            ]
            assert emulator.calls == 1
            assert browser.run(run, "/comments", {}) == [200, "passed"]  # the cookie alone
            assert emulator.calls == 1  # no captcha was asked of the provider
            assert browser.run("return document.cookie;") == ""  # HttpOnly
