"""The answers the gate gives itself: 400, 403, 408, 413, 503, as JSON or a short HTML page."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from http import HTTPStatus

from .verdict import Verdict


@dataclass(frozen=True)
class Denial:
    """Why the gate answers a request itself instead of calling the app.

    ``error`` is a stable machine-readable code, ``reason`` a short human one (never a token).
    ``verdict`` is set when a provider was consulted (403 rejected, 503 unavailable).
    """

    status: int
    error: str
    reason: str
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Reply:
    """An answer the gate gives that is not a denial (a proof-of-work challenge)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_reply(document: object) -> Reply:
    body = json.dumps(document).encode()
    headers = [
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
        # A challenge is single use: no cache may hand the same one to two clients.
        ("cache-control", "no-store"),
    ]
    return Reply(200, headers, body)


def bad_request(reason: str) -> Denial:
    return Denial(400, "bad_request", reason)


def too_large(limit: int) -> Denial:
    return Denial(413, "body_too_large", f"body over {limit} bytes")


def too_slow() -> Denial:
    return Denial(408, "body_timeout", "the request body did not arrive in time")


def rejected(verdict: Verdict) -> Denial:
    return Denial(403, "captcha_rejected", verdict.reason, verdict)


def unavailable(verdict: Verdict) -> Denial:
    return Denial(503, "captcha_unavailable", verdict.reason, verdict)


def busy() -> Denial:
    return Denial(503, "captcha_busy", "too many captcha checks in flight, try again")


def wants_json(accept: str, content_type: str) -> bool:
    """JSON for API clients: those that ask for it, or that sent JSON themselves."""
    return "json" in accept.lower() or "json" in content_type.lower()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{status} {phrase}</title></head>
<body><h1>{phrase}</h1><p>{reason}</p></body></html>
"""


def render(denial: Denial, *, as_json: bool) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and body of the answer to ``denial``."""
    if as_json:
        body = json.dumps({"error": denial.error, "reason": denial.reason}).encode()
        content_type = "application/json"
    else:
        phrase = HTTPStatus(denial.status).phrase
        body = _PAGE.format(
            status=denial.status, phrase=phrase, reason=html.escape(denial.reason)
        ).encode()
        content_type = "text/html; charset=utf-8"
    headers = [
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    if denial.status in (413, 408, 400):
        # The rest of the body may be unread: tell the server and client not to reuse this
        # connection for another request.
        headers.append(("connection", "close"))
    return headers, body


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"
