"""The WSGI site tests/doors/test_wsgi.py serves under real gunicorn workers to cut off a client
that trickles its body: ``gunicorn tests.doors.slow_body_app:app``. ``POST /login`` is protected
with a body deadline of ``BODY_TIMEOUT`` seconds; ``GET /about`` is not."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from captcha_guard import GeeTest, Rule, WSGICaptchaGuard

BODY_TIMEOUT = 0.3


def inner(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("content-type", "text/plain"), ("content-length", "2")])
    return [b"ok"]


app = WSGICaptchaGuard(
    inner,
    rules=[Rule("/login")],
    provider=GeeTest("647f5ed2ed8acb4be36784e01556bb71", "key", endpoint="http://127.0.0.1:9/"),
    body_timeout=BODY_TIMEOUT,
)
