"""Flask (WSGI) with the self-hosted ProofOfWork captcha: no vendor, nothing leaves the server.

Settings, from environment variables:
    POW_SECRET     the key that signs challenges: at least 16 characters, private, the same
                   on every worker (python -c "import secrets; print(secrets.token_hex(32))")
                                                                                   required
    ALTCHA_WIDGET  the URL of the ALTCHA widget's script; serve the file of the npm package
                   ``altcha`` yourself in production     default: altcha 3.x from jsDelivr

Run:  flask --app examples/flask_app.py run

The page uses the ALTCHA widget, which fetches a challenge from /captcha-guard/challenge (the
middleware answers it, Flask never sees it), solves it in the browser and posts the solution
in the form field ``altcha``. The widget's 3.x names the challenge URL ``challenge=``, its 2.x
``challengeurl=``; each ignores the other's attribute, so the page carries both and works with
either major version.
"""

from __future__ import annotations

import os
from html import escape

from flask import Flask, request

from captcha_guard import ProofOfWork, Rule, WSGICaptchaGuard

WIDGET = os.environ.get(
    "ALTCHA_WIDGET", "https://cdn.jsdelivr.net/npm/altcha@3/dist/main/altcha.min.js"
)
CHALLENGE_PATH = "/captcha-guard/challenge"
PAGE = f"""<!doctype html>
<meta charset="utf-8">
<title>Comments</title>
<script async defer src="{escape(WIDGET)}" type="module"></script>
<form method="post" action="/comments">
  <textarea name="text"></textarea>
  <altcha-widget challenge="{CHALLENGE_PATH}" challengeurl="{CHALLENGE_PATH}"></altcha-widget>
  <button>Post</button>
</form>
"""

app = Flask(__name__)
app.wsgi_app = WSGICaptchaGuard(  # type: ignore[method-assign]
    app.wsgi_app,
    rules=[Rule("/comments")],
    provider=ProofOfWork(os.environ["POW_SECRET"], challenge_path=CHALLENGE_PATH),
)


@app.get("/")
def page() -> str:
    return PAGE


@app.post("/comments")
def comment() -> dict[str, str]:
    verdict = request.environ["captcha_guard.verdict"]  # always "passed": proof of work is local
    return {"text": request.form.get("text", ""), "captcha": verdict.outcome.value}
