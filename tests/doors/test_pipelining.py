"""A pipelining client that leaves while the gate judges one of its requests (issue 8, part 7).

The gate cannot know the client left until it answers; what it must not do is add an error
of its own to the server's log (an exception from ``send``, a task never awaited). Run under
uvicorn with both HTTP parsers, with uvicorn's logging left to the test so every record shows.
"""

from __future__ import annotations

import logging
import socket
import threading
from urllib.parse import urlencode

import pytest

from captcha_guard import CaptchaGuard, GeeTest, Rule
from tests.helpers import GatedGeeTestEmulator, RecordingApp
from tests.servers import serve_asgi


def _request(body: bytes) -> bytes:
    head = (
        b"POST /login HTTP/1.1\r\nhost: app.test\r\n"
        b"content-type: application/x-www-form-urlencoded\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
    )
    return head + body


class _Answered(RecordingApp):
    """A recording app that also says when each call is over."""

    def __init__(self) -> None:
        super().__init__()
        self.done = threading.Semaphore(0)

    async def __call__(self, scope: object, receive: object, send: object) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if isinstance(scope, dict) and scope.get("type") == "http":
                self.done.release()


@pytest.mark.parametrize("http", ["h11", "httptools"])
def test_a_client_that_leaves_mid_pipeline_leaves_no_error_behind(
    http: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = GatedGeeTestEmulator(wait_limit=5)
    app = _Answered()
    with emulator.serve() as server:
        provider = GeeTest(
            emulator.captcha_id, emulator.captcha_key, endpoint=server.endpoint("/validate")
        )
        guard = CaptchaGuard(app, rules=[Rule("/login")], provider=provider)
        with (
            caplog.at_level(logging.WARNING),
            serve_asgi(guard, http=http, log_config=None) as url,
        ):
            port = int(url.rsplit(":", 1)[1])
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            first, second = (urlencode(emulator.issue()).encode() for _ in range(2))
            sock.sendall(_request(first) + _request(second))
            assert emulator.entered.wait(5)  # the first request is being judged
            emulator.entered.clear()
            emulator.release.set()
            assert app.done.acquire(timeout=5)  # the first reached the app and answered
            emulator.release.clear()
            assert emulator.entered.wait(5)  # the second is being judged
            sock.close()  # and the client leaves
            emulator.release.set()
            # The second call ends (the app runs, or the server drops it); either way, by the
            # time the server has shut down every task of ours has finished.
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert not any(r.exc_info for r in caplog.records)
    assert emulator.calls == 2
