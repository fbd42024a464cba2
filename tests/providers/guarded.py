"""Apps behind CaptchaGuard, served for real by uvicorn on 127.0.0.1, for end-to-end tests.

The app answers with the verdict it was given as JSON, so a test sees through HTTP exactly
what an app would see at ``request.state.captcha``.

``Stage`` keeps one emulator server and one guarded app up for a whole test module (starting
them per test would cost more than the tests), with a route per provider configuration; the
``reset`` between tests puts the emulator back to normal service.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from captcha_guard import CaptchaGuard, CircuitBreaker, Rule
from captcha_guard.providers import Provider
from captcha_guard.testing import Emulator, EmulatorServer
from tests import TLS
from tests.servers import serve_asgi


async def verdict_echo(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    verdict = scope.get("state", {}).get("captcha")
    document: dict[str, Any] = {"body": body.decode("utf-8", "replace")}
    if verdict is not None:
        document.update(
            outcome=verdict.outcome.value,
            reason=verdict.reason,
            provider=verdict.provider,
            details=dict(verdict.details),
        )
    payload = json.dumps(document, default=str).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


@contextmanager
def guarded(
    provider: Provider | None = None,
    *,
    providers: Mapping[str, Provider] | None = None,
    rules: Sequence[Rule] | None = None,
    guards: list[CaptchaGuard] | None = None,
) -> Iterator[str]:
    """Serve ``verdict_echo`` behind a CaptchaGuard; yield the base URL (and add the guard to
    ``guards``, for a stage that must reach it)."""
    guard = CaptchaGuard(
        verdict_echo,
        rules=rules if rules is not None else [Rule("/login")],
        provider=provider,
        providers=providers,
    )
    if guards is not None:
        guards.append(guard)
    with serve_asgi(guard) as url:
        yield url


def client() -> httpx.Client:
    """A test client. No keep-alive: a second request on a kept-alive connection to uvicorn
    waits ~40 ms (delayed ACK), while a fresh loopback connection costs ~1 ms. One client is
    reused because making one (its TLS context) costs more than the request."""
    return httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0), verify=TLS)


_shared = client()


def post(url: str, data: Mapping[str, str], **kwargs: Any) -> httpx.Response:
    """A form post asking for JSON answers (so a 403 says why)."""
    headers = {"accept": "application/json", **kwargs.pop("headers", {})}
    return _shared.post(url, data=data, headers=headers, **kwargs)


def patient() -> CircuitBreaker:
    """A breaker that never opens, for stages whose tests provoke outage after outage."""
    return CircuitBreaker(failure_threshold=10**9)


@dataclass
class Stage:
    """A served emulator and a served guarded app whose routes are named after providers:
    ``stage.post("strict", fields)`` posts to ``/strict``, guarded by ``providers["strict"]``
    (routes named ``*-closed`` have ``fail_open=False``)."""

    emulator: Emulator
    upstream: EmulatorServer
    url: str
    client: httpx.Client
    guard: CaptchaGuard

    def post(self, route: str, data: Mapping[str, str], **kwargs: Any) -> httpx.Response:
        headers = {"accept": "application/json", **kwargs.pop("headers", {})}
        return self.client.post(f"{self.url}/{route}", data=data, headers=headers, **kwargs)

    def reset(self) -> None:
        self.emulator.outage = None
        self.emulator.delay = 0.0
        self.emulator.requests.clear()
        # Each test sees its own outage log lines: an outage logs once per interval, and the
        # stage's guard outlives the test before.
        self.guard.gate.forget_outages()


@contextmanager
def staged(emulator: Emulator, upstream: EmulatorServer, **providers: Provider) -> Iterator[Stage]:
    rules = [
        Rule(f"/{name}", provider=name, fail_open=not name.endswith("-closed"))
        for name in providers
    ]
    guards: list[CaptchaGuard] = []
    with guarded(providers=providers, rules=rules, guards=guards) as url, client() as http:
        yield Stage(emulator, upstream, url, http, guards[0])
