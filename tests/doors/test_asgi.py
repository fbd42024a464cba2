"""CaptchaGuard, the ASGI front door, against the GeeTest emulator served for real."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from captcha_guard import CaptchaGuard, CircuitBreaker, GeeTest, Outcome, Rule
from captcha_guard._breaker import State
from captcha_guard.providers.geetest import sign_token
from captcha_guard.testing import GeeTestEmulator, Outage
from tests import TLS
from tests.doors import asgi_kit
from tests.doors.asgi_kit import guard as _guard
from tests.doors.asgi_kit import levels as _levels
from tests.helpers import (
    FakeClock,
    GeeTestEnv,
    RecordingApp,
    asgi_client,
    assert_logs_clean,
    body_receive,
    call,
    form_headers,
    geetest_env,
    http_scope,
)
from tests.servers import serve_asgi

env = asgi_kit.env

TIMEOUT = 0.3  # the provider timeout of the outage tests

# ---------------------------------------------------------------- pass and fail


@pytest.mark.asyncio
async def test_a_solved_captcha_passes(env: GeeTestEnv, caplog: pytest.LogCaptureFixture) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    fields = env.issue()
    async with asgi_client(guard) as client:
        response = await client.post("/login", data={**fields, "user": "zoë"})
    assert response.status_code == 200
    answer = response.json()
    assert answer["outcome"] == "passed"
    assert answer["details"]["captcha_args"]["lot_number"] == fields["lot_number"]
    assert env.emulator.calls == 1
    assert app.calls == 1
    assert _levels(caplog) == []  # nothing above DEBUG on the passing path


def _replayed(env: GeeTestEnv) -> dict[str, str]:
    fields = env.issue()
    signed = {**fields, "sign_token": sign_token(env.emulator.captcha_key, fields["lot_number"])}
    with httpx.Client(verify=TLS) as client:  # spend it first, straight at the emulator
        spent = client.post(
            env.server.endpoint("/validate"),
            params={"captcha_id": env.emulator.captcha_id},
            data=signed,
        )
    assert spent.json()["result"] == "success"
    return fields


FAIL_CASES = {
    "replayed": ("pass_token expire", _replayed),
    "forged pass_token": ("pass_token error", lambda env: {**env.issue(), "pass_token": "ab" * 32}),
    "forged output": ("captcha_output error", lambda env: {**env.issue(), "captcha_output": "X"}),
    "other gen_time": ("captcha_output error", lambda env: {**env.issue(), "gen_time": "1"}),
    "unknown lot": ("-50301", lambda env: {**env.issue(), "lot_number": "ab" * 16}),
    "lot not hex": ("-50303", lambda env: {**env.issue(), "lot_number": "XY" * 16}),
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", sorted(FAIL_CASES))
async def test_each_fail_reason_is_403(
    env: GeeTestEnv, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    reason, make = FAIL_CASES[case]
    app = RecordingApp()
    breaker = CircuitBreaker(failure_threshold=1)
    guard = _guard(env, app, breaker=breaker)
    fields = make(env)
    calls_before = env.emulator.calls
    async with asgi_client(guard) as client:
        response = await client.post("/login", data=fields, headers={"accept": "application/json"})
    assert response.status_code == 403
    assert response.json()["error"] == "captcha_rejected"
    assert reason in response.json()["reason"]
    assert app.calls == 0
    assert env.emulator.calls == calls_before + 1
    assert breaker.state is State.CLOSED  # the user's fault is a healthy call
    assert _levels(caplog) == []


@pytest.mark.asyncio
async def test_an_expired_lot_is_403(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = FakeClock(start=1_700_000_000.0)
    with geetest_env(GeeTestEmulator(clock=clock)) as env:
        app = RecordingApp()
        guard = _guard(env, app)
        fields = env.issue()
        clock.advance(601)
        async with asgi_client(guard) as client:
            response = await client.post("/login", data=fields)
    assert response.status_code == 403
    assert "-50305" in response.text
    assert app.calls == 0
    assert _levels(caplog) == []
    assert_logs_clean(caplog.records, *env.secrets)


@pytest.mark.asyncio
async def test_a_wrong_captcha_key_is_403_and_an_error_log(
    env: GeeTestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    app = RecordingApp()
    guard = _guard(env, app, captcha_key="0123456789abcdef0123456789abcdef")
    async with asgi_client(guard) as client:
        response = await client.post("/login", data=env.issue())
    assert response.status_code == 403
    assert "illegal sign_token" in response.text
    assert app.calls == 0
    (record,) = _levels(caplog)
    assert record.levelno == logging.ERROR
    assert "captcha_key" in record.getMessage()
    assert_logs_clean(caplog.records, "0123456789abcdef0123456789abcdef")


@pytest.mark.asyncio
async def test_an_unknown_captcha_id_is_an_operator_fault(
    env: GeeTestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    app = RecordingApp()
    provider = GeeTest("0" * 32, "some-key", endpoint=env.server.endpoint("/validate"))
    guard = CaptchaGuard(app, rules=[Rule("/login")], provider=provider)
    async with asgi_client(guard) as client:
        response = await client.post("/login", data=env.issue())
    assert response.json()["outcome"] == "fallback"
    (record,) = _levels(caplog)
    assert record.levelno == logging.ERROR
    assert "-50103" in record.getMessage()
    assert_logs_clean(caplog.records, "some-key")


# ---------------------------------------------------------------- malformed fields


MALFORMED = {
    "gen_time=abc": lambda f: urlencode({**f, "gen_time": "abc"}),
    "gen_time empty": lambda f: urlencode({**f, "gen_time": ""}),
    "lot_number with a dash": lambda f: urlencode({**f, "lot_number": "4dc3cfc2-cdff"}),
    "captcha_output with a space": lambda f: urlencode({**f, "captcha_output": "a b"}),
    "pass_token too long": lambda f: urlencode({**f, "pass_token": "a" * 257}),
    "pass_token missing": lambda f: urlencode({k: v for k, v in f.items() if k != "pass_token"}),
    "lot_number twice": lambda f: urlencode(f) + "&lot_number=" + f["lot_number"],
}


@pytest.mark.asyncio
@pytest.mark.parametrize("state", ["up", "failing", "circuit open"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_fields_are_403_without_a_provider_call(
    env: GeeTestEnv, caplog: pytest.LogCaptureFixture, state: str, case: str
) -> None:
    app = RecordingApp()
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=30, clock=clock)
    guard = _guard(env, app, timeout=TIMEOUT, breaker=breaker)
    if state == "failing":
        env.emulator.outage = Outage.HTTP_500
    elif state == "circuit open":
        breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
    body = MALFORMED[case](env.issue()).encode()
    async with asgi_client(guard) as client:
        response = await client.post(
            "/login",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 403
    assert env.emulator.calls == 0
    assert app.calls == 0
    assert _levels(caplog) == []  # no fallback was even considered
    expected = State.OPEN if state == "circuit open" else State.CLOSED
    assert breaker.state is expected


@pytest.mark.asyncio
async def test_json_fields_that_are_not_strings_are_403_without_a_provider_call(
    env: GeeTestEnv,
) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    fields: dict[str, Any] = dict(env.issue())
    fields["gen_time"] = int(fields["gen_time"])
    async with asgi_client(guard) as client:
        response = await client.post("/login", json=fields)
    assert response.status_code == 403
    assert response.json() == {"error": "captcha_rejected", "reason": "gen_time is not a string"}
    assert env.emulator.calls == 0


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{"),
        ("application/json", b"[" * 10_000),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data"),
        ("multipart/form-data", b"whatever"),
        # parsers disagree on the part's name (RFC 2231): a 400, not a guess
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name*=a\r\n\r\n1\r\n--x--\r\n",
        ),
    ],
)
async def test_unparseable_bodies_are_400_without_a_provider_call(
    env: GeeTestEnv, content_type: str, body: bytes
) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    async with asgi_client(guard) as client:
        response = await client.post("/login", content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert response.headers["connection"] == "close"
    assert env.emulator.calls == 0
    assert app.calls == 0


# ---------------------------------------------------------------- other field sources


@pytest.mark.asyncio
async def test_fields_in_the_query_string(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    query = urlencode(env.issue()).encode()
    try:
        sent = await call(guard, http_scope(query_string=query), body_receive(b""))
    finally:
        await guard.aclose()
    assert sent.status == 200
    assert app.verdicts[0].outcome is Outcome.PASSED


@pytest.mark.asyncio
async def test_fields_in_the_x_captcha_header_with_a_json_body(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    async with asgi_client(guard) as client:
        response = await client.post(
            "/login", json={"email": "a@b.c"}, headers={"x-captcha": urlencode(env.issue())}
        )
    assert response.json()["outcome"] == "passed"


@pytest.mark.asyncio
async def test_fields_nested_under_captcha_in_json(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    async with asgi_client(guard) as client:
        response = await client.post("/login", json={"email": "a@b.c", "captcha": env.issue()})
    assert response.json()["outcome"] == "passed"


# ---------------------------------------------------------------- bodies, over a real server


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _bodies(fields: dict[str, str]) -> dict[str, tuple[bytes, dict[str, str]]]:
    form = urlencode({**fields, "user": "zoë", "note": "a&b=c"}).encode()
    multipart = httpx.Request(
        "POST",
        "http://x/",
        data={**fields, "user": "zoë"},
        files={"upload": ("photo.bin", os.urandom(200_000), "application/octet-stream")},
    )
    return {
        "form": (form, {"content-type": "application/x-www-form-urlencoded"}),
        "multipart": (multipart.read(), {"content-type": multipart.headers["content-type"]}),
        "json": (
            json.dumps({"email": "zoë@example.com", "captcha": fields}).encode(),
            {"content-type": "application/json"},
        ),
    }


@pytest.mark.parametrize("kind", ["form", "multipart", "json", "chunked form", "chunked json"])
def test_the_app_receives_the_exact_bytes_sent(env: GeeTestEnv, kind: str) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    chunked = kind.startswith("chunked")
    body, headers = _bodies(env.issue())[kind.removeprefix("chunked ")]
    with serve_asgi(guard) as url:
        content: Any = _chunks(body) if chunked else body
        response = httpx.post(url + "/login", content=content, headers=headers, verify=TLS)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] == "passed"
    assert answer["sha256"] == _sha(body)
    assert app.bodies == [body]
    sent_headers = app.headers[0]
    if chunked:  # it did travel chunked, with no length announced
        assert sent_headers.get(b"transfer-encoding") == b"chunked"
        assert b"content-length" not in sent_headers
    else:
        assert sent_headers[b"content-length"] == str(len(body)).encode()


def test_multipart_with_a_file_passes_and_the_file_is_intact(env: GeeTestEnv) -> None:
    captured: dict[str, Any] = {}

    async def upload(request: Request) -> JSONResponse:
        form = await request.form()
        upload = form["upload"]
        data = await upload.read()  # type: ignore[union-attr]
        captured["sha"] = _sha(data)
        return JSONResponse({"outcome": request.state.captcha.outcome.value})

    data = os.urandom(300_000)
    starlette = Starlette(routes=[Route("/login", upload, methods=["POST"])])
    guard = _guard(env, starlette)
    with serve_asgi(guard) as url:
        response = httpx.post(
            url + "/login",
            data=env.issue(),
            files={"upload": ("big.bin", data, "application/octet-stream")},
            verify=TLS,
        )
    assert response.json() == {"outcome": "passed"}
    assert captured["sha"] == _sha(data)


def test_413_when_content_length_is_over_the_limit(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app, max_body_size=1000)
    fields = env.issue()
    body = urlencode({**fields, "pad": "x" * 1000}).encode()
    with serve_asgi(guard) as url:
        response = httpx.post(
            url + "/login",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
            verify=TLS,
        )
        fits = httpx.post(url + "/login", data=env.issue(), verify=TLS)
    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert "1000 bytes" in response.text
    assert fits.status_code == 200
    assert app.calls == 1
    assert env.emulator.calls == 1


def test_413_when_a_chunked_body_grows_over_the_limit(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app, max_body_size=1000)
    body = urlencode({**env.issue(), "pad": "x" * 1000}).encode()
    with serve_asgi(guard) as url:
        response = httpx.post(
            url + "/login",
            content=_chunks(body, 300),
            headers={"content-type": "application/x-www-form-urlencoded"},
            verify=TLS,
        )
    assert response.status_code == 413
    assert app.calls == 0
    assert env.emulator.calls == 0


def test_a_client_that_leaves_mid_body_never_reaches_the_app(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    finished = threading.Event()

    async def watched(scope: Any, receive: Any, send: Any) -> None:
        try:
            await guard(scope, receive, send)
        finally:
            if scope["type"] == "http":
                finished.set()

    body = urlencode(env.issue()).encode()
    with serve_asgi(watched) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            head = (
                "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body) + 500}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
        assert finished.wait(5), "the middleware never returned"
    assert app.calls == 0
    assert env.emulator.calls == 0


# ---------------------------------------------------------------- what passes through


@pytest.mark.asyncio
async def test_unmatched_requests_get_the_original_receive(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    for method, path in [("GET", "/login"), ("POST", "/other"), ("OPTIONS", "/login")]:
        receive = body_receive(b"untouched")
        sent = await call(guard, http_scope(path, method), receive)
        assert sent.status == 200
        assert app.receives[-1] is receive
        assert app.verdicts[-1] is None
    assert app.bodies == [b"untouched"] * 3
    assert guard._sender is None  # nothing was even prepared


@pytest.mark.asyncio
async def test_the_replayed_body_is_followed_by_the_real_receive(env: GeeTestEnv) -> None:
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        seen.append(await receive())  # the client is gone: the app must see it
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    guard = _guard(env, app)
    body = urlencode(env.issue()).encode()
    try:
        sent = await call(guard, http_scope(headers=form_headers(body)), body_receive(body, 5))
    finally:
        await guard.aclose()
    assert sent.status == 204
    assert seen == [
        {"type": "http.request", "body": body, "more_body": False},
        {"type": "http.disconnect"},
    ]


@pytest.mark.asyncio
async def test_a_bad_content_length_is_400(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    for value in (b"abc", b"-1", b"1e3", "²".encode()):
        headers = [(b"content-type", b"application/x-www-form-urlencoded")]
        headers.append((b"content-length", value))
        sent = await call(guard, http_scope(headers=headers), body_receive(b""))
        assert sent.status == 400
    assert app.calls == 0


@pytest.mark.asyncio
async def test_websocket_and_lifespan_pass_through_untouched(env: GeeTestEnv) -> None:
    seen: list[tuple[Any, Any, Any]] = []
    messages: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))
        if scope["type"] == "lifespan":
            messages.append(await receive())
            messages.append(await receive())

    guard = _guard(env, app, rules=[Rule("/{path:path}", methods=["GET", "POST"])])
    ws_scope = {"type": "websocket", "path": "/login", "headers": [], "query_string": b""}
    ws_receive, ws_send = body_receive(b""), object()
    await guard(ws_scope, ws_receive, ws_send)  # type: ignore[arg-type]
    assert seen[0][0] is ws_scope and seen[0][1] is ws_receive and seen[0][2] is ws_send

    queue = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def lifespan_receive() -> Any:
        return queue.pop(0)

    ls_scope, ls_send = {"type": "lifespan", "asgi": {"version": "3.0"}}, object()
    await guard(ls_scope, lifespan_receive, ls_send)  # type: ignore[arg-type]
    assert seen[1][0] is ls_scope and seen[1][2] is ls_send
    assert messages == [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]


def test_the_verdict_is_in_request_state(env: GeeTestEnv) -> None:
    async def login(request: Request) -> JSONResponse:
        verdict = request.state.captcha
        return JSONResponse({"outcome": verdict.outcome, "provider": verdict.provider})

    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"has_verdict": hasattr(request.state, "captcha")})

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/", home)])
    app.add_middleware(CaptchaGuard, rules=[Rule("/login")], provider=env.provider())
    with serve_asgi(app, lifespan="on") as url:
        passed = httpx.post(url + "/login", data=env.issue(), verify=TLS)
        home_page = httpx.get(url + "/", verify=TLS)
    assert passed.json() == {"outcome": "passed", "provider": "geetest"}
    assert home_page.json() == {"has_verdict": False}


def test_lifespan_shutdown_closes_the_middlewares_own_client(env: GeeTestEnv) -> None:
    async def login(request: Request) -> JSONResponse:
        return JSONResponse({"outcome": request.state.captcha.outcome})

    app = Starlette(routes=[Route("/login", login, methods=["POST"])])
    guard = _guard(env, app)
    with serve_asgi(guard, lifespan="on") as url:
        assert httpx.post(url + "/login", data=env.issue(), verify=TLS).json() == {
            "outcome": "passed"
        }
        own = guard._sender
        assert own is not None and not own.session.closed
        session = own.session
    assert session.closed
    assert guard._sender is None


def test_lifespan_shutdown_leaves_a_user_supplied_client_open(env: GeeTestEnv) -> None:
    user_client = httpx.AsyncClient(transport=env.emulator.transport())
    app = RecordingApp()
    guard = _guard(env, app, http_client=user_client)
    with serve_asgi(guard, lifespan="on") as url:
        assert (
            httpx.post(url + "/login", data=env.issue(), verify=TLS).json()["outcome"] == "passed"
        )
    assert not user_client.is_closed
    assert guard.http_client is user_client
    assert env.emulator.calls == 1  # it went through the user's client (in-process transport)
    anyio.run(user_client.aclose)


@pytest.mark.asyncio
async def test_aclose_is_idempotent_and_a_new_client_is_made_after(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    async with asgi_client(guard) as client:
        assert (await client.post("/login", data=env.issue())).status_code == 200
        first = guard._sender
        assert first is not None
        session = first.session
        await guard.aclose()
        await guard.aclose()
        assert session.closed
        assert (await client.post("/login", data=env.issue())).status_code == 200
        assert guard._sender is not None and guard._sender is not first


def test_the_pooled_client_reuses_its_connection(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    with serve_asgi(guard, lifespan="on") as url, httpx.Client(verify=TLS) as client:
        for _ in range(5):
            assert client.post(url + "/login", data=env.issue()).json()["outcome"] == "passed"
    assert env.server.connections == 1


@pytest.mark.asyncio
async def test_two_x_captcha_headers_are_a_duplicate_not_a_silent_pick(env: GeeTestEnv) -> None:
    app = RecordingApp()
    guard = _guard(env, app)
    good, other = urlencode(env.issue()).encode(), urlencode(env.issue()).encode()
    headers = [(b"x-captcha", good), (b"x-captcha", other), (b"content-length", b"0")]
    try:
        sent = await call(guard, http_scope(headers=headers), body_receive(b""))
    finally:
        await guard.aclose()
    assert sent.status == 403
    assert b"duplicated lot_number" in sent.body
    assert env.emulator.calls == 0
    assert app.calls == 0


def test_the_first_content_type_header_is_the_one_parsed_as_in_starlette() -> None:
    from captcha_guard._request import read_headers

    head = read_headers([(b"content-type", b"application/json"), (b"content-type", b"text/plain")])
    assert head["content-type"] == "application/json"


@pytest.mark.asyncio
async def test_provider_calls_name_their_agent(env: GeeTestEnv) -> None:
    from captcha_guard import __version__

    guard = _guard(env)
    async with asgi_client(guard) as client:
        assert (await client.post("/login", data=env.issue())).status_code == 200
    await guard.aclose()
    assert env.emulator.requests[-1].headers["user-agent"] == f"captcha-guard/{__version__}"
