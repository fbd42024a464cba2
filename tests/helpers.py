"""Shared test helpers: a fake clock, recording ASGI apps, ASGI scopes, log checks, and a
GeeTest emulator that can hold its answer until the test lets it go."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx

from captcha_guard import CaptchaGuard, GeeTest
from captcha_guard._state import StateOp
from captcha_guard.testing import EmulatorServer, GeeTestEmulator


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def answer_document(verdict: Any, body: bytes) -> bytes:
    """What a recording app answers: the verdict it found and the body it received."""
    answer = {
        "outcome": verdict.outcome.value if verdict else None,
        "reason": verdict.reason if verdict else None,
        "details": dict(verdict.details) if verdict else None,
        "sha256": hashlib.sha256(body).hexdigest(),
        "size": len(body),
    }
    return json.dumps(answer, default=str).encode()


class RecordingApp:
    """An ASGI app that reads the whole body and answers JSON: the verdict it saw and the
    sha256 of the bytes it received. Counts its calls and signals each one."""

    def __init__(self) -> None:
        self.calls = 0
        self.called = threading.Event()
        self.bodies: list[bytes] = []
        self.verdicts: list[Any] = []
        self.receives: list[Any] = []
        self.headers: list[dict[bytes, bytes]] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        with self._lock:
            self.calls += 1
            self.receives.append(receive)
            self.headers.append(dict(scope["headers"]))
        self.called.set()
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        verdict = scope.get("state", {}).get("captcha")
        with self._lock:
            self.bodies.append(body)
            self.verdicts.append(verdict)
        payload = answer_document(verdict, body)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def lifespan(receive: Any, send: Any) -> None:
    """Answer the ASGI lifespan protocol: startup, then shutdown."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def http_scope(
    path: str = "/login",
    method: str = "POST",
    headers: Iterable[tuple[bytes, bytes]] = (),
    query_string: bytes = b"",
    root_path: str = "",
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": query_string,
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


class Capture:
    """An ASGI ``send`` that keeps what it is sent."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(dict(message))

    @property
    def status(self) -> int:
        return int(self.messages[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}


def body_receive(body: bytes, chunks: int = 1) -> Any:
    """An ASGI ``receive`` that hands over ``body`` in ``chunks`` messages, then disconnect."""
    size = max(1, -(-len(body) // chunks))
    parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    return receive


def form_headers(body: bytes, **extra: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.replace("_", "-").encode(), v.encode()) for k, v in extra.items()]
    return headers


def assert_logs_clean(records: Iterable[logging.LogRecord], *secrets: str) -> None:
    """No record (message, arguments or traceback) contains any of ``secrets``."""
    for record in records:
        text = record.getMessage() + " " + (record.exc_text or "")
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + repr(record.exc_info[1])
        for secret in secrets:
            assert secret not in text, f"{record.name} {record.levelname} logged a secret: {text}"


def tokens_of(fields: Iterable[dict[str, str]]) -> list[str]:
    """The whole tokens among issued GeeTest fields: what must never be logged."""
    return [f[name] for f in fields for name in ("pass_token", "captcha_output")]


class GatedGeeTestEmulator(GeeTestEmulator):
    """A GeeTest emulator whose answers wait for ``release`` (at most ``wait_limit`` seconds),
    and that sets ``entered`` when a request reaches it: deterministic in-flight calls."""

    def __init__(self, wait_limit: float = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.wait_limit = wait_limit
        self.gave_up = False

    def respond(self, request: httpx.Request) -> httpx.Response:
        self.entered.set()
        if not self.release.wait(self.wait_limit):
            self.gave_up = True
        return super().respond(request)


class GeeTestEnv:
    """A GeeTest emulator served for real, and what a test must check never reaches a log:
    the captcha key and every whole token the emulator issued."""

    def __init__(self, emulator: GeeTestEmulator, server: EmulatorServer) -> None:
        self.emulator = emulator
        self.server = server
        self.issued: list[dict[str, str]] = []

    def provider(self, **kwargs: Any) -> GeeTest:
        kwargs.setdefault("endpoint", self.server.endpoint("/validate"))
        emulator = self.emulator
        return GeeTest(
            emulator.captcha_id, kwargs.pop("captcha_key", emulator.captcha_key), **kwargs
        )

    def issue(self) -> dict[str, str]:
        fields = self.emulator.issue()
        self.issued.append(fields)
        return fields

    @property
    def secrets(self) -> list[str]:
        return [self.emulator.captcha_key, *tokens_of(self.issued)]


@contextmanager
def geetest_env(emulator: GeeTestEmulator | None = None) -> Iterator[GeeTestEnv]:
    emulator = emulator or GeeTestEmulator()
    with emulator.serve() as server:
        yield GeeTestEnv(emulator, server)


@asynccontextmanager
async def asgi_client(guard: CaptchaGuard) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client that calls ``guard`` in-process; closes the guard's own client after."""
    transport = httpx.ASGITransport(app=guard)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            yield client
    finally:
        await guard.aclose()


async def call(app: Any, scope: dict[str, Any], receive: Any) -> Capture:
    """One direct ASGI call; what was sent back."""
    capture = Capture()
    await app(scope, receive, capture)
    return capture


def solve_pow(challenge: dict[str, Any]) -> str:
    """The ALTCHA widget's field value for ``challenge``, found by altcha's own solver."""
    from altcha import PayloadV1, solve_challenge_v1

    found = solve_challenge_v1(
        challenge["challenge"], challenge["salt"], challenge["algorithm"], challenge["maxnumber"]
    )
    assert found is not None
    payload = PayloadV1(
        challenge["algorithm"],
        challenge["challenge"],
        found.number,
        challenge["salt"],
        challenge["signature"],
    )
    return base64.b64encode(json.dumps(payload.to_dict()).encode()).decode()


#: The environment examples/captcha.toml's env: secrets read (test_config, test_cli).
EXAMPLE_ENV = {
    "CAPTCHA_REDIS_URL": "redis://127.0.0.1:6379/0",
    "CLEARANCE_KEY": "clearance-key-new-0123456789abcdef",
    "CLEARANCE_KEY_PREVIOUS": "clearance-key-old-0123456789abcdef",
    "GEETEST_CAPTCHA_ID": "0123456789abcdef0123456789abcdef",
    "GEETEST_CAPTCHA_KEY": "a-real-looking-geetest-key",
    "TURNSTILE_SECRET": "0x4AAAAAAA-real-looking-secret",
}


def drive(
    gen: Generator[StateOp, Any, Any], answer: Callable[[StateOp], Any]
) -> tuple[list[StateOp], Any]:
    """Run a flow generator as a door would: perform each op with ``answer`` (a state's
    ``run``, or a function), send its result or throw its exception in."""
    seen: list[StateOp] = []
    try:
        op = next(gen)
        while True:
            seen.append(op)
            try:
                result = answer(op)
            except Exception as exc:
                result = exc
            op = gen.throw(result) if isinstance(result, BaseException) else gen.send(result)
    except StopIteration as stop:
        return seen, stop.value


_POW_STATES: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def judge_pow(provider: Any, fields: Any, state: Any = None) -> Any:
    """``provider.check_flow(fields)`` run as the gate runs it, its replay memory in ``state``
    (by default one MemoryState per provider, on the provider's clock)."""
    from captcha_guard import MemoryState

    if state is None:
        state = _POW_STATES.get(provider)
        if state is None:
            state = _POW_STATES[provider] = MemoryState(clock=provider._clock)
    _, verdict = drive(provider.check_flow(fields), state.run)
    return verdict
