"""WSGICaptchaGuard: in-process (checked by wsgiref's PEP 3333 validator) and under a real
threaded WSGI server on 127.0.0.1, against the GeeTest emulator served for real."""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import httpx
import pytest

from captcha_guard import CircuitBreaker, Denial, GeeTest, Rule, WSGICaptchaGuard
from captcha_guard._responses import UNAVAILABLE_REASON
from captcha_guard.testing import EmulatorServer, GeeTestEmulator, Outage
from captcha_guard.wsgi import VERDICT_KEY
from tests import ROOT, TLS
from tests.apps import echo_wsgi
from tests.servers import serve_wsgi

LIMIT = 4096


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def emulator() -> GeeTestEmulator:
    return GeeTestEmulator()


@pytest.fixture
def upstream(emulator: GeeTestEmulator) -> Iterator[EmulatorServer]:
    with emulator.serve() as server:
        yield server


def geetest(emulator: GeeTestEmulator, upstream: EmulatorServer, **options: Any) -> GeeTest:
    return GeeTest(
        emulator.captcha_id,
        emulator.captcha_key,
        endpoint=upstream.endpoint("/validate"),
        **options,
    )


def guard_for(provider: GeeTest, app: Any = echo_wsgi, **options: Any) -> WSGICaptchaGuard:
    options.setdefault("max_body_size", LIMIT)
    rules = [Rule("/login"), Rule("/strict", fail_open=False)]
    return WSGICaptchaGuard(validator(app), rules=rules, provider=provider, **options)


