"""FastAPI with two providers: GeeTest v4 on the sign-in form, Cloudflare Turnstile on the
JSON signup API (which refuses, 503, rather than let anyone through while Turnstile is down).

Settings, from environment variables:
    GEETEST_CAPTCHA_ID    your captcha id (GeeTest console)                         required
    GEETEST_CAPTCHA_KEY   its private key; never sent to the browser                required
    GEETEST_ENDPOINT      the /validate URL; default: GeeTest's (mainland China)    optional
    TURNSTILE_SECRET      the widget's secret key (Cloudflare dashboard)            required
    TURNSTILE_ENDPOINT    the siteverify URL; default: Cloudflare's                 optional
    TURNSTILE_HOSTNAMES   comma-separated hostnames your widget is served on; a token
                          solved on any other site is refused                       optional

Run:  uvicorn examples.fastapi_app:app

GeeTest's widget hands the browser lot_number, captcha_output, pass_token and gen_time;
Turnstile's hands it a token, sent as ``cf-turnstile-response`` in the JSON body.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Form, Request
from pydantic import BaseModel

from captcha_guard import CaptchaGuard, GeeTest, Rule, Turnstile

hostnames = [name.strip() for name in os.environ.get("TURNSTILE_HOSTNAMES", "").split(",")]

app = FastAPI()
app.add_middleware(
    CaptchaGuard,
    rules=[
        Rule("/login"),
        Rule("/api/signup", provider="turnstile", fail_open=False),
    ],
    provider=GeeTest(
        os.environ["GEETEST_CAPTCHA_ID"],
        os.environ["GEETEST_CAPTCHA_KEY"],
        endpoint=os.environ.get("GEETEST_ENDPOINT"),
    ),
    providers={
        "turnstile": Turnstile(
            os.environ["TURNSTILE_SECRET"],
            hostnames=[name for name in hostnames if name] or None,
            endpoint=os.environ.get("TURNSTILE_ENDPOINT"),
        )
    },
)


@app.post("/login")
async def login(request: Request, username: str = Form()) -> dict[str, str]:
    verdict = request.state.captcha  # "passed", or "fallback" while GeeTest is unreachable
    return {"user": username, "captcha": verdict.outcome, "by": verdict.provider}


class Signup(BaseModel):
    email: str


@app.post("/api/signup")
async def signup(request: Request, body: Signup) -> dict[str, str]:
    verdict = request.state.captcha  # always "passed" here: the rule does not fail open
    return {"email": body.email, "captcha": verdict.outcome, "by": verdict.provider}
