"""Flask (WSGI) with the self-hosted ProofOfWork captcha: no vendor, nothing leaves the server.

Settings, from environment variables:
    POW_SECRET   the key that signs challenges: at least 16 characters, private, the same
                 on every worker (python -c "import secrets; print(secrets.token_hex(32))")
                                                                                   required

Run:  flask --app examples/flask_app.py run

The page uses the ALTCHA widget, which fetches a challenge from /captcha-guard/challenge (the
middleware answers it, Flask never sees it), solves it in the browser and posts the solution
in the form field ``altcha``.
"""

from __future__ import annotations

import os

from flask import Flask, request

from captcha_guard import ProofOfWork, Rule, WSGICaptchaGuard

# The ALTCHA widget 2.x speaks the challenge format ProofOfWork serves.
WIDGET = "https://cdn.jsdelivr.net/npm/altcha@2/dist/altcha.min.js"
PAGE = f"""<!doctype html>
<script async defer src="{WIDGET}" type="module"></script>
<form method="post" action="/comments">
  <textarea name="text"></textarea>
  <altcha-widget challengeurl="/captcha-guard/challenge"></altcha-widget>
  <button>Post</button>
</form>
"""

app = Flask(__name__)
app.wsgi_app = WSGICaptchaGuard(  # type: ignore[method-assign]
    app.wsgi_app,
    rules=[Rule("/comments")],
    provider=ProofOfWork(os.environ["POW_SECRET"]),
)


@app.get("/")
def page() -> str:
    return PAGE


@app.post("/comments")
def comment() -> dict[str, str]:
    verdict = request.environ["captcha_guard.verdict"]  # always "passed": proof of work is local
    return {"text": request.form.get("text", ""), "captcha": verdict.outcome.value}
