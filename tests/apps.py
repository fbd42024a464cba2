"""Tiny apps for the front doors to guard: they answer what they saw, as JSON."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def seen(verdict: Any, body: bytes) -> bytes:
    """What the app saw: the verdict's outcome (None when unprotected) and the body's hash."""
    document = {
        "outcome": verdict.outcome.value if verdict is not None else None,
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    return json.dumps(document).encode()


async def echo_asgi(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    payload = seen(scope.get("state", {}).get("captcha"), b"".join(chunks))
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def echo_wsgi(environ, start_response):  # type: ignore[no-untyped-def]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    payload = seen(environ.get("captcha_guard.verdict"), body)
    start_response(
        "200 OK",
        [("content-type", "application/json"), ("content-length", str(len(payload)))],
    )
    return [payload]
