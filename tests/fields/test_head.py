"""The head of a protected request (captcha_guard._head): repeated framing headers and floods,
sent as raw bytes to real servers so that no client tidies them up first; and the limits'
configuration. tests/fields/test_fields_differential.py shows which framework reads what; the bypass
catalogue (tests/routing/test_bypass.py) sends the rest of the shapes through both doors."""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import Iterator

import pytest

from captcha_guard import ParseLimits
from captcha_guard._fields import BodyError
from captcha_guard._head import check_head
from captcha_guard._request import ClientRequest, from_environ, from_scope, read_head
from tests.hardening_kit import CASES, PROTECTED, Site, guarded_site

FORM = "application/x-www-form-urlencoded"
#: Which parser uvicorn runs for a site.
SERVER: dict[str, str] = {}


@pytest.fixture(scope="module", params=["h11", "httptools"])
def asgi_site(request: pytest.FixtureRequest) -> Iterator[Site]:
    with guarded_site(CASES[0], door="asgi", http=request.param) as site:
        SERVER[site.url] = request.param
        yield site


@pytest.fixture(scope="module")
def wsgi_site() -> Iterator[Site]:
    with guarded_site(CASES[0], door="wsgi") as site:
        yield site


def _send(site: Site, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    port = int(site.url.rsplit(":", 1)[1])
    start = f"POST {PROTECTED} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode()
    tail = b"Accept: application/json\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        # The server may answer and close before it has read everything.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(start + head + tail + body)
        chunks: list[bytes] = []
        with contextlib.suppress(ConnectionResetError):  # after the answer: a body left unread
            chunks.extend(iter(functools.partial(sock.recv, 65536), b""))
    raw = b"".join(chunks)
    status = raw.split(b" ", 2)[1]
    return int(status), raw.partition(b"\r\n\r\n")[2]


def _form(site: Site) -> bytes:
    from urllib.parse import urlencode

    return urlencode(site.issue()).encode()


@pytest.mark.parametrize(
    "repeated",
    [
        b"Content-Length: {n}\r\nContent-Length: {n}\r\n",
        b"Content-Length: {n}\r\nContent-Type: text/plain\r\nContent-Type: " + FORM.encode(),
        b"Content-Length: {n}\r\nContent-Encoding: identity\r\nContent-Encoding: identity",
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
    ],
    ids=["content-length", "content-type", "content-encoding", "transfer-encoding"],
)
def test_a_repeated_framing_header_never_reaches_the_app(asgi_site: Site, repeated: bytes) -> None:
    # Some of these the server refuses itself (h11 and llhttp know Content-Length); the
    # others reach the gate, which refuses them before reading the body.
    form = _form(asgi_site)
    head = repeated.replace(b"{n}", str(len(form)).encode()).rstrip(b"\r\n") + b"\r\n"
    if b"Content-Type" not in head:
        head += b"Content-Type: " + FORM.encode() + b"\r\n"
    body = form
    if b"chunked" in head:
        body = f"{len(form):x}\r\n".encode() + form + b"\r\n0\r\n\r\n"
    calls = asgi_site.app.calls
    status, answer = _send(asgi_site, head, body)
    if SERVER[asgi_site.url] == "h11" and repeated.count(b"Content-Length") == 2:
        # h11 merges equal Content-Length values into one header: app and gate read one.
        assert status == 200, answer
        return
    assert status == 400, answer
    assert asgi_site.app.calls == calls
    if b"repeated_header" not in answer:  # the server's own refusal
        assert b"captcha" not in answer


def test_a_flood_of_header_lines_is_a_431_before_the_body(asgi_site: Site) -> None:
    form = _form(asgi_site)
    # 200,000 lines (1.6 MB), which uvicorn with httptools hands over whole; h11 refuses a
    # head that large itself (431 too). The gate's reading is linear, and it answers 431.
    flood = b"X-A: b\r\n" * 200_000
    head = flood + f"Content-Type: {FORM}\r\nContent-Length: {len(form)}\r\n".encode()
    calls = asgi_site.app.calls
    status, answer = _send(asgi_site, head, form)
    if SERVER[asgi_site.url] == "h11":
        assert status == 400 and b"captcha" not in answer  # h11's own refusal
    else:
        assert status == 431 and b"too_many_headers" in answer, answer
    assert asgi_site.app.calls == calls


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
def test_the_header_limits_are_configurable(door: str, asgi_site: Site, wsgi_site: Site) -> None:
    site = asgi_site if door == "asgi" else wsgi_site
    # 60 lines pass the defaults (wsgiref itself refuses more than 100), and not 20.
    try:
        form = _form(site)
        many = b"".join(b"X-A%d: b\r\n" % i for i in range(60))
        head = many + f"Content-Type: {FORM}\r\nContent-Length: {len(form)}\r\n".encode()
        status, answer = _send(site, head, form)
        assert status == 200, answer
        site.guard.gate.parse_limits = ParseLimits(max_header_fields=20)
        status, answer = _send(site, head, _form(site))
        assert status == 431 and b"too_many_headers" in answer, answer
    finally:
        site.guard.gate.parse_limits = None


def _request(headers: list[tuple[bytes, bytes]]) -> ClientRequest:
    scope = {"method": "POST", "headers": headers, "query_string": b""}
    return from_scope(scope, "/login", lambda scope: None)


def _refusal(request: ClientRequest, limits: ParseLimits | None = None) -> BodyError:
    refused = check_head(request, limits)
    assert refused is not None
    return refused


def test_the_limits_count_lines_and_bytes_under_both_doors() -> None:
    limits = ParseLimits(max_header_fields=3, max_header_bytes=40)
    assert check_head(_request([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]), limits) is None
    over = _refusal(_request([(b"a", b"1")] * 4), limits)
    assert (over.status, over.code) == (431, "too_many_headers")
    big = _refusal(_request([(b"a", b"x" * 40)]), limits)
    assert (big.status, big.code) == (431, "headers_too_large")
    # A WSGI server joins a repeated name into one key: the bytes still count.
    environ = {"REQUEST_METHOD": "POST", "HTTP_X_A": ",".join(["b"] * 30), "CONTENT_TYPE": FORM}
    joined = _refusal(from_environ(environ, "/login", lambda environ: None), limits)
    assert joined.code == "headers_too_large"


def test_a_repeated_header_is_joined_once_in_order() -> None:
    head = read_head(
        [
            (b"X-A", b"1"),
            (b"x-a", b"2"),
            (b"x-captcha", b"a=1"),
            (b"x-a", b"3"),
            (b"X-Captcha", b"b=2"),
        ]
    )
    assert head.headers == {"x-a": "1, 2, 3", "x-captcha": "a=1&b=2"}
    assert head.repeated == frozenset() and (head.count, head.size) == (5, 36)


def test_a_wsgi_content_encoding_list_is_refused() -> None:
    # wsgiref and gunicorn join a repeated Content-Encoding with a comma.
    environ = {"REQUEST_METHOD": "POST", "HTTP_CONTENT_ENCODING": "identity,identity"}
    refused = _refusal(from_environ(environ, "/login", lambda environ: None))
    assert refused.code == "unsupported_encoding"
