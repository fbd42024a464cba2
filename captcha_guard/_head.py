"""The head of a protected request: refused before its body is read when the gate cannot be
sure to read that body the way the app will, or when it is larger than any client needs.

Three ways a head makes the gate and the app read different bytes, each a 400 with its code:

- a framing header sent twice (``FRAMING``): Starlette reads the first ``Content-Type``,
  Falcon's ASGI request the last, Django under ASGI joins them (``repeated_header``);
- a ``Content-Encoding`` other than identity: the gate would parse the compressed bytes, an
  app that decompresses (FastAPI's documented ``GzipRequest``) reads other fields
  (``unsupported_encoding``). A site that needs compressed uploads decompresses them in front
  of the gate, as a proxy does.

(A ``charset=`` other than UTF-8 on a JSON or urlencoded body is the third; it is checked
with the body, since it matters only when there is one: ``_fields.parse_body``.)

Then the size: a client can send a head of megabytes (uvicorn with httptools accepts 200,000
header lines) that the gate would read whole before looking at the body. Over
``ParseLimits.max_header_fields`` lines or ``max_header_bytes`` bytes (names and values), a
protected request is answered 431 (``too_many_headers``, ``headers_too_large``).
"""

from __future__ import annotations

from ._parsing import DEFAULT_LIMITS, BodyError, ParseLimits
from ._request import ClientRequest

_IDENTITY = frozenset({"", "identity"})


def check_head(request: ClientRequest, limits: ParseLimits | None = None) -> BodyError | None:
    """Why the head of ``request`` is refused (None: it is not)."""
    limits = DEFAULT_LIMITS if limits is None else limits
    if request.header_count > limits.max_header_fields:
        return BodyError(
            f"more than {limits.max_header_fields} header lines",
            status=431,
            code="too_many_headers",
        )
    if request.header_bytes > limits.max_header_bytes:
        return BodyError(
            f"headers over {limits.max_header_bytes} bytes", status=431, code="headers_too_large"
        )
    if request.repeated:
        names = ", ".join(sorted(request.repeated))
        return BodyError(
            f"{names} sent more than once, which frameworks read differently",
            code="repeated_header",
        )
    encoding = request.headers.get("content-encoding")
    if encoding is not None and encoding.strip().lower() not in _IDENTITY:
        return BodyError(
            "a content-encoding other than identity: decompress the body before the gate",
            code="unsupported_encoding",
        )
    return None


__all__ = ["check_head"]
