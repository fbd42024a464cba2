"""Apps protected by the framework adapters, for the adapter tests and the servers they run in
a process of their own (``tests.adapters.adapter_apps:flask_from_env()`` under gunicorn).

Each protected view answers JSON: which view ran, the verdict it found, and the GeeTest
``lot_number`` it read itself from the framework's parsed request, so a test can compare what
the view acted on with what the vendor was asked about."""

# No "from __future__ import annotations": FastAPI reads the annotations of the local models.
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from captcha_guard import GeeTest, Rule

EMULATOR_ENV = ("ADAPTER_CAPTCHA_ID", "ADAPTER_CAPTCHA_KEY", "ADAPTER_ENDPOINT")


def providers(endpoint: str, captcha_id: str, captcha_key: str) -> dict[str, Any]:
    """The door keywords every adapter app is built with: GeeTest by default, and a second
    GeeTest named ``strict`` that a view asks for by name with ``fail_open=False``."""
    return {
        "provider": GeeTest(captcha_id, captcha_key, endpoint=endpoint),
        "providers": {"strict": GeeTest(captcha_id, captcha_key, endpoint=endpoint)},
    }


def outcome(verdict: Any) -> str | None:
    return None if verdict is None else str(verdict.outcome.value)


def flask_app(endpoint: str, captcha_id: str, captcha_key: str, **extra: Any) -> Any:
    from flask import Blueprint, Flask, g, request

    from captcha_guard.flask import CaptchaGuard, captcha_required

    app = Flask(__name__)
    CaptchaGuard(
        app, rules=[Rule("/ruled")], **providers(endpoint, captcha_id, captcha_key), **extra
    )

    def seen(view: str, **more: Any) -> dict[str, Any]:
        lot = request.form.get("lot_number")
        if lot is None and request.is_json:
            document = request.get_json(silent=True)
            if isinstance(document, dict):
                nested = document.get("captcha")
                lot = (nested if isinstance(nested, dict) else document).get("lot_number")
        return {"view": view, "verdict": outcome(g.captcha), "lot_number": lot, **more}

    shop = Blueprint("shop", __name__, url_prefix="/shop")

    @shop.route("/orders/<int:order>", methods=["GET", "POST"])
    @captcha_required
    def order(order: int) -> dict[str, Any]:
        return seen("order", order=order)

    app.register_blueprint(shop)

    @app.post("/login")
    @captcha_required
    def login() -> dict[str, Any]:
        return seen("login", user=request.form.get("user"))

    @app.route("/strict", methods=["POST"])
    @captcha_required(provider="strict", fail_open=False)
    def strict() -> dict[str, Any]:
        return seen("strict")

    @app.route("/any", methods=["GET", "POST"])
    @captcha_required(methods=["GET"])
    def any_method() -> dict[str, Any]:
        return seen("any")

    @app.post("/ruled")
    def ruled() -> dict[str, Any]:
        return seen("ruled")

    @app.get("/")
    def home() -> str:
        return "home"

    return app


def flask_from_env() -> Any:
    return flask_app(*(os.environ[name] for name in ("ADAPTER_ENDPOINT", *EMULATOR_ENV[:2])))


def fastapi_app(endpoint: str, captcha_id: str, captcha_key: str) -> Any:
    from fastapi import APIRouter, Depends, FastAPI, Form, Request
    from pydantic import BaseModel

    from captcha_guard import Verdict
    from captcha_guard.fastapi import Captcha

    captcha = Captcha(**providers(endpoint, captcha_id, captcha_key))
    strict = captcha.required(provider="strict", fail_open=False)
    ruled = Captcha(rules=[Rule("/ruled")], **providers(endpoint, captcha_id, captcha_key))

    class Signup(BaseModel):
        email: str
        lot_number: str | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await captcha.aclose()  # the HTTP client it made (strict shares it)
        await ruled.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/login")
    def login(
        verdict: Annotated[Verdict | None, Depends(captcha)], user: Annotated[str, Form()] = ""
    ) -> dict[str, Any]:
        return {"view": "login", "verdict": outcome(verdict), "user": user}

    @app.post("/signup")
    async def signup(
        body: Signup, verdict: Annotated[Verdict | None, Depends(captcha)]
    ) -> dict[str, Any]:
        return {
            "view": "signup",
            "verdict": outcome(verdict),
            "email": body.email,
            "lot_number": body.lot_number,
        }

    @app.get("/any")
    async def any_get(verdict: Annotated[Verdict | None, Depends(captcha)]) -> dict[str, Any]:
        return {"view": "any", "verdict": outcome(verdict)}

    @app.post("/any")
    async def any_post(verdict: Annotated[Verdict | None, Depends(captcha)]) -> dict[str, Any]:
        return {"view": "any", "verdict": outcome(verdict)}

    @app.post("/strict", dependencies=[Depends(strict)])
    async def strict_view(request: Request) -> dict[str, Any]:
        return {"view": "strict", "verdict": outcome(request.state.captcha)}

    @app.post("/ruled", dependencies=[Depends(ruled)])
    async def ruled_view(request: Request) -> dict[str, Any]:
        return {"view": "ruled", "verdict": outcome(request.state.captcha)}

    router = APIRouter(prefix="/api/v1", dependencies=[Depends(captcha)])

    @router.post("/orders/{order}")
    async def order(order: int, request: Request) -> dict[str, Any]:
        return {"view": "order", "verdict": outcome(request.state.captcha), "order": order}

    app.include_router(router)
    sub = FastAPI()

    @sub.post("/comments")
    async def comment(verdict: Annotated[Verdict | None, Depends(captcha)]) -> dict[str, Any]:
        return {"view": "comment", "verdict": outcome(verdict)}

    app.mount("/sub", sub)
    app.state.captcha_dependency = captcha
    return app
