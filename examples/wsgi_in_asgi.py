"""A plain WSGI app served by an ASGI server: asgiref's WsgiToAsgi, behind CaptchaGuard.

For a WSGI app you are moving to an ASGI server (or mounting beside ASGI apps): the gate runs
in the event loop, so a slow captcha provider never ties up one of the WSGI threads, and the
WSGI app receives exactly the body the client sent. (The verdict lives in the ASGI scope,
which WsgiToAsgi does not hand on; an app that must read it uses WSGICaptchaGuard instead.)

Settings, from environment variables:
    GEETEST_CAPTCHA_ID    your captcha id (GeeTest console)                       required
    GEETEST_CAPTCHA_KEY   its private key; never sent to the browser              required
    GEETEST_ENDPOINT      the /validate URL; default: GeeTest's (mainland China)  optional

Run:  uvicorn examples.wsgi_in_asgi:app
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from asgiref.wsgi import WsgiToAsgi

from captcha_guard import CaptchaGuard, GeeTest, Rule


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """A guestbook: GET reads it, POST /sign adds a line (only with a solved captcha)."""
    if environ["REQUEST_METHOD"] == "POST" and environ["PATH_INFO"] == "/sign":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(length).decode())
        body = f"signed by {form.get('name', ['?'])[0]}".encode()
    else:
        body = b"guestbook: POST /sign with name=... and the captcha fields"
    # No Content-Length, on purpose: with one, uvicorn may start the connection's next request
    # inside WsgiToAsgi's worker context, and asgiref (3.8.1 to 3.13.0 at least) then fails it
    # ("CurrentThreadExecutor already quit or is broken"). Without one the body is chunked.
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


app = CaptchaGuard(
    WsgiToAsgi(wsgi_app),
    rules=[Rule("/sign")],
    provider=GeeTest(
        os.environ["GEETEST_CAPTCHA_ID"],
        os.environ["GEETEST_CAPTCHA_KEY"],
        endpoint=os.environ.get("GEETEST_ENDPOINT"),
    ),
)

if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
