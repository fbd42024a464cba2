"""Starlette with GeeTest v4 on a sign-in form and on a JSON comments API.

Settings, from environment variables:
    GEETEST_CAPTCHA_ID    your captcha id (GeeTest console)                       required
    GEETEST_CAPTCHA_KEY   its private key; never sent to the browser              required
    GEETEST_ENDPOINT      the /validate URL; default: GeeTest's (mainland China)  optional

Run:  uvicorn examples.starlette_app:app

The page's GeeTest widget hands the browser lot_number, captcha_output, pass_token and
gen_time; post them with the form, in the JSON body, or in an ``X-Captcha`` header.
"""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from captcha_guard import CaptchaGuard, GeeTest, Rule


async def login(request: Request) -> PlainTextResponse:
    form = await request.form()
    verdict = request.state.captcha  # "passed", or "fallback" while GeeTest is unreachable
    return PlainTextResponse(f"welcome {form.get('username')} ({verdict.outcome})")


async def comment(request: Request) -> JSONResponse:
    data = await request.json()
    post_id = request.path_params["post_id"]
    return JSONResponse(
        {"post": post_id, "text": data.get("text"), "captcha": request.state.captcha.outcome}
    )


app = Starlette(
    routes=[
        Route("/login", login, methods=["POST"]),
        Route("/posts/{post_id:int}/comments", comment, methods=["POST"]),
    ],
    middleware=[
        Middleware(
            CaptchaGuard,
            rules=[Rule("/login"), Rule("/posts/{post_id:int}/comments", methods=["POST"])],
            provider=GeeTest(
                os.environ["GEETEST_CAPTCHA_ID"],
                os.environ["GEETEST_CAPTCHA_KEY"],
                endpoint=os.environ.get("GEETEST_ENDPOINT"),
            ),
        )
    ],
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
