"""The answers the gate gives itself: 400, 403, 408, 413, 503, as JSON or a short HTML page.

What a client reads is chosen here and nowhere else. A 503 says only that the check cannot be
made now: never why ("HTTP 500", "timeout", "circuit open" would tell a prober the provider's
state and when its circuit opens). A 403 from the fallback guard reads like any other refusal
of a captcha, so it says nothing of the outage, the replay memory or the per-network budget.
The detail stays in the verdict (``Denial.verdict.reason`` and ``.details``) and the log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

from ._page import negotiate, page, way_back
from ._verdict import Verdict

#: The one text of every 503 that a provider's state could explain.
UNAVAILABLE_REASON = "captcha check unavailable, try again later"
#: Seconds a client is told to wait after a 503 captcha_unavailable (``Retry-After``): the
#: same whatever the cause, so it says nothing of it.
RETRY_AFTER = 5
#: The text of a 403 given while the provider could not be asked (the fallback guard refused):
#: the same for a replay and for a network over its budget.
FALLBACK_REJECTED_REASON = "captcha rejected, solve a new one"


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
    #: Seconds for a ``Retry-After`` header (None: none).
    retry_after: int | None = None


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


# A content-length with more digits than this is over any max_body_size (and int() refuses
# strings of thousands of digits outright).
_MAX_LENGTH_DIGITS = 18


def length_denial(declared: str | None, limit: int) -> Denial | None:
    """The answer to a declared content-length before any byte is read: 400 if it is not a
    plain decimal number, 413 if it is over ``limit``, None to go on."""
    if declared is None:
        return None
    if not (declared.isascii() and declared.isdigit()):  # '²'.isdigit() is True
        return bad_request("bad content-length")
    digits = declared.lstrip("0")
    if len(digits) > _MAX_LENGTH_DIGITS or int(digits or "0") > limit:
        return too_large(limit)
    return None


def too_large(limit: int) -> Denial:
    return Denial(413, "body_too_large", f"body over {limit} bytes")


def too_slow() -> Denial:
    return Denial(408, "body_timeout", "the request body did not arrive in time")


def rejected(verdict: Verdict, *, generic: bool = False) -> Denial:
    """403. A provider's or a shape check's reason is the client's own doing and safe to show;
    a refusal by the fallback guard (``generic``) is not (it would confirm an outage)."""
    if generic:
        return Denial(403, "captcha_rejected", FALLBACK_REJECTED_REASON, verdict)
    return Denial(403, "captcha_rejected", verdict.reason, verdict)


def unavailable(verdict: Verdict) -> Denial:
    """503 for a provider that cannot be asked (down, circuit open, misconfigured) or a
    fallback refused for want of capacity: one code, one text, whatever the cause."""
    return Denial(503, "captcha_unavailable", UNAVAILABLE_REASON, verdict, RETRY_AFTER)


def busy() -> Denial:
    return Denial(503, "captcha_busy", "too many captcha checks in flight, try again")


def wants_json(accept: str, content_type: str) -> bool:
    """JSON for API clients: those that ask for it, or that sent JSON themselves."""
    return "json" in accept.lower() or "json" in content_type.lower()


def render(
    denial: Denial,
    *,
    as_json: bool,
    request_headers: Mapping[str, str] | None = None,
    scheme: str = "http",
) -> tuple[list[tuple[str, str]], bytes]:
    """Headers and body of the answer to ``denial``. The HTML page is in the language of the
    request's ``accept-language`` and links back to its ``referer`` when that is this site's
    (``request_headers``: lower-case names, as ``_request.read_headers`` gives them)."""
    if as_json:
        body = json.dumps({"error": denial.error, "reason": denial.reason}).encode()
        content_type = "application/json"
    else:
        seen = request_headers or {}
        body = page(
            denial.status,
            denial.error,
            denial.reason,
            language=negotiate(seen.get("accept-language", "")),
            back=way_back(seen.get("referer", ""), scheme=scheme, host=seen.get("host", "")),
        ).encode()
        content_type = "text/html; charset=utf-8"
    headers = [
        ("content-type", content_type),
        ("content-length", str(len(body))),
        ("cache-control", "no-store"),
    ]
    if denial.retry_after is not None:
        headers.append(("retry-after", str(denial.retry_after)))
    if not as_json:
        # The page is chosen by these headers: a shared cache that ignored no-store must not
        # hand one visitor's language or way back to another.
        headers.append(("vary", "accept-language, referer"))
    if denial.status in (413, 408, 400, 431):
        # The rest of the body may be unread: tell the server and client not to reuse this
        # connection for another request.
        headers.append(("connection", "close"))
    return headers, body


def no_store(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` with the gate's ``cache-control: no-store`` in place of any the app's own
    ``on_reject`` answer set: a refusal is about one request and must never be cached."""
    kept = [(name, value) for name, value in headers if name.lower() != "cache-control"]
    kept.append(("cache-control", "no-store"))
    return kept


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"
