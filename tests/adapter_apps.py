"""Apps protected by the framework adapters, for the adapter tests and the servers they run in
a process of their own (``tests.adapter_apps:flask_from_env()`` under gunicorn).

Each protected view answers JSON: which view ran, the verdict it found, and the GeeTest
``lot_number`` it read itself from the framework's parsed request, so a test can compare what
the view acted on with what the vendor was asked about."""

from __future__ import annotations

import os
from typing import Any

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
