"""The client's request, as the gate reads it: one value, built once by each front door.

This module owns how a request's head is read under both doors, so the two cannot drift: the
first ``content-type`` counts (as Starlette's ``Headers.get`` reads it, so gate and app parse
the body alike), a repeated ``x-captcha`` header counts every time (a field in each is a
duplicate, a 403, never a silent pick), and WSGI's ``HTTP_*`` keys become the same lower-case
names an ASGI scope carries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The header a client may carry the captcha fields in, urlencoded.
CAPTCHA_HEADER = "x-captcha"


@dataclass(slots=True)
class ClientRequest:
    """What the gate and a provider may know of the request being judged."""

    method: str
    path: str
    #: The client's address (after ``client_ip=``); never logged, never in an event.
    client_host: str | None
    #: Lower-case names; a repeated header's values joined with ", " (``x-captcha``: "&").
    headers: Mapping[str, str]
    #: The ASGI scope or the WSGI environ, for site callables (a DeepKnow ``user_id``).
    raw: Any = field(repr=False, compare=False)
    content_type: str = ""
    content_length: str | None = None
    query: bytes = b""
    body: bytes = field(default=b"", repr=False)
    scheme: str = "http"

    @property
    def accept(self) -> str:
        return self.headers.get("accept", "")

    @property
    def captcha_header(self) -> str | None:
        return self.headers.get(CAPTCHA_HEADER)


#: ``client_ip=``'s resolved form (``_client_ip.ClientAddress.asgi`` or ``.wsgi``).
ClientAddress = Callable[[Any], "str | None"]


def read_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in raw:
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        seen = headers.get(name)
        if seen is None:
            headers[name] = text
        elif name == CAPTCHA_HEADER:
            headers[name] = f"{seen}&{text}"
        elif name != "content-type":  # the first content-type is the one that counts
            headers[name] = f"{seen}, {text}"
    return headers


def from_scope(scope: Mapping[str, Any], path: str, client_address: ClientAddress) -> ClientRequest:
    """The request of an ASGI ``http`` scope; ``path`` is the one the rules matched."""
    headers = read_headers(scope["headers"])
    length = headers.get("content-length")
    return ClientRequest(
        method=scope["method"],
        path=path,
        client_host=client_address(scope),
        headers=headers,
        raw=scope,
        content_type=headers.get("content-type", ""),
        content_length=None if length is None else length.strip(),
        query=scope.get("query_string", b""),
        scheme=scope.get("scheme", "http"),
    )


def from_environ(
    environ: Mapping[str, Any], path: str, client_address: ClientAddress
) -> ClientRequest:
    """The request of a WSGI environ; ``path`` is the one the rules matched."""
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_") and isinstance(value, str)
    }
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type:
        headers["content-type"] = content_type
    length = environ.get("CONTENT_LENGTH", "").strip()
    if length:
        headers["content-length"] = length
    return ClientRequest(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=path,
        client_host=client_address(environ),
        headers=headers,
        raw=environ,
        content_type=content_type,
        content_length=length or None,
        query=environ.get("QUERY_STRING", "").encode("latin-1", "replace"),
        scheme=environ.get("wsgi.url_scheme", "http"),
    )


__all__ = ["CAPTCHA_HEADER", "ClientAddress", "ClientRequest"]
