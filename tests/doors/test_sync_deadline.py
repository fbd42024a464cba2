"""The WSGI door's default client (urllib3) bounds the whole provider call by its timeout: a
provider that trickles its answer a byte at a time never lets one read time out, and held a
worker 15 s with ``timeout=2`` (issue 15, section 7). A real server on 127.0.0.1 trickles."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from captcha_guard import GeeTest
from captcha_guard._effects import ProviderCall
from captcha_guard._sync import TIMEOUT, Urllib3Sender
from captcha_guard.providers._wire import ProviderRequest
from captcha_guard.testing import GeeTestEmulator
from tests.doors.test_wsgi import call, environ_for, form, guard_for

ANSWER = b'{"result": "success", "reason": "", "captcha_args": {}}'
#: How long the server would take to trickle its answer whole: far past any timeout here.
TRICKLE_FOR = 20.0


@contextmanager
def trickling_server(*, head_at_once: bool) -> Iterator[str]:
    """A provider that reads a request, then sends its answer one byte every 20 ms (the status
    line and headers too, unless ``head_at_once``). Stops at once when the test ends."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            with conn.makefile("rb") as request:  # its head is all the provider waits for
                if not any(line == b"\r\n" for line in request):
                    return
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            head += b"content-length: %d\r\n\r\n" % (len(ANSWER) * 1000)
            body = ANSWER + b" " * (len(ANSWER) * 999)
            start = 0
            if head_at_once:
                conn.sendall(head)
                data = body
            else:
                data = head + body
            step = max(1, len(data) // int(TRICKLE_FOR / 0.02))
            while start < len(data) and not stop.wait(0.02):
                try:
                    conn.sendall(data[start : start + step])
                except OSError:
                    return
                start += step

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/validate"
    finally:
        stop.set()
        socket.create_connection(("127.0.0.1", port)).close()  # wakes accept()
        thread.join(5)
        listener.close()


@pytest.mark.parametrize("head_at_once", [False, True], ids=["trickled-head", "trickled-body"])
def test_a_trickled_answer_times_out_within_the_timeout(head_at_once: bool) -> None:
    sender = Urllib3Sender()
    timeout = 0.5
    try:
        with trickling_server(head_at_once=head_at_once) as url:
            call_ = ProviderCall(ProviderRequest("POST", url, body=b"x=1"), timeout, "t")
            started = time.monotonic()
            result = sender.send(call_)
            elapsed = time.monotonic() - started
    finally:
        sender.close()
    assert result == TIMEOUT
    # The bound is the timeout (plus one read's scheduling), not the 20 s the answer takes.
    assert elapsed < timeout + 1.0, elapsed


def test_the_wsgi_door_falls_back_on_time_when_the_provider_trickles() -> None:
    emulator = GeeTestEmulator()
    with trickling_server(head_at_once=True) as url:
        provider = GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint=url, timeout=0.5)
        guard = guard_for(provider)
        try:
            started = time.monotonic()
            status, _, body = call(guard, environ_for("/login", form(emulator.issue())))
            elapsed = time.monotonic() - started
        finally:
            guard.close()
    assert status.startswith("200")
    assert json.loads(body)["outcome"] == "fallback"
    assert elapsed < 0.5 + 1.0, elapsed


def test_a_prompt_answer_still_reads_whole_and_the_connection_is_reused() -> None:
    emulator = GeeTestEmulator()
    with emulator.serve() as upstream:
        provider = GeeTest(
            emulator.captcha_id,
            emulator.captcha_key,
            endpoint=upstream.endpoint("/validate"),
            timeout=0.5,
        )
        guard = guard_for(provider)
        try:
            for _ in range(3):
                status, _, body = call(guard, environ_for("/login", form(emulator.issue())))
                assert status.startswith("200") and json.loads(body)["outcome"] == "passed"
            pool = guard._sender._pool  # type: ignore[union-attr]
            (connections,) = [p.num_connections for p in pool.pools._container.values()]
        finally:
            guard.close()
    assert connections == 1
