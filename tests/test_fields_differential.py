"""The gate's field parser against the real request parsers of Starlette, Flask (Werkzeug) and
Django, on the same bytes.

The property, for every name either side reads from a body the gate accepts:

- if the gate reads a value for it (``Fields.one`` succeeds), each framework reads that same
  single value, or nothing at all under that name (Django reads no field from a bare-LF
  multipart body: its view then has no value to act on, so it cannot act on another one);
- if the gate has no such name, no framework reads a value under it (else the gate would take
  the name from the query string or the X-Captcha header while the app reads the body's).

A body the gate refuses (400/413), or a name it refuses to read (duplicated, unreadable), is
always allowed: refusing is the gate's way out of an ambiguity. Where a framework refuses the
body, it has no values and the first rule holds trivially.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from hypothesis import example, given
from hypothesis import strategies as st

from captcha_guard._fields import BodyError, FieldError, Fields, collect

if not settings.configured:
    settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], DEFAULT_CHARSET="utf-8")

from django.core.handlers.wsgi import WSGIRequest
from starlette.datastructures import UploadFile
from starlette.requests import Request as StarletteRequest
from werkzeug.wrappers import Request as WerkzeugRequest

Read = dict[str, list[str]]


def _environ(content_type: str, body: bytes, query: bytes) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/login",
        "SCRIPT_NAME": "",
        "QUERY_STRING": query.decode("latin-1"),
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }


def starlette(content_type: str, body: bytes, query: bytes) -> tuple[Read, Read]:
    async def read() -> tuple[Read, Read]:
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/login",
            "query_string": query,
            "headers": [(b"content-type", content_type.encode("latin-1"))],
        }
        request = StarletteRequest(scope, receive)
        args: Read = {}
        for name, value in request.query_params.multi_items():
            args.setdefault(name, []).append(value)
        form: Read = {}
        try:
            async with request.form() as data:
                for name, item in data.multi_items():
                    if not isinstance(item, UploadFile):
                        form.setdefault(name, []).append(item)
        except Exception:  # Starlette answers 400: no values
            form = {}
        return form, args

    return asyncio.run(read())


def flask(content_type: str, body: bytes, query: bytes) -> tuple[Read, Read]:
    request = WerkzeugRequest(_environ(content_type, body, query))
    try:
        form = {k: request.form.getlist(k) for k in request.form if k is not None}
    except Exception:
        form = {}
    try:
        args = {k: request.args.getlist(k) for k in request.args}
    except UnicodeDecodeError:  # raw non-UTF-8 bytes in the query: Werkzeug raises
        args = {}
    return form, args


def django(content_type: str, body: bytes, query: bytes) -> tuple[Read, Read]:
    request = WSGIRequest(_environ(content_type, body, query))
    try:
        form = {k: request.POST.getlist(k) for k in request.POST}
    except Exception:  # TooManyFieldsSent, MultiPartParserError, BadRequest: a 400
        form = {}
    try:
        args = {k: request.GET.getlist(k) for k in request.GET}
    except Exception:
        args = {}
    return form, args


FRAMEWORKS: dict[str, Callable[[str, bytes, bytes], tuple[Read, Read]]] = {
    "starlette": starlette,
    "flask": flask,
    "django": django,
}


def _gate(content_type: str, body: bytes, query: bytes, source: str) -> Fields | None:
    try:
        if source == "body":
            return collect(
                content_type=content_type, body=body, query_string=b"", header_value=None
            )
        return collect(content_type="", body=b"", query_string=query, header_value=None)
    except BodyError:
        return None


def _readable(fields: Fields, name: str) -> str | None:
    try:
        return fields.one(name)
    except FieldError:
        return None


def agree(content_type: str, body: bytes, query: bytes = b"") -> None:
    """Assert the property of the module docstring for the body and the query string."""
    for source in ("body", "query"):
        fields = _gate(content_type, body, query, source)
        if fields is None:
            continue
        gate_names = set(fields._values)
        for framework, read in FRAMEWORKS.items():
            form, args = read(content_type, body, query)
            seen = form if source == "body" else args
            for name in gate_names | set(seen):
                theirs = seen.get(name, [])
                if name not in gate_names:
                    assert not theirs, (framework, source, name, theirs)
                    continue
                ours = _readable(fields, name)
                if ours is not None:
                    assert theirs in ([], [ours]), (framework, source, name, ours, theirs)


# ---------------------------------------------------------------------------------------------
# Bodies real clients send, and the shapes issue 8 names.

FORM = "application/x-www-form-urlencoded"
MP = "multipart/form-data; boundary=XX"
LOT = b'Content-Disposition: form-data; name="lot_number"'

CORPUS: list[tuple[str, bytes]] = [
    (FORM, b"name=Jos%E9&lot_number=abc"),  # <form accept-charset="ISO-8859-1">
    (FORM + "; charset=ISO-8859-1", b"name=Jos%E9&lot_number=abc"),
    (FORM, b"name=Jos\xe9&lot_number=abc"),
    (FORM, "name=zoë&lot_number=abc".encode()),
    (FORM, b"a=1;lot_number=abc"),
    (FORM, b"a&lot_number=abc&=x&&"),
    (FORM, b"a=%zz%4&lot_number=%61bc+d%2B"),
    (FORM, b"lot_number=a&lot_number=b"),
    (MP, b"--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n"),
    (MP, b"preamble\r\n--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n"),
    (MP, b"junk--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n"),
    (MP, b"--XX\n" + LOT + b"\n\nabc\n--XX--\n"),
    (MP, b"--XX\r\n" + LOT + b"\n\nabc\r\n--XX--\r\n"),
    (MP, b"--XX  \r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n"),
    (MP, b'--XX\r\nContent-Disposition: attachment; name="lot_number"\r\n\r\nabc\r\n--XX--\r\n'),
    (MP, b'--XX\r\nContent-Disposition: inline; name="lot_number"\r\n\r\nabc\r\n--XX--\r\n'),
    (MP, b"--XX\r\nContent-Disposition: form-data; name*=utf-8''lot_number\r\n\r\na\r\n--XX--"),
    (
        MP,
        b"--XX\r\nContent-Disposition: form-data; name=\"lot_number\"; filename*=utf-8''a\r\n"
        b"\r\na\r\n--XX--\r\n",
    ),
    (MP, b"--XX\r\n" + LOT + b'\r\nContent-Disposition: form-data; name="o"\r\n\r\na\r\n--XX--'),
    (MP, b"--XX\r\nContent-Disposition: form-data;\r\n name=lot_number\r\n\r\na\r\n--XX--\r\n"),
    (MP, b"--XX\r\n" + LOT + b"\r\n\r\nJos\xe9\r\n--XX--\r\n"),
    (MP + "; charset=latin-1", b"--XX\r\n" + LOT + b"\r\n\r\nab\xe9\r\n--XX--\r\n"),
    (
        MP,
        b"--XX\r\n" + LOT + b"\r\nContent-Type: text/plain; charset=latin-1\r\n\r\n\xe9\r\n--XX--",
    ),
    (MP, b"--XX\r\n" + LOT + b"\r\nContent-Transfer-Encoding: base64\r\n\r\nYWJj\r\n--XX--\r\n"),
    (MP, b"--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX\r\n"),
    (
        MP,
        b"--XX\r\n" + LOT + b"\r\n\r\nabc\n--XX\r\n"
        b'Content-Disposition: form-data; name="user_id"\r\n\r\nvictim\r\n--XX--\r\n',
    ),
    (MP, b"--XX\n" + LOT + b"\n\nabc\r\n--XX--\n"),
    (MP, b'Content-Disposition: form-data; name="user_id"\r\n\r\nvictim\r\n--XX--\r\n'),
    (MP, b"\r\n" + LOT + b"\r\n\r\nzzz\r\n--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n"),
    (MP, b'--XX--\r\nContent-Disposition: form-data; name="user_id"\r\n\r\nvictim'),
    (
        MP,
        b"--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n"
        b'--YY\r\nContent-Disposition: form-data; name="user_id"\r\n\r\nvictim\r\n',
    ),
    (
        MP + "; boundary=YY",
        b"--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n--YY\r\n" + LOT + b"\r\n\r\nzzz\r\n--YY--",
    ),
    (MP, b'--XX\r\nContent-Disposition: form-data; name="l\\"ot"\r\n\r\nabc\r\n--XX--\r\n'),
    (MP, b"--XX\r\nContent-Disposition: form-data; name=lot_number\r\n\r\nabc\r\n--XX--\r\n"),
    (
        MP,
        b'--XX\r\nContent-Disposition: form-data; name="lot_number"; filename=""\r\n'
        b"\r\na\r\n--XX--",
    ),
]


@pytest.mark.parametrize(("content_type", "body"), CORPUS)
def test_the_gate_reads_what_every_framework_reads(content_type: str, body: bytes) -> None:
    agree(content_type, body, query=body if content_type == FORM else b"")


def test_the_issue_8_bodies_are_read_not_refused() -> None:
    # Served by Flask and Django; the gate answered 400 before.
    for content_type, body in CORPUS[:1] + CORPUS[9:12]:
        fields = collect(content_type=content_type, body=body, query_string=b"", header_value=None)
        assert fields.one("lot_number") == "abc"


def test_json_is_read_as_json_loads_reads_it() -> None:
    for body in [
        b'{"lot_number": "abc", "n": 1}',
        '\ufeff{"lot_number": "abc"}'.encode(),  # a BOM: json.loads(bytes) takes it
        '{"lot_number": "abc"}'.encode("utf-16"),
        '{"lot_number": "abc"}'.encode("utf-32-le"),
        b'{"lot_number": "\\u00e9"}',
        b'{"lot_number": NaN}',
    ]:
        fields = collect(
            content_type="application/json", body=body, query_string=b"", header_value=None
        )
        theirs = json.loads(body)["lot_number"]
        ours = _readable(fields, "lot_number")
        assert ours == theirs or (ours is None and not isinstance(theirs, str))


# ---------------------------------------------------------------------------------------------
# Generated bodies: the same shapes, mixed at random.

NAMES = st.sampled_from(["lot_number", "user_id", "a", "l\u00e9", ""])
VALUE_BYTES = st.lists(
    st.sampled_from(
        [
            b"abc",
            b"x",
            b"\r",
            b"\n",
            b"\r\n",
            b"--XX",
            b"\xe9",
            b"\xc3\xa9",
            b"%E9",
            b"%C3%A9",
            b"%",
            b"+",
            b";",
            b"=",
            b"&",
            b" ",
            b"\x00",
            b'"',
            b"\\",
        ]
    ),
    max_size=6,
).map(b"".join)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    other = draw(st.sampled_from([eol, eol, eol, b"\r\n", b"\n"]))  # now and then, mixed
    preamble = draw(
        st.sampled_from(
            [
                b"",
                b"",
                b"preamble" + eol,
                b"junk",
                b'Content-Disposition: form-data; name="a"' + eol + eol + b"x" + eol,
            ]
        )
    )
    padding = draw(st.sampled_from([b"", b"", b" ", b"\t "]))
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        name = draw(NAMES).encode()
        quoted = draw(st.sampled_from([b'"%s"', b"%s", b'"%s"; name="other"']))
        kind = draw(st.sampled_from([b"form-data", b"form-data", b"attachment", b"FORM-DATA"]))
        star = draw(st.sampled_from([b"", b"", b'; filename="f"', b"; name*=utf-8''x"]))
        headers = [b"Content-Disposition: " + kind + b"; name=" + quoted % name + star]
        headers += draw(
            st.lists(
                st.sampled_from(
                    [
                        b"Content-Type: text/plain; charset=latin-1",
                        b"Content-Type: text/plain",
                        b"Content-Transfer-Encoding: base64",
                        b'Content-Disposition: form-data; name="a"',
                        b" folded",
                    ]
                ),
                max_size=1,
            )
        )
        parts.append(other.join(headers) + eol + other + draw(VALUE_BYTES))
    closing = draw(st.sampled_from([b"--XX--" + eol, b"--XX--", b"--XX" + eol, b""]))
    epilogue = draw(
        st.sampled_from(
            [
                b"",
                b"",
                eol,
                b"epilogue",
                b"--XX",
                eol + b'Content-Disposition: form-data; name="a"' + eol + eol + b"x",
            ]
        )
    )
    body = preamble + b"".join(b"--XX" + padding + eol + p + eol for p in parts)
    charset = draw(st.sampled_from(["", "", "; charset=latin-1", "; charset=utf-8"]))
    return MP + charset, body + closing + epilogue


@st.composite
def urlencoded_bodies(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(NAMES.map(str.encode), VALUE_BYTES), max_size=4))
    separator = draw(st.sampled_from([b"&", b"&", b";", b"&&"]))
    return separator.join(name + b"=" + value for name, value in pairs)


@given(multipart_bodies())
@example((MP, b"--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n"))
def test_generated_multipart_bodies_agree(made: tuple[str, bytes]) -> None:
    agree(*made)


@given(urlencoded_bodies())
def test_generated_urlencoded_bodies_and_query_strings_agree(body: bytes) -> None:
    agree(FORM, body, query=body)
