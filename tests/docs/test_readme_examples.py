"""The README's FastAPI and Flask examples (the adapters), the doors' two in
docs/getting-started.md and the docs' "Writing a provider" example run as written: the first
four under real servers (uvicorn, wsgiref) against the GeeTest
emulator, the provider through the ASGI door with an in-process answer. The README's Django
example is examples/django_project, run by tests/docs/test_examples.py."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import captcha_guard
from captcha_guard.flask import CaptchaGuard
from captcha_guard.testing import GeeTestEmulator, Outage
from tests import ROOT, TLS
from tests.servers import serve_asgi, serve_wsgi

README = ROOT / "README.md"
GETTING_STARTED = ROOT / "docs" / "getting-started.md"


def example(heading: str, page: Path = README) -> str:
    """The one ```python block of the section under ``heading`` (README's by default)."""
    text = page.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def page_example(page: Path) -> str:
    """The one ```python block of a docs page."""
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def run(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(source, str(README), "exec"), namespace)
    return namespace


@pytest.fixture
def geetest(monkeypatch: pytest.MonkeyPatch) -> Iterator[GeeTestEmulator]:
    """The emulator, with the example's environment set and ``GeeTest`` pointed at it (the
    examples use the vendor's endpoint, as a site would)."""
    emulator = GeeTestEmulator()
    with emulator.serve() as server:
        monkeypatch.setenv("GEETEST_CAPTCHA_ID", emulator.captcha_id)
        monkeypatch.setenv("GEETEST_CAPTCHA_KEY", emulator.captcha_key)
        aimed = functools.partial(captcha_guard.GeeTest, endpoint=server.endpoint("/validate"))
        monkeypatch.setattr(captcha_guard, "GeeTest", aimed)
        yield emulator


def check(url: str, emulator: GeeTestEmulator) -> None:
    with httpx.Client(base_url=url, verify=TLS) as client:
        assert client.post("/login", data={"user": "ada"}).status_code == 403
        passed = client.post("/login", data=emulator.issue())
        assert (passed.status_code, passed.json()) == (200, {"captcha": "passed"})
        emulator.outage = Outage.HTTP_500
        fallback = client.post("/login", data=emulator.issue())
        assert (fallback.status_code, fallback.json()) == (200, {"captcha": "fallback"})


def test_fastapi_in_ten_lines(geetest: GeeTestEmulator) -> None:
    app = run(example("FastAPI in ten lines"))["app"]
    with serve_asgi(app) as url:
        check(url, geetest)


def test_the_asgi_door_in_ten_lines(geetest: GeeTestEmulator) -> None:
    app = run(example("FastAPI in ten lines", GETTING_STARTED))["app"]
    with serve_asgi(app) as url:
        check(url, geetest)


def test_the_wsgi_door_in_ten_lines(geetest: GeeTestEmulator) -> None:
    app = run(example("Flask in ten lines", GETTING_STARTED))["app"]
    with serve_wsgi(app) as url:
        check(url, geetest)
    app.wsgi_app.close()


def test_flask_in_ten_lines(geetest: GeeTestEmulator) -> None:
    app = run(example("Flask in ten lines"))["app"]
    with serve_wsgi(app) as url:
        check(url, geetest)
    CaptchaGuard.core(app).close()


@pytest.mark.asyncio
async def test_writing_a_provider() -> None:
    namespace = run(page_example(ROOT / "docs" / "writing-a-provider.md"))
    answers = iter(
        [
            httpx.Response(200, json={"success": True, "score": 0.9}),
            httpx.Response(200, json={"success": False, "error": "invalid-token"}),
            httpx.Response(200, json={"success": False, "error": "invalid-secret"}),
        ]
    )
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return next(answers)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        verdict = scope["state"]["captcha"]
        body = f"{verdict.outcome} {verdict.details.get('score')}".encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    acme = namespace["Acme"]("s3cret")
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as upstream:
        guard = captcha_guard.CaptchaGuard(
            app, rules=[captcha_guard.Rule("/login")], provider=acme, http_client=upstream
        )
        transport = httpx.ASGITransport(guard)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            assert (await client.post("/login", data={"acme-token": "ok"})).text == "passed 0.9"
            assert (await client.post("/login", data={"acme-token": "no"})).status_code == 403
            fell_back = await client.post("/login", data={"acme-token": "x"})
            assert fell_back.text == "fallback None"
            malformed = await client.post("/login", data={"acme-token": "bad token"})
            assert malformed.status_code == 403
    assert len(sent) == 3  # the malformed token never reached the vendor
    assert sent[0].url == "https://api.acme.example/verify"
    assert b"secret=s3cret" in sent[0].content