@pytest.fixture(params=["in-process", "threaded-server"])
def client(
    request: pytest.FixtureRequest, emulator: GeeTestEmulator, upstream: EmulatorServer
) -> Iterator[httpx.Client]:
    """A client talking to a guarded echo app in-process (through the validator) or over a
    socket to a real threaded server."""
    guard = guard_for(geetest(emulator, upstream))
    if request.param == "in-process":
        transport = httpx.WSGITransport(app=validator(guard))
        with httpx.Client(transport=transport, base_url="http://testserver") as client:
            yield client
    else:
        with serve_wsgi(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
            yield client
    guard.close()


def test_a_solved_captcha_passes_once_with_the_body_intact(
    client: httpx.Client, emulator: GeeTestEmulator
) -> None:
    fields = emulator.issue()
    blob = bytes(range(256)) * 8
    multipart = httpx.Request("POST", "http://x", data=fields, files={"avatar": ("a", blob)})
    sent = multipart.read()
    passed = client.post("/login", content=sent, headers=multipart.headers)
    replayed = client.post("/login", data=fields, headers={"accept": "application/json"})
    assert passed.status_code == 200
    assert passed.json() == {"outcome": "passed", "sha256": hashlib.sha256(sent).hexdigest()}
    assert replayed.status_code == 403
    assert replayed.json()["error"] == "captcha_rejected"
    assert "pass_token expire" in replayed.json()["reason"]


def test_a_malformed_field_is_rejected_without_asking_the_provider(
    client: httpx.Client, emulator: GeeTestEmulator
) -> None:
    fields = {**emulator.issue(), "gen_time": "abc"}
    answer = client.post("/login", data=fields)
    assert answer.status_code == 403
    assert "text/html" in answer.headers["content-type"]
    assert emulator.calls == 0


def test_an_unavailable_provider_falls_back_or_answers_503(
    client: httpx.Client, emulator: GeeTestEmulator
) -> None:
    emulator.outage = Outage.HTTP_500
    fallback = client.post("/login", json=emulator.issue())
    strict = client.post("/strict", json=emulator.issue())
    assert fallback.status_code == 200
    assert fallback.json()["outcome"] == "fallback"
    assert strict.status_code == 503
    # The cause ("HTTP 500") is in the verdict and the log, never in the body.
    assert strict.json() == {"error": "captcha_unavailable", "reason": UNAVAILABLE_REASON}


def test_bodies_too_large_or_unparseable_are_refused_before_the_provider(
    client: httpx.Client, emulator: GeeTestEmulator
) -> None:
    large = client.post("/login", content=b"x" * (LIMIT + 1))
    bad_json = client.post("/login", content=b"{nope", headers={"content-type": "application/json"})
    at_limit = client.post("/login", content=b"x" * LIMIT)
    assert large.status_code == 413
    assert bad_json.status_code == 400
    assert bad_json.json()["error"] == "bad_request"
    assert at_limit.status_code == 403  # read whole, then no fields: the client's fault
    assert emulator.calls == 0


def test_unprotected_requests_reach_the_app_untouched(
    client: httpx.Client, emulator: GeeTestEmulator
) -> None:
    page = client.get("/login")
    other = client.post("/elsewhere", content=b"hello")
    challenge = client.get("/captcha-guard/challenge")  # no proof-of-work configured
    assert page.json()["outcome"] is None
    assert other.json() == {"outcome": None, "sha256": hashlib.sha256(b"hello").hexdigest()}
    assert challenge.json()["outcome"] is None


def test_the_pooled_client_reuses_one_connection_and_close_closes_it(
    emulator: GeeTestEmulator, upstream: EmulatorServer
) -> None:
    guard = guard_for(geetest(emulator, upstream))
    with serve_wsgi(guard) as url:
        for _ in range(4):
            assert (
                httpx.post(url + "/login", data=emulator.issue(), verify=TLS).json()["outcome"]
                == "passed"
            )
    assert upstream.connections == 1
    sender = guard._sender
    assert sender is not None and sender._pool is not None
    pool = sender._pool
    guard.close()
    assert not pool.pools  # every connection closed
    assert guard._sender is None


def test_an_injected_client_is_used_and_left_open(
    emulator: GeeTestEmulator, upstream: EmulatorServer
) -> None:
    mine = httpx.Client(transport=emulator.transport())
    guard = guard_for(geetest(emulator, upstream), http_client=mine)
    status, _, body = call(guard, environ_for("/login", form(emulator.issue())))
    guard.close()
    assert status.startswith("200")
    assert json.loads(body)["outcome"] == "passed"
    assert upstream.connections == 0  # the in-process transport answered
    assert not mine.is_closed
    mine.close()


def test_a_slow_provider_times_out_into_a_fallback(
    emulator: GeeTestEmulator, upstream: EmulatorServer
) -> None:
    emulator.outage = Outage.SLOW
    emulator.delay = 2.0
    guard = guard_for(geetest(emulator, upstream, timeout=0.2))
    status, _, body = call(guard, environ_for("/login", form(emulator.issue())))
    guard.close()
    assert status.startswith("200")
    assert json.loads(body)["outcome"] == "fallback"


def test_half_open_lets_exactly_one_probe_through_across_threads(
    upstream: EmulatorServer,
) -> None:
    entered, release = threading.Event(), threading.Event()

    class Blocking(GeeTestEmulator):
        def answer(self, request: httpx.Request) -> httpx.Response:
            entered.set()
            assert release.wait(30)
            return super().answer(request)

    emulator = Blocking()
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=1, reset_timeout=10, clock=clock)
    with emulator.serve() as server:
        provider = geetest(emulator, server, breaker=breaker, timeout=30)
        guard = guard_for(provider)
        with serve_wsgi(guard) as url:
            emulator.outage = Outage.HTTP_500
            assert httpx.post(url + "/login", data=emulator.issue(), verify=TLS).json()[
                "outcome"
            ] == ("fallback")
            assert breaker.state.value == "open"
            emulator.outage = None
            clock.now += 10  # half-open now: the next request is the probe
            calls_before = emulator.calls
            # Issued up front: the emulator's lock is held while the probe blocks in answer().
            solved = [emulator.issue() for _ in range(6)]
            with ThreadPoolExecutor(max_workers=6) as pool:
                probe = pool.submit(httpx.post, url + "/login", data=solved[0], timeout=30)
                assert entered.wait(10)  # the probe is inside the provider, holding the slot
                others = [
                    pool.submit(httpx.post, url + "/login", data=fields, timeout=30)
                    for fields in solved[1:]
                ]
                outcomes = [future.result().json()["outcome"] for future in others]
                assert not probe.done()
                release.set()
                probe_outcome = probe.result().json()["outcome"]
            after = httpx.post(url + "/login", data=emulator.issue(), verify=TLS).json()["outcome"]
        guard.close()
    assert outcomes == ["fallback"] * 5
    assert probe_outcome == "passed"
    assert emulator.calls == calls_before + 2  # the probe, then the closed circuit's call
    assert after == "passed"
    assert breaker.state.value == "closed"


