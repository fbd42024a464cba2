"""Flask with captcha_guard.flask: the decorator on the view, Cloudflare Turnstile as provider.

Settings, from environment variables:
    TURNSTILE_SECRET     the widget's secret key (Cloudflare dashboard)            required
    TURNSTILE_ENDPOINT   the siteverify URL; default: Cloudflare's                 optional

Run:  flask --app examples/flask_adapter.py run

The protected view is found by Flask's router (any URL Flask maps to it is protected, in a
blueprint or not), and the token is read from Flask's own ``request.form`` or JSON body
(``cf-turnstile-response``), so Turnstile judges the very field the view could read.
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask, g, request

from captcha_guard import Turnstile
from captcha_guard.flask import CaptchaGuard, captcha_required

app = Flask(__name__)
app.config["CAPTCHA_GUARD"] = {
    "provider": Turnstile(
        os.environ["TURNSTILE_SECRET"], endpoint=os.environ.get("TURNSTILE_ENDPOINT")
    )
}
CaptchaGuard(app)

shop = Blueprint("shop", __name__, url_prefix="/shop")


@shop.post("/orders/<int:order>/review")
@captcha_required
def review(order: int) -> dict[str, object]:
    return {"order": order, "text": request.form.get("text", ""), "captcha": g.captcha.outcome}


app.register_blueprint(shop)
