from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.responses import PlainTextResponse

from captcha_guard import CaptchaGuard, Denial, GeeTest, Outcome, Rule, Verdict
from captcha_guard._responses import (
    UNAVAILABLE_REASON,
    bad_request,
    rejected,
    render,
    status_line,
    too_large,
    unavailable,
    wants_json,
)
from captcha_guard.testing import GeeTestEmulator, Outage
from tests.helpers import (
    RecordingApp,
    assert_logs_clean,
    body_receive,
    call,
    geetest_env,
    http_scope,
)

VERDICT = Verdict(Outcome.REJECTED, "geetest: pass_token expire", "geetest")


def _guard(app: Any = None, **kwargs: Any) -> CaptchaGuard:
    kwargs.setdefault(
        "provider", GeeTest("647f5ed2ed8acb4be36784e01556bb71", "k", endpoint="http://127.0.0.1:9/")
    )
    return CaptchaGuard(app or RecordingApp(), rules=[Rule("/login")], **kwargs)


# ---------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("accept", "content_type", "expected"),
    [
        ("application/json", "", True),
        ("text/html, application/json;q=0.9", "", True),
        ("application/problem+json", "", True),
        ("", "application/json", True),
        ("*/*", "application/json; charset=utf-8", True),
        ("APPLICATION/JSON", "", True),
        ("", "", False),
        ("*/*", "", False),
        ("text/html,application/xhtml+xml", "application/x-www-form-urlencoded", False),
        ("", "multipart/form-data; boundary=x", False),
    ],
)
def test_wants_json(accept: str, content_type: str, expected: bool) -> None:
    assert wants_json(accept, content_type) is expected


def test_json_answer() -> None:
    headers, body = render(rejected(VERDICT), as_json=True)
    assert json.loads(body) == {"error": "captcha_rejected", "reason": VERDICT.reason}
    names = dict(headers)
    assert names["content-type"] == "application/json"
    assert names["content-length"] == str(len(body))
    assert names["cache-control"] == "no-store"
    assert "connection" not in names


def test_html_answer_is_escaped() -> None:
    denial = Denial(403, "captcha_rejected", "<script>alert('x')</script> & more")
    headers, body = render(denial, as_json=False)
    page = body.decode()
    assert dict(headers)["content-type"] == "text/html; charset=utf-8"
    assert "<title>403 Forbidden</title>" in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in page


@pytest.mark.parametrize(
    ("denial", "status", "error"),
    [
        (bad_request("bad JSON"), 400, "bad_request"),
        (rejected(VERDICT), 403, "captcha_rejected"),
        (too_large(10), 413, "body_too_large"),
        (unavailable(VERDICT), 503, "captcha_unavailable"),
    ],
)
def test_every_denial(denial: Denial, status: int, error: str) -> None:
    assert (denial.status, denial.error) == (status, error)
    headers, _ = render(denial, as_json=True)
    # An answer given before the body was read leaves the connection in an unknown state.
    assert (("connection", "close") in headers) == (status in (400, 413))
    assert status_line(status).startswith(str(status) + " ")


def test_denials_with_a_verdict_carry_it() -> None:
    assert rejected(VERDICT).verdict is VERDICT
    assert unavailable(VERDICT).verdict is VERDICT
    assert too_large(5).reason == "body over 5 bytes"


# ---------------------------------------------------------------- through the middleware


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("headers", "as_json"),
    [
        ([(b"accept", b"application/json")], True),
        ([(b"content-type", b"application/json")], True),
        ([(b"accept", b"text/html")], False),
        ([], False),
        ([(b"content-type", b"application/x-www-form-urlencoded")], False),
    ],
)
async def test_the_gates_own_answer_is_json_or_html(
    headers: list[tuple[bytes, bytes]], as_json: bool
) -> None:
    app = RecordingApp()
    sent = await call(_guard(app), http_scope(headers=headers), body_receive(b"{}"))
    assert sent.status == 403
    assert app.calls == 0
    if as_json:
        assert sent.headers["content-type"] == "application/json"
        answer = json.loads(sent.body)
        assert answer == {"error": "captcha_rejected", "reason": "missing lot_number"}
    else:
        assert sent.headers["content-type"].startswith("text/html")
        assert b"missing lot_number" in sent.body


@pytest.mark.asyncio
async def test_503_is_json_for_json_clients(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with geetest_env() as env:
        env.emulator.outage = Outage.REFUSE
        app = RecordingApp()
        guard = CaptchaGuard(
            app,
            rules=[Rule("/login", fail_open=False)],
            provider=env.provider(timeout=2),
        )
        body = json.dumps(env.issue()).encode()
        headers = [(b"content-type", b"application/json")]
        try:
            sent = await call(guard, http_scope(headers=headers), body_receive(body))
        finally:
            await guard.aclose()
    assert sent.status == 503
    # The body names no cause: "connect error" would tell a prober the provider's state.
    assert json.loads(sent.body) == {"error": "captcha_unavailable", "reason": UNAVAILABLE_REASON}
    assert app.calls == 0
    assert_logs_clean(caplog.records, *env.secrets)


@pytest.mark.asyncio
async def test_on_reject_replaces_the_answer() -> None:
    seen: list[Denial] = []

    def on_reject(denial: Denial, scope: Any) -> Any:
        seen.append(denial)
        return PlainTextResponse(f"no: {denial.error}", status_code=418)

    app = RecordingApp()
    guard = _guard(app, on_reject=on_reject)
    body = urlencode({"lot_number": "x"}).encode()
    headers = [(b"content-type", b"application/x-www-form-urlencoded")]
    sent = await call(guard, http_scope(headers=headers), body_receive(body))
    assert sent.status == 418
    assert sent.body == b"no: captcha_rejected"
    assert app.calls == 0
    (denial,) = seen
    assert denial.status == 403
    assert denial.reason == "missing captcha_output"

    too_big = _guard(app, on_reject=on_reject, max_body_size=3)
    headers = [(b"content-length", b"10")]
    sent = await call(too_big, http_scope(headers=headers), body_receive(b"x" * 10))
    assert sent.status == 418
    assert seen[-1].status == 413
    assert app.calls == 0


class _MarkupEmulator(GeeTestEmulator):
    """A vendor whose failure reason carries markup: it must reach a browser inert."""

    def answer(self, request: httpx.Request) -> httpx.Response:
        reason = '<img src=x onerror="alert(1)">'
        return httpx.Response(200, json={"status": "success", "result": "fail", "reason": reason})


@pytest.mark.asyncio
async def test_a_vendor_reason_is_escaped_in_the_html_answer() -> None:
    with geetest_env(_MarkupEmulator()) as env:
        app = RecordingApp()
        guard = CaptchaGuard(app, rules=[Rule("/login")], provider=env.provider())
        body = urlencode(env.issue()).encode()
        headers = [(b"content-type", b"application/x-www-form-urlencoded")]
        try:
            sent = await call(guard, http_scope(headers=headers), body_receive(body))
        finally:
            await guard.aclose()
    assert sent.status == 403
    assert sent.headers["content-type"].startswith("text/html")
    assert b"<img" not in sent.body
    assert b"&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in sent.body
    assert app.calls == 0