# The body, read exactly as PEP 3333 says, driven in-process with hand-made environs.


def environ_for(
    path: str, body: bytes = b"", *, content_type: str = "", **extra: Any
) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type,
        "wsgi.input": io.BytesIO(body),
    }
    environ.update(extra)
    setup_testing_defaults(environ)
    return environ


def form(fields: dict[str, str]) -> bytes:
    return httpx.Request("POST", "http://x", data=fields).content


def call(app: Any, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    if environ.get("CONTENT_TYPE") == "" and environ["PATH_INFO"] == "/login":
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen[:] = [status, headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return seen[0], seen[1], body


class Recorder:
    """An app that remembers the environ it was called with."""

    def __init__(self) -> None:
        self.environ: dict[str, Any] | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.environ = dict(environ)
        self.body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        return echo_wsgi(environ, start_response)  # type: ignore[no-any-return]


def local_guard(emulator: GeeTestEmulator, app: Any, **options: Any) -> WSGICaptchaGuard:
    provider = GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint="http://127.0.0.1:9/")
    client = httpx.Client(transport=emulator.transport())
    options.setdefault("max_body_size", LIMIT)
    return WSGICaptchaGuard(
        app, rules=[Rule("/login")], provider=provider, http_client=client, **options
    )


def test_the_app_gets_a_fresh_input_a_true_length_and_the_verdict(
    emulator: GeeTestEmulator,
) -> None:
    recorder = Recorder()
    guard = local_guard(emulator, validator(recorder))
    body = form(emulator.issue()) + b"&note=" + b"x" * 100
    original = io.BytesIO(body)
    status, _, _ = call(guard, environ_for("/login", body, **{"wsgi.input": original}))
    assert status == "200 OK"
    assert recorder.environ is not None
    assert recorder.body == body
    assert recorder.environ["CONTENT_LENGTH"] == str(len(body))
    assert recorder.environ[VERDICT_KEY].outcome.value == "passed"
    assert original.tell() == len(body)  # we read it all, and the app read its own copy


def test_a_terminated_input_is_read_to_its_end(emulator: GeeTestEmulator) -> None:
    recorder = Recorder()
    guard = local_guard(emulator, recorder)
    body = form(emulator.issue())
    environ = environ_for("/login", body, **{"wsgi.input_terminated": True})
    del environ["CONTENT_LENGTH"]  # chunked: the server knows no length
    status, _, _ = call(guard, environ)
    assert status == "200 OK"
    assert recorder.body == body
    assert recorder.environ is not None
    assert recorder.environ["CONTENT_LENGTH"] == str(len(body))


def test_a_terminated_input_over_the_limit_is_413_while_reading(
    emulator: GeeTestEmulator,
) -> None:
    recorder = Recorder()
    guard = local_guard(emulator, recorder)
    environ = environ_for("/login", b"a=" + b"x" * LIMIT, **{"wsgi.input_terminated": True})
    environ["CONTENT_LENGTH"] = "10"  # a lie the terminated input makes irrelevant
    status, headers, _ = call(guard, environ)
    assert status.startswith("413")
    assert all(name.lower() != "connection" for name, _ in headers)  # hop-by-hop: not ours
    assert recorder.environ is None


def test_a_short_body_is_400_and_the_app_is_not_called(emulator: GeeTestEmulator) -> None:
    recorder = Recorder()
    guard = local_guard(emulator, recorder)
    body = form(emulator.issue())
    environ = environ_for("/login", body)
    environ["CONTENT_LENGTH"] = str(len(body) + 10)
    status, _, answer = call(guard, environ)
    assert status.startswith("400")
    assert b"shorter than content-length" in answer
    assert recorder.environ is None
    assert emulator.calls == 0


@pytest.mark.parametrize(
    ("declared", "status"),
    [("abc", "400"), ("\u00b2", "400"), ("-1", "400"), ("1e3", "400"), ("9" * 5000, "413")],
)
def test_a_bad_content_length_is_refused(
    emulator: GeeTestEmulator, declared: str, status: str
) -> None:
    recorder = Recorder()
    guard = local_guard(emulator, recorder)
    environ = environ_for("/login", b"x")
    environ["CONTENT_LENGTH"] = declared
    answered, _, _ = call(guard, environ)
    assert answered.startswith(status)
    assert recorder.environ is None


def test_no_content_length_means_no_body(emulator: GeeTestEmulator) -> None:
    guard = local_guard(emulator, Recorder())
    environ = environ_for("/login", b"lot_number=abc")
    del environ["CONTENT_LENGTH"]
    status, _, answer = call(guard, environ)
    assert status.startswith("403")
    assert b"missing lot_number" in answer


def test_an_input_that_fails_while_reading_is_400(emulator: GeeTestEmulator) -> None:
    class Broken(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise ConnectionResetError("client went away")

    recorder = Recorder()
    guard = local_guard(emulator, recorder)
    environ = environ_for("/login", b"", **{"wsgi.input": Broken()})
    environ["CONTENT_LENGTH"] = "20"
    status, _, _ = call(guard, environ)
    assert status.startswith("400")
    assert recorder.environ is None


def test_an_unmatched_request_keeps_its_environ_untouched(emulator: GeeTestEmulator) -> None:
    recorder = Recorder()
    guard = local_guard(emulator, recorder)
    environ = environ_for("/other", b"payload")
    original = environ["wsgi.input"]
    call(guard, environ)
    assert recorder.environ is not None
    assert recorder.environ["wsgi.input"] is original
    assert VERDICT_KEY not in recorder.environ


def test_paths_are_matched_below_script_name_and_decoded_as_utf8(
    emulator: GeeTestEmulator,
) -> None:
    provider = GeeTest(emulator.captcha_id, emulator.captcha_key, endpoint="http://127.0.0.1:9/")
    guard = WSGICaptchaGuard(echo_wsgi, rules=[Rule("/café")], provider=provider)
    raw = "/café".encode().decode("latin-1")  # what a PEP 3333 server puts in PATH_INFO
    status, _, _ = call(guard, environ_for(raw, b"", SCRIPT_NAME="/app"))
    assert status.startswith("403")
    status, _, _ = call(guard, environ_for("/cafe", b""))
    assert status.startswith("200")


def test_on_reject_answers_with_the_apps_own_wsgi_app(emulator: GeeTestEmulator) -> None:
    denials: list[Denial] = []

    def on_reject(denial: Denial, environ: dict[str, Any]) -> Callable[..., Iterable[bytes]]:
        denials.append(denial)

        def answer(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            start_response("418 I'm a teapot", [("content-type", "text/plain")])
            return [b"no"]

        return answer

    guard = local_guard(emulator, echo_wsgi, on_reject=on_reject)
    status, _, body = call(guard, environ_for("/login", b"lot_number=1"))
    assert (status, body) == ("418 I'm a teapot", b"no")
    assert denials[0].status == 403


# Raw sockets against the real server: what an HTTP client library would not send.


def raw_exchange(url: str, head: bytes, body: bytes = b"") -> bytes:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"\r\n" + body)
        sock.shutdown(socket.SHUT_WR)  # the client sends nothing more
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("length", "body", "status"),
    [(b"100", b"lot_number=abc", b"400"), (b"abc", b"", b"400"), (b"999999", b"", b"413")],
    ids=["short-body", "bad-length", "over-limit"],
)
def test_the_real_server_refuses_bad_bodies(
    emulator: GeeTestEmulator, length: bytes, body: bytes, status: bytes
) -> None:
    recorder = Recorder()
    guard = local_guard(emulator, recorder)
    head = (
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + length + b"\r\n"
    )
    with serve_wsgi(guard) as url:
        answer = raw_exchange(url, head, body)
    assert answer.split(b" ", 2)[1] == status
    assert recorder.environ is None
    assert emulator.calls == 0


@pytest.mark.parametrize("module", ["httpx", "httpx2"])
def test_a_full_connection_pool_is_a_503_that_never_opens_the_circuit(
    module: str, emulator: GeeTestEmulator, upstream: EmulatorServer
) -> None:
    # httpx's PoolTimeout means every connection of ours is busy: our capacity, not the
    # provider's health. Charged to the breaker, a flood could open the circuit and get forged
    # fields through in fallback. httpx2, the maintained fork, is a first-class client too.
    http = importlib.import_module(module)
    breaker = CircuitBreaker(failure_threshold=1)
    pool = http.Client(limits=http.Limits(max_connections=1))
    # A timeout of a whole second: the request after the pool frees up must not time out on a
    # loaded machine (a real timeout there would open the circuit for a reason of its own).
    guard = guard_for(geetest(emulator, upstream, timeout=1.0, breaker=breaker), http_client=pool)
    transport = httpx.WSGITransport(app=validator(guard))
    with httpx.Client(transport=transport, base_url="http://testserver") as client:
        with pool.stream("GET", upstream.endpoint("/validate")) as held:  # the one connection
            assert held.status_code == 200
            busy = client.post("/login", data=emulator.issue(), headers={"accept": "json"})
        state_after_busy = breaker.state.value
        after = client.post("/login", data=emulator.issue())
        forged = client.post("/login", data={**emulator.issue(), "pass_token": "f" * 64})
    guard.close()
    assert not pool.is_closed  # the caller's client: the caller closes it
    pool.close()
    assert forged.status_code == 403
    assert busy.status_code == 503
    assert busy.json()["error"] == "captcha_busy"
    assert state_after_busy == "closed"
    assert breaker.state.value == "closed"
    assert after.status_code == 200 and after.json()["outcome"] == "passed"


def test_the_verdict_key_is_the_one_design_pins() -> None:
    # DESIGN.md promises environ["captcha_guard.verdict"]; apps outside this repo read it.
    from captcha_guard.wsgi import VERDICT_KEY

    assert VERDICT_KEY == "captcha_guard.verdict"


# -- a client that trickles its body, on servers that name the client's socket ---------------


@contextmanager
def _slow_body_server(kind: str) -> Iterator[int]:
    """Serve tests.doors.slow_body_app under gunicorn (a worker class) or the Werkzeug server."""
    from tests.doors import slow_body_app

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    if kind == "werkzeug":
        from werkzeug.serving import make_server

        server = make_server("127.0.0.1", 0, slow_body_app.app, threaded=True, fd=listener.fileno())
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield port
        finally:
            server.shutdown()
            listener.close()
        return
    command = [sys.executable, "-m", "gunicorn", "-k", kind, "--threads", "2", "-w", "1"]
    command += ["--bind", f"fd://{listener.fileno()}", "tests.doors.slow_body_app:app"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, pass_fds=[listener.fileno()], env=env, stderr=subprocess.DEVNULL
    )
    listener.close()  # the server holds it now: connections wait in its backlog till it runs
    try:
        yield port
    finally:
        process.terminate()
        process.wait(10)


def _ask(port: int, head: bytes, timeout: float = 10.0) -> tuple[bytes, float]:
    """Send ``head`` (and no more), read until the answer's head is in; how long it took."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer, time.monotonic() - started


@pytest.mark.parametrize("kind", ["sync", "gthread", "werkzeug"])
def test_a_trickling_body_is_cut_off_with_a_408_by_the_server_socket(kind: str) -> None:
    from tests.doors.slow_body_app import BODY_TIMEOUT

    trickle = (
        b"POST /login HTTP/1.1\r\nhost: x\r\ncontent-type: application/"
        b"x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\nlot_number=1"
    )
    about = b"GET /about HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    with _slow_body_server(kind) as port:
        # The server is up and answering before the clock starts (its start-up is no part of
        # the body's deadline, and takes seconds on a loaded machine).
        ready, _ = _ask(port, about)
        answer, elapsed = _ask(port, trickle)
        # The worker is free again: the next request is answered at once.
        after, _ = _ask(port, about)
    assert ready.startswith(b"HTTP/1.1 200"), ready
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert BODY_TIMEOUT <= elapsed < BODY_TIMEOUT + 2.0
    assert after.startswith(b"HTTP/1.1 200"), after
