"""Shared pieces of the hardening suites (faults, bypass, fuzz, load): one table of providers,
each with its emulator, and a guarded site served for real on 127.0.0.1.

A provider joins every suite by adding one ``ProviderCase`` to ``CASES``.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from captcha_guard import (
    AliyunCaptcha,
    Cap,
    CaptchaGuard,
    CircuitBreaker,
    DeepKnow,
    FriendlyCaptcha,
    GeeTest,
    HCaptcha,
    Provider,
    ReCaptcha,
    Rule,
    TencentCaptcha,
    Turnstile,
    WSGICaptchaGuard,
)
from captcha_guard.testing import (
    AliyunCaptchaEmulator,
    CapEmulator,
    DeepKnowEmulator,
    Emulator,
    EmulatorServer,
    FriendlyCaptchaEmulator,
    GeeTestEmulator,
    HCaptchaEmulator,
    ReCaptchaEmulator,
    TencentCaptchaEmulator,
    TurnstileEmulator,
)
from tests import TLS
from tests.helpers import FakeClock, RecordingApp, answer_document
from tests.servers import serve_asgi, serve_wsgi

#: The front doors every suite runs through: the same gate behind each.
DOORS = ["asgi", "wsgi"]

#: The path every protected site guards, and one it leaves alone.
PROTECTED = "/login"
UNPROTECTED = "/about"
#: A protected route with a convertor in it.
PROTECTED_WITH_ID = "/posts/{id:int}/comments"


@dataclass(frozen=True)
class ProviderCase:
    """How to stand up one provider against its emulator.

    ``provider(emulator, endpoint, timeout, breaker)`` builds the provider pointed at the
    emulator; ``issue(emulator)`` returns the client fields of one solved captcha (as the widget
    hands them to the browser); ``refused(emulator)`` well-formed fields the provider judges
    false (the user's fault); ``path`` is the emulator's verification path.
    """

    name: str
    emulator: Callable[[], Emulator]
    provider: Callable[[Any, str, float, CircuitBreaker], Provider]
    issue: Callable[[Any], dict[str, str]]
    path: str
    refused: Callable[[Any], dict[str, str]]

    def __str__(self) -> str:
        return self.name


def _geetest(emulator: GeeTestEmulator, endpoint: str, timeout: float, breaker: Any) -> Provider:
    return GeeTest(
        emulator.captcha_id,
        emulator.captcha_key,
        endpoint=endpoint,
        timeout=timeout,
        breaker=breaker,
    )


def _siteverify(kind: type[Provider]) -> Callable[[Any, str, float, Any], Provider]:
    def make(emulator: Any, endpoint: str, timeout: float, breaker: Any) -> Provider:
        return kind(emulator.secret, endpoint=endpoint, timeout=timeout, breaker=breaker)  # type: ignore[call-arg]

    return make


def _deepknow(emulator: DeepKnowEmulator, endpoint: str, timeout: float, breaker: Any) -> Provider:
    # The user id comes from the app's side (the session), not from the client.
    return DeepKnow(
        emulator.secret,
        scene="login",
        user_id=lambda raw: "user001",
        endpoint=endpoint,
        timeout=timeout,
        breaker=breaker,
    )


def _aliyun(
    emulator: AliyunCaptchaEmulator, endpoint: str, timeout: float, breaker: Any
) -> Provider:
    return AliyunCaptcha(
        emulator.access_key_id,
        emulator.access_key_secret,
        scene_id=emulator.scene_id,
        endpoint=endpoint,
        timeout=timeout,
        breaker=breaker,
    )


def _tencent(
    emulator: TencentCaptchaEmulator, endpoint: str, timeout: float, breaker: Any
) -> Provider:
    return TencentCaptcha(
        emulator.secret_id,
        emulator.secret_key,
        captcha_app_id=emulator.captcha_app_id,
        app_secret_key=emulator.app_secret_key,
        endpoint=endpoint,
        timeout=timeout,
        breaker=breaker,
    )


def _friendly(
    emulator: FriendlyCaptchaEmulator, endpoint: str, timeout: float, breaker: Any
) -> Provider:
    return FriendlyCaptcha(
        emulator.api_key,
        sitekey=emulator.sitekey,
        endpoint=endpoint,
        timeout=timeout,
        breaker=breaker,
    )


def _cap(emulator: CapEmulator, endpoint: str, timeout: float, breaker: Any) -> Provider:
    return Cap(
        emulator.site_key, emulator.secret, endpoint=endpoint, timeout=timeout, breaker=breaker
    )


def _tencent_refused(emulator: TencentCaptchaEmulator) -> dict[str, str]:
    return {**emulator.issue(), "randstr": "@bad"}  # 7: Randstr does not match


def _cap_refused(emulator: CapEmulator) -> dict[str, str]:
    site_key, _, _ = emulator.token().split(":")
    return {"cap-token": f"{site_key}:{'0' * 16}:{'0' * 30}"}  # Token not found


def _issue(emulator: Any) -> dict[str, str]:
    return dict(emulator.issue())


def _geetest_refused(emulator: GeeTestEmulator) -> dict[str, str]:
    return {**emulator.issue(), "pass_token": "0" * 64}  # "pass_token error"


def _token_refused(emulator: Any) -> dict[str, str]:
    ((name, token),) = emulator.issue().items()
    return {name: token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB")}  # unknown token


SITEVERIFY = "/siteverify"

CASES: list[ProviderCase] = [
    ProviderCase("geetest", GeeTestEmulator, _geetest, _issue, "/validate", _geetest_refused),
    ProviderCase(
        "recaptcha",
        ReCaptchaEmulator,
        _siteverify(ReCaptcha),
        _issue,
        "/siteverify",
        _token_refused,
    ),
    ProviderCase(
        "hcaptcha", HCaptchaEmulator, _siteverify(HCaptcha), _issue, SITEVERIFY, _token_refused
    ),
    ProviderCase(
        "turnstile",
        TurnstileEmulator,
        _siteverify(Turnstile),
        _issue,
        "/siteverify",
        _token_refused,
    ),
    ProviderCase(
        "deepknow",
        DeepKnowEmulator,
        _deepknow,
        _issue,
        "/deepknow/v2/verify",
        lambda emulator: emulator.issue(risk_level=9),
    ),
    ProviderCase(
        "aliyun",
        AliyunCaptchaEmulator,
        _aliyun,
        _issue,
        "/",
        lambda emulator: emulator.issue(verify_code="F001"),
    ),
    ProviderCase("tencent", TencentCaptchaEmulator, _tencent, _issue, "/", _tencent_refused),
    ProviderCase(
        "friendly-captcha",
        FriendlyCaptchaEmulator,
        _friendly,
        _issue,
        "/api/v2/captcha/siteverify",
        _token_refused,
    ),
    ProviderCase("cap", CapEmulator, _cap, _issue, "", _cap_refused),
]


class RecordingWSGIApp:
    """The WSGI twin of ``tests.helpers.RecordingApp``: the same JSON answer, the same record."""

    def __init__(self) -> None:
        self.calls = 0
        self.bodies: list[bytes] = []
        self.verdicts: list[Any] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH")
        stream = environ["wsgi.input"]
        wanted = int(length) if length else (1 << 62 if environ.get("wsgi.input_terminated") else 0)
        chunks: list[bytes] = []
        while wanted > 0:  # a read may return less than asked: read on until the end
            chunk = stream.read(min(wanted, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            wanted -= len(chunk)
        body = b"".join(chunks)
        verdict = environ.get("captcha_guard.verdict")
        with self._lock:
            self.calls += 1
            self.bodies.append(body)
            self.verdicts.append(verdict)
        payload = answer_document(verdict, body)
        start_response(
            "200 OK",
            [("content-type", "application/json"), ("content-length", str(len(payload)))],
        )
        return [payload]


@dataclass
class Site:
    """A guarded app under uvicorn, its provider's emulator served for real, and the knobs."""

    case: ProviderCase
    url: str
    emulator: Any
    upstream: EmulatorServer
    provider: Provider
    breaker: CircuitBreaker
    clock: FakeClock
    app: RecordingApp | RecordingWSGIApp
    guard: CaptchaGuard | WSGICaptchaGuard
    client: httpx.Client = field(repr=False)
    door: str = "asgi"

    def issue(self) -> dict[str, str]:
        return self.case.issue(self.emulator)

    def post(self, path: str = PROTECTED, **kwargs: Any) -> httpx.Response:
        headers = {"accept": "application/json", **kwargs.pop("headers", {})}
        return self.client.post(self.url + path, headers=headers, **kwargs)

    def reset(self) -> None:
        """Back to a healthy provider and a closed circuit, between tests on one site."""
        self.emulator.outage = None
        self.emulator.delay = 0.0
        self.breaker.reset()


@contextmanager
def guarded_site(
    case: ProviderCase,
    *,
    door: str = "asgi",
    timeout: float = 1.0,
    failure_threshold: int = 5,
    reset_timeout: float = 30.0,
    http: str = "auto",
    **guard_options: Any,
) -> Iterator[Site]:
    """``case``'s provider behind the ``door`` front door ("asgi": CaptchaGuard under uvicorn,
    "wsgi": WSGICaptchaGuard under a threaded wsgiref server), its emulator served for real.
    ``http`` is uvicorn's parser: "auto" (httptools when installed), "h11" or "httptools"."""
    emulator = case.emulator()
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold, reset_timeout, clock=clock)
    rules = [Rule(PROTECTED), Rule("/pay", fail_open=False), Rule(PROTECTED_WITH_ID)]
    with emulator.serve() as upstream:
        provider = case.provider(emulator, upstream.endpoint(case.path), timeout, breaker)
        app: RecordingApp | RecordingWSGIApp
        guard: CaptchaGuard | WSGICaptchaGuard
        if door == "asgi":
            app = RecordingApp()
            guard = CaptchaGuard(app, rules=rules, provider=provider, **guard_options)
            server = serve_asgi(guard, http=http)
        elif door == "wsgi":
            app = RecordingWSGIApp()
            guard = WSGICaptchaGuard(app, rules=rules, provider=provider, **guard_options)
            server = serve_wsgi(guard)
        else:
            raise ValueError(f"unknown front door {door!r}")
        try:
            with server as url, httpx.Client(timeout=30, verify=TLS) as client:
                yield Site(
                    case,
                    url,
                    emulator,
                    upstream,
                    provider,
                    breaker,
                    clock,
                    app,
                    guard,
                    client,
                    door,
                )
        finally:
            if isinstance(guard, WSGICaptchaGuard):
                guard.close()


async def raw_post(url: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    """POST over a fresh connection with the fewest moving parts (one task, one socket, no
    pool): a load generator that costs the same per request at 10 or 1 000 connections."""
    authority = url.removeprefix("http://")
    host, _, port = authority.partition(":")
    lines = [f"POST {path} HTTP/1.1", f"host: {authority}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append("connection: close")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        chunks = []
        with contextlib.suppress(anyio.EndOfStream):
            while True:
                chunks.append(await stream.receive())
    raw = b"".join(chunks)
    head, _, content = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        content = _dechunk(content)
    return int(head.split(b" ", 2)[1]), content


def _dechunk(data: bytes) -> bytes:
    out = []
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[:size])
        data = data[size + 2 :]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
