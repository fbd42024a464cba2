"""FastAPI with captcha_guard.fastapi: a dependency on the operation, hCaptcha as provider.

Settings, from environment variables:
    HCAPTCHA_SECRET     your account's secret key (hCaptcha dashboard)             required
    HCAPTCHA_ENDPOINT   the siteverify URL; default: hCaptcha's                    optional

Run:  uvicorn examples.fastapi_adapter:app

The dependency returns the Verdict, or answers 403 itself. The client sends the token as
``h-captcha-response``: in the JSON body beside the model's fields, under "captcha", or in the
``X-Captcha`` header, which /docs shows on the operation.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from captcha_guard import HCaptcha, Verdict
from captcha_guard.fastapi import Captcha

captcha = Captcha(
    provider=HCaptcha(os.environ["HCAPTCHA_SECRET"], endpoint=os.environ.get("HCAPTCHA_ENDPOINT"))
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await captcha.aclose()  # the HTTP client the dependency made


app = FastAPI(lifespan=lifespan)


class Signup(BaseModel):
    email: str


@app.post("/api/signup")
async def signup(body: Signup, verdict: Annotated[Verdict, Depends(captcha)]) -> dict[str, str]:
    return {"email": body.email, "captcha": verdict.outcome, "by": verdict.provider}
