"""The client's request, as the gate reads it: one value, built once by each front door.

This module owns how a request's head is read under both doors, so the two cannot drift: the
first ``content-type`` counts (as Starlette's ``Headers.get`` reads it), a repeated
``x-captcha`` header counts every time (a field in each is a duplicate, a 403, never a silent
pick), and WSGI's ``HTTP_*`` keys become the same lower-case names an ASGI scope carries. It
also keeps what the gate's head check (``_head``) needs: which framing headers came more than
once (frameworks pick the first, the last or join them), and how many header lines and bytes
the head has. Reading is one pass, linear in the head however often a name repeats.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fields import Fields

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
    #: Framing headers (``FRAMING``) the client sent more than once (ASGI: a WSGI server has
    #: already picked or joined them, and the app reads what the gate reads).
    repeated: frozenset[str] = frozenset()
    #: Header lines, and their bytes (names and values), as the door received them.
    header_count: int = 0
    header_bytes: int = 0
    #: A framework adapter's reading of the fields from the request the framework parsed
    #: (None: the gate reads the body itself). May raise ``BodyError``, as the gate's would.
    read_fields: Callable[[], Fields] | None = field(default=None, repr=False, compare=False)

    @property
    def accept(self) -> str:
        return self.headers.get("accept", "")

    @property
    def captcha_header(self) -> str | None:
        return self.headers.get(CAPTCHA_HEADER)


#: ``client_ip=``'s resolved form (``_client_ip.ClientAddress.asgi`` or ``.wsgi``).
ClientAddress = Callable[[Any], "str | None"]


#: Headers that say how the body is framed and read. Sent twice, frameworks disagree on which
#: counts (Starlette the first, Falcon's ASGI request the last, Django under ASGI joins them).
FRAMING = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})


@dataclass(slots=True)
class Head:
    """The headers of an ASGI scope as the gate reads them, and what the head check counts."""

    headers: dict[str, str]
    repeated: frozenset[str]
    count: int
    size: int


def read_head(raw: Iterable[tuple[bytes, bytes]]) -> Head:
    headers: dict[str, str] = {}
    # Later values are gathered and joined once at the end: joining as they come copies the
    # whole value again for every repeat, quadratic in a flood of one header name.
    more: dict[str, list[str]] = {}
    count = size = 0
    for key, value in raw:
        count += 1
        size += len(key) + len(value)
        name = key.decode("latin-1").lower()
        text = value.decode("latin-1")
        if name in headers:
            more.setdefault(name, [headers[name]]).append(text)
        else:
            headers[name] = text
    for name, values in more.items():
        if name == CAPTCHA_HEADER:
            headers[name] = "&".join(values)
        elif name == "cookie":  # RFC 9113 8.2.3: cookie fields join with "; ", never ","
            headers[name] = "; ".join(values)
        elif name != "content-type":  # the first content-type is the one that counts
            headers[name] = ", ".join(values)
    return Head(headers, FRAMING.intersection(more), count, size)


def read_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Lower-case names; a repeated header's values joined with ", " (``x-captcha``: "&",
    ``cookie``: "; ")."""
    return read_head(raw).headers


def from_scope(scope: Mapping[str, Any], path: str, client_address: ClientAddress) -> ClientRequest:
    """The request of an ASGI ``http`` scope; ``path`` is the one the rules matched."""
    head = read_head(scope["headers"])
    headers = head.headers
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
        repeated=head.repeated,
        header_count=head.count,
        header_bytes=head.size,
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
    # The server has joined repeated names already (one key each): count what it hands over.
    size = sum(len(name) + len(value) for name, value in headers.items())
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
        header_count=len(headers),
        header_bytes=size + len(content_type) + len(length),
    )


__all__ = ["CAPTCHA_HEADER", "ClientAddress", "ClientRequest"]
