"""The apps the benchmarks serve, each under uvicorn in a process of its own.

- ``bare``: a minimal ASGI app (reads the body, answers 200 "ok").
- ``wrapped``: ``bare`` behind CaptchaGuard, GeeTest on ``/login`` only.
- ``vendor``: the GeeTest sample's way, as a Starlette endpoint: a synchronous
  ``requests.post(..., timeout=5)`` per call (run in Starlette's thread pool), and on any
  exception or a non-200 answer the request is allowed.

The verification endpoint comes from the ``BENCH_ENDPOINT`` environment variable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any
from urllib.parse import parse_qsl

from captcha_guard import CaptchaGuard, GeeTest, Rule
from captcha_guard.testing import GeeTestEmulator

# The emulator's default captcha id and key (the vendor's documented example key).
KEYS = GeeTestEmulator()
CAPTCHA_ID = KEYS.captcha_id
CAPTCHA_KEY = KEYS.captcha_key
ENDPOINT = os.environ.get("BENCH_ENDPOINT", "http://127.0.0.1:9/validate")


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


wrapped = CaptchaGuard(
    bare,
    rules=[Rule("/login")],
    provider=GeeTest(CAPTCHA_ID, CAPTCHA_KEY, endpoint=ENDPOINT, timeout=5.0),
)


def _vendor() -> Any:
    import requests
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def second_verification(form: dict[str, str]) -> dict[str, Any]:
        # As the vendor's sample does it: sign the lot number, post the four fields with the
        # captcha id in the query, and let the request through on any trouble.
        lot_number = form.get("lot_number", "")
        sign_token = hmac.new(CAPTCHA_KEY.encode(), lot_number.encode(), hashlib.sha256).hexdigest()
        data = {
            "lot_number": lot_number,
            "captcha_output": form.get("captcha_output", ""),
            "pass_token": form.get("pass_token", ""),
            "gen_time": form.get("gen_time", ""),
            "sign_token": sign_token,
        }
        try:
            answer = requests.post(
                ENDPOINT, params={"captcha_id": CAPTCHA_ID}, data=data, timeout=5
            )
            if answer.status_code != 200:
                return {"result": "success", "reason": "api error, fallback"}
            result: dict[str, Any] = answer.json()
            return result
        except Exception:
            return {"result": "success", "reason": "request fail, fallback"}

    async def login(request: Request) -> PlainTextResponse:
        form = dict(parse_qsl((await request.body()).decode()))
        # Starlette runs a plain function in its thread pool, as Flask would in a thread.
        from starlette.concurrency import run_in_threadpool

        result = await run_in_threadpool(second_verification, form)
        if result.get("result") == "success":
            return PlainTextResponse("ok")
        return PlainTextResponse("captcha failed", status_code=403)

    async def about(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[Route("/login", login, methods=["POST"]), Route("/about", about, methods=["GET"])]
    )


vendor = _vendor()
