"""The framework adapters' CPU per protected request against the generic door's, side by side:

    python bench/adapters.py [--quick]

The provider stand-in of ``bench/clients.py`` runs in a process of its own on 127.0.0.1. In this
process, for each framework, the same app with the same login view (which reads the form, as a
login does) is called in-process, in alternating rounds, two ways:

- protected by the adapter (``@captcha_required`` for Flask and Django, ``Depends(Captcha(...))``
  for FastAPI), and
- wrapped by the generic door (``WSGICaptchaGuard`` / ``CaptchaGuard`` with ``Rule("/login")``)
  with the view unprotected,

each judging a 1 KiB form post with a solved GeeTest captcha (the whole call: the framework's
dispatch, the view and the provider call). Flask and Django are called as WSGI apps in one
thread, FastAPI as an ASGI app with 32 requests in flight on one loop. CPU is this process's
(``time.process_time``); the ratio of medians is the figure (target: the adapter at most 1.1x
the door).
"""

# No "from __future__ import annotations": FastAPI reads the local endpoints' annotations.

import argparse
import asyncio
import io
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.clients import (  # noqa: E402
    CAPTCHA_ID,
    CAPTCHA_KEY,
    CONCURRENCY,
    FORM,
    measure_sync,
    provider,
)


def _environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/login",
        "QUERY_STRING": "",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(FORM)),
        "REMOTE_ADDR": "127.0.0.1",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(FORM),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }


def wsgi_call(app: Any) -> Callable[[], None]:
    def one() -> None:
        statuses: list[str] = []
        body = app(_environ(), lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(body)
        close = getattr(body, "close", None)
        if close is not None:
            close()
        if not statuses or not statuses[0].startswith("200"):
            raise AssertionError(statuses)

    return one


def _provider(url: str) -> Any:
    from captcha_guard import GeeTest

    return GeeTest(CAPTCHA_ID, CAPTCHA_KEY, endpoint=url)


def flask_pair(url: str) -> dict[str, Callable[[], None]]:
    from flask import Flask, g, request

    from captcha_guard import Rule, WSGICaptchaGuard
    from captcha_guard.flask import CaptchaGuard, captcha_required

    adapted = Flask("adapted")
    CaptchaGuard(adapted, provider=_provider(url))

    @adapted.post("/login")
    @captcha_required
    def login() -> str:
        return f"{request.form.get('comment', '')[:1]}{g.captcha.outcome.value}"

    plain = Flask("plain")

    @plain.post("/login")
    def plain_login() -> str:
        verdict = request.environ["captcha_guard.verdict"]
        return f"{request.form.get('comment', '')[:1]}{verdict.outcome.value}"

    door = WSGICaptchaGuard(plain, rules=[Rule("/login")], provider=_provider(url))
    return {
        "Flask, captcha_required": wsgi_call(adapted),
        "Flask, WSGICaptchaGuard": wsgi_call(door),
    }


def django_pair(url: str) -> dict[str, Callable[[], None]]:
    import django
    from django.conf import settings

    from captcha_guard import Rule, WSGICaptchaGuard

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["captcha_guard.django"],
        MIDDLEWARE=[],
        CAPTCHA_GUARD={"provider": _provider(url)},
        LOGGING_CONFIG=None,
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpRequest, HttpResponse
    from django.urls import path

    from captcha_guard.django import captcha_required

    @captcha_required
    def login(request: HttpRequest) -> HttpResponse:
        comment = request.POST.get("comment", "")[:1]
        return HttpResponse(f"{comment}{request.captcha.outcome.value}")  # type: ignore[attr-defined]

    def plain_login(request: HttpRequest) -> HttpResponse:
        comment = request.POST.get("comment", "")[:1]
        verdict = request.META["captcha_guard.verdict"]
        return HttpResponse(f"{comment}{verdict.outcome.value}")

    global urlpatterns
    urlpatterns = [path("login", login), path("plain/login", plain_login)]
    application = get_wsgi_application()

    def to_plain(environ: dict[str, Any], start_response: Any) -> Any:
        environ["PATH_INFO"] = "/plain/login"  # the same project, the view without the decorator
        return application(environ, start_response)

    door = WSGICaptchaGuard(to_plain, rules=[Rule("/login")], provider=_provider(url))
    return {
        "Django, captcha_required": wsgi_call(application),
        "Django, WSGICaptchaGuard": wsgi_call(door),
    }


urlpatterns: list[Any] = []


def fastapi_pair(url: str) -> dict[str, Callable[[], Awaitable[None]]]:
    from typing import Annotated

    from fastapi import Depends, FastAPI, Form, Request

    from captcha_guard import CaptchaGuard, Rule, Verdict
    from captcha_guard.fastapi import Captcha

    captcha = Captcha(provider=_provider(url))
    adapted = FastAPI()

    @adapted.post("/login")
    async def login(
        verdict: Annotated[Verdict, Depends(captcha)], comment: Annotated[str, Form()] = ""
    ) -> str:
        return f"{comment[:1]}{verdict.outcome.value}"

    plain = FastAPI()

    @plain.post("/login")
    async def plain_login(request: Request, comment: Annotated[str, Form()] = "") -> str:
        return f"{comment[:1]}{request.state.captcha.outcome.value}"

    door = CaptchaGuard(plain, rules=[Rule("/login")], provider=_provider(url))
    _closing.extend([captcha.aclose, door.aclose])
    return {
        "FastAPI, Depends(Captcha)": asgi_call(adapted),
        "FastAPI, CaptchaGuard": asgi_call(door),
    }


#: The async clients to close on the loop that used them.
_closing: list[Callable[[], Awaitable[None]]] = []


def asgi_call(app: Any) -> Callable[[], Awaitable[None]]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"content-length", str(len(FORM)).encode()),
    ]

    async def one() -> None:
        sent = False
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # no disconnect while the app works
            sent = True
            return {"type": "http.request", "body": FORM, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/login",
            "raw_path": b"/login",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        if statuses != [200]:
            raise AssertionError(statuses)

    return one


def measure_async(
    contenders: dict[str, Callable[[], Awaitable[None]]], count: int, rounds: int
) -> Any:
    async def per_call(one: Callable[[], Awaitable[None]], n: int) -> float:
        queue = iter(range(n))

        async def worker() -> None:
            for _ in queue:
                await one()

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return (time.process_time() - started) / n

    async def run() -> dict[str, list[float]]:
        for one in contenders.values():
            await per_call(one, CONCURRENCY * 4)
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, one in contenders.items():
                times[name].append(await per_call(one, count))
        for close in _closing:
            await close()
        return times

    return asyncio.run(run())


def rows(times: dict[str, list[float]]) -> list[str]:
    (adapter, door) = list(times)
    medians = {name: statistics.median(values) * 1e6 for name, values in times.items()}
    ratio = medians[adapter] / medians[door]
    met = "yes" if ratio <= 1.1 else "**no**"
    return [
        f"| {adapter} | {medians[adapter]:,.0f} µs | {medians[door]:,.0f} µs ({door}) | "
        f"{ratio:.2f}x | {met} |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    count, rounds = (100, 3) if quick else (400, 5)
    print("| adapter | CPU per request (median) | the door (median) | ratio | <= 1.1x |")
    print("| --- | --- | --- | --- | --- |")
    with provider() as url:
        for line in rows(measure_sync(flask_pair(url), count, rounds)):
            print(line, flush=True)
        for line in rows(measure_sync(django_pair(url), count, rounds)):
            print(line, flush=True)
        for line in rows(measure_async(fastapi_pair(url), count, rounds)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
