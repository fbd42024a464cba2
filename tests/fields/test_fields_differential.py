"""The gate's field parser against the real request parsers of Starlette, Flask (Werkzeug),
Django, Falcon and Litestar, on the same bytes.

Falcon is read twice: through its WSGI ``falcon.Request`` and its ASGI ``falcon.asgi.Request``.
Their form parsers are the same code (urlencoded and multipart ``get_media()``), but the ASGI
request decodes the query string as UTF-8 (and fails, a 500, on what is not) where the WSGI one
takes PEP 3333's latin-1. Litestar is a real app with one view, called over ASGI in process: a
Litestar request needs the route handler its app puts in the scope. It parses multipart with the
``multipart`` package, a parser none of the others use.

The property, for every name either side reads from a body the gate accepts:

- if the gate reads a value for it (``Fields.one`` succeeds), each framework reads that same
  single value, or nothing at all under that name. Reading nothing is common: Django reads no
  field from a bare-LF multipart body, Falcon and Litestar refuse one (400), Falcon ignores a
  part header without a space after its colon, Litestar refuses a part that is not
  ``form-data`` and answers 500 for a value it cannot decode. A view that has no value cannot
  act on another one;
- if the gate has no such name, no framework reads a value under it (else the gate would take
  the name from the query string or the X-Captcha header while the app reads the body's).

A body the gate refuses (400/413), or a name it refuses to read (duplicated, unreadable), is
always allowed: refusing is the gate's way out of an ambiguity. Where a framework refuses the
body, it has no values and the first rule holds trivially.

JSON bodies are held to the first rule against each framework's own JSON reading (Starlette's
and Litestar's ``request.json()``, Werkzeug's ``get_json()``, Falcon's ``get_media()``, and
``json.loads`` of the body, which is what a Django view does). Falcon and Litestar refuse a BOM
and UTF-16/32 bodies that the others take, and Litestar (msgspec) NaN and lone surrogates.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from django.conf import settings
from hypothesis import example, given
from hypothesis import strategies as st

from captcha_guard._fields import BodyError, FieldError, Fields, collect

if not settings.configured:
    settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], DEFAULT_CHARSET="utf-8")

import falcon
import falcon.asgi
from django.core.handlers.wsgi import WSGIRequest
from litestar import Litestar, post
from litestar import Request as LitestarRequest
from litestar.datastructures import UploadFile as LitestarUploadFile
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
        request = StarletteRequest(_scope(content_type, body, query), _receiver(body))
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


def _receiver(body: bytes) -> Callable[[], Awaitable[dict[str, Any]]]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _scope(content_type: str, body: bytes, query: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/login",
        "raw_path": b"/login",
        "root_path": "",
        "query_string": query,
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", content_type.encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
        ],
        "server": ("127.0.0.1", 80),
        "client": ("127.0.0.1", 50000),
        "state": {},
    }


def _falcon_lists(params: dict[str, Any]) -> Read:
    # Falcon gives a repeated key as a list and a single one as a str.
    return {k: v if isinstance(v, list) else [v] for k, v in params.items()}


def _falcon_value(text: str | None, data: bytes) -> str:
    # get_text() is None for a part whose Content-Type is not text/plain; an app that wants
    # the field anyway decodes the bytes itself (and a 500 if they are not UTF-8).
    return data.decode() if text is None else text


def falcon_wsgi(content_type: str, body: bytes, query: bytes) -> tuple[Read, Read]:
    request = falcon.Request(_environ(content_type, body, query))
    args = _falcon_lists(request.params)
    form: Read = {}
    try:
        media = request.get_media()
        if isinstance(media, dict):  # URLEncodedFormHandler
            form = _falcon_lists(media)
        else:  # MultipartForm: parts are parsed as they are iterated
            for part in media:
                if part.name is not None and part.filename is None:
                    value = _falcon_value(part.get_text(), part.get_data())
                    form.setdefault(part.name, []).append(value)
    except Exception:  # MediaMalformedError, MultipartParseError: a 400; others a 500
        form = {}
    return form, args


def falcon_asgi(content_type: str, body: bytes, query: bytes) -> tuple[Read, Read]:
    async def read() -> tuple[Read, Read]:
        try:
            request = falcon.asgi.Request(_scope(content_type, body, query), _receiver(body))
        except UnicodeDecodeError:  # a query string that is not UTF-8: a 500, no view runs
            return {}, {}
        args = _falcon_lists(request.params)
        form: Read = {}
        try:
            media = await request.get_media()
            if isinstance(media, dict):
                form = _falcon_lists(media)
            else:
                async for part in media:
                    if part.name is not None and part.filename is None:
                        data = await part.get_data()
                        value = _falcon_value(await part.get_text(), data)
                        form.setdefault(part.name, []).append(value)
        except Exception:
            form = {}
        return form, args

    return asyncio.run(read())


@post("/login", status_code=200)
async def _litestar_view(request: LitestarRequest[Any, Any, Any]) -> dict[str, list[list[str]]]:
    form = await request.form()
    return {
        "form": [[k, v] for k, v in form.multi_items() if not isinstance(v, LitestarUploadFile)],
        "args": [[k, v] for k, v in request.query_params.multi_items()],
    }


@post("/json", status_code=200)
async def _litestar_json(request: LitestarRequest[Any, Any, Any]) -> dict[str, Any]:
    return {"document": await request.json()}


# A real app: a Litestar Request needs a route handler in its scope, and the app is what puts
# it there. logging_config=None keeps the 500s it answers for undecodable parts off stderr.
_LITESTAR = Litestar([_litestar_view, _litestar_json], debug=False, logging_config=None)


def litestar(content_type: str, body: bytes, query: bytes) -> tuple[Read, Read]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def call() -> None:
        scope = _scope(content_type, body, query)
        await _LITESTAR(scope, _receiver(body), send)  # type: ignore[arg-type]

    asyncio.run(call())
    if sent[0]["status"] != 200:  # 400 for a body it cannot parse, 500 for one it cannot decode
        return {}, {}
    document = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    form: Read = {}
    args: Read = {}
    for name, value in document["form"]:
        form.setdefault(name, []).append(value)
    for name, value in document["args"]:
        args.setdefault(name, []).append(value)
    return form, args


FRAMEWORKS: dict[str, Callable[[str, bytes, bytes], tuple[Read, Read]]] = {
    "starlette": starlette,
    "flask": flask,
    "django": django,
    "falcon": falcon_wsgi,
    "falcon-asgi": falcon_asgi,
    "litestar": litestar,
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

#: Content-Disposition that the parsers split differently: a file to the gate (which skips it),
#: or another name, and a field under the name that the gate then takes from the query string.
SPLIT_DIFFERENTLY: list[tuple[str, bytes]] = [
    (MP, b"--XX\r\nContent-Disposition: " + disposition + b"\r\n\r\nvictim\r\n--XX--\r\n")
    for disposition in [
        b'form-data; name="user\\_id"',  # Werkzeug: user_id
        b'form-data; name="user_id%22"',  # Werkzeug, Litestar: user_id"
        b'form-data; name="user_id%0A"',  # Litestar: user_id and a line break
        b'form-data; name="user_id";\tfilename="f"',  # Litestar: a field
        b'form-data; name="user_id"; filename ="f"',  # Werkzeug: a field
        b'form-data; name="user_id"; filename="a\\"',  # Werkzeug: an unclosed quote, a field
        b'form-data; name="user_id"; filename="\\\\"',  # Litestar: IE's path fix, no filename
        b'form-data;\tname="user_id"',  # Litestar: no name (so "")
    ]
]


def _two_boundaries(header: str, used: bytes) -> tuple[str, bytes]:
    """A form cut at ``--used`` by the gate, whose first part holds ``--XX`` lines a parser
    that reads the header's boundary as XX cuts a user_id part out of."""
    inner = b'\r\n--XX\r\nContent-Disposition: form-data; name="user_id"\r\n\r\nvictim'
    return (
        "multipart/form-data; boundary=" + header,
        b"--XX\r\n--"
        + used
        + b'\r\nContent-Disposition: form-data; name="a"\r\n\r\nq'
        + inner
        + b"\r\n--XX--\r\n--"
        + used
        + b"--\r\n",
    )


#: Boundary parameters the parsers read differently: Falcon strips a trailing space, Werkzeug
#: and Litestar cut an unquoted one at its first byte that is not a token byte.
TWO_BOUNDARIES: list[tuple[str, bytes]] = [
    _two_boundaries('"XX "', b"XX "),  # Falcon: XX
    _two_boundaries("XX:YY", b"XX:YY"),  # Werkzeug, Litestar: XX
    _two_boundaries("XX/YY", b"XX/YY"),  # Werkzeug: XX
    _two_boundaries("XX=YY", b"XX=YY"),  # Werkzeug: XX
]

_USER_ID = b'--XX\r\nContent-Disposition: form-data; name="user_id"\r\n\r\nvictim\r\n--XX--\r\n'

#: Content types Falcon matches as it matches an Accept header: a form to it, none to the gate.
NOT_ONE_MEDIA_TYPE: list[tuple[str, bytes]] = [
    ("text/plain, " + MP, _USER_ID),
    (FORM + ", " + MP, _USER_ID),
    ("multipart/*; boundary=XX", _USER_ID),
]

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
    *SPLIT_DIFFERENTLY,
    *TWO_BOUNDARIES,
    *NOT_ONE_MEDIA_TYPE,
    # Django (and Starlette, when it decodes) read a name by the form's charset=: user_id here.
    (MP + "; charset=utf-16", _USER_ID.replace(b"user_id", "user_id".encode("utf-16-le"))),
    _two_boundaries('"X X"', b"X X"),  # a space inside a quoted boundary: all read it whole
    # Falcon reads part headers split at ": ", so it ignores this one; the others read it.
    (MP, b'--XX\r\nContent-Disposition:form-data; name="lot_number"\r\n\r\nabc\r\n--XX--\r\n'),
    # Litestar refuses a part that is not form-data; Falcon a Content-Transfer-Encoding.
    (MP, b'--XX\r\nContent-Disposition: attachment; name="lot_number"\r\n\r\nabc\r\n--XX--'),
    (
        MP,
        b"--XX\r\n" + LOT + b"\r\nContent-Transfer-Encoding: BINARY\r\n\r\nabc\r\n--XX--\r\n",
    ),
]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_every_reader_reads_a_plain_form(framework: str) -> None:
    # A reader that read nothing would agree with everything: each must read what a browser
    # sends, from the body and from the query string.
    read = FRAMEWORKS[framework]
    query = b"lot_number=q&x=1&x=2"
    assert read(FORM, b"lot_number=abc&a=", query) == (
        {"lot_number": ["abc"], "a": [""]},
        {"lot_number": ["q"], "x": ["1", "2"]},
    )
    file_part = b'--XX\r\nContent-Disposition: form-data; name="f"; filename="f.txt"\r\n\r\nzz\r\n'
    body = file_part + b"--XX\r\n" + LOT + b"\r\n\r\nabc\r\n--XX--\r\n"
    assert read(MP, body, b"") == ({"lot_number": ["abc"]}, {})


@pytest.mark.parametrize(("content_type", "body"), CORPUS)
def test_the_gate_reads_what_every_framework_reads(content_type: str, body: bytes) -> None:
    agree(content_type, body, query=body if content_type == FORM else b"")


def test_the_issue_8_bodies_are_read_not_refused() -> None:
    # Served by Flask and Django; the gate answered 400 before.
    for content_type, body in CORPUS[:1] + CORPUS[9:12]:
        fields = collect(content_type=content_type, body=body, query_string=b"", header_value=None)
        assert fields.one("lot_number") == "abc"


def test_a_disposition_the_parsers_split_differently_is_refused_with_its_reason() -> None:
    reasons = {
        b"\\": "with a backslash",
        b"%": "name with %22, %0D or %0A",
        b"\t": "frameworks split differently",
        b" =": "frameworks split differently",
    }
    for content_type, body in SPLIT_DIFFERENTLY:
        with pytest.raises(BodyError) as refused:
            collect(content_type=content_type, body=body, query_string=b"", header_value=None)
        head = body.split(b"\r\n")[1]
        expected = next(reason for mark, reason in reasons.items() if mark in head)
        assert refused.value.status == 400 and refused.value.code == "bad_request"
        assert expected in str(refused.value), (head, str(refused.value))
        # Not a refusal for its own sake: the frameworks really do read this part apart (one
        # finds a field under a name another does not have, or under another name).
        readings = {
            framework: tuple(sorted(read(content_type, body, b"")[0]))
            for framework, read in FRAMEWORKS.items()
        }
        assert len(set(readings.values())) > 1, (head, readings)


def test_a_boundary_the_parsers_read_differently_is_refused_with_its_reason() -> None:
    for content_type, body in TWO_BOUNDARIES:
        with pytest.raises(BodyError) as refused:
            collect(content_type=content_type, body=body, query_string=b"", header_value=None)
        assert refused.value.status == 400 and refused.value.code == "bad_request"
        assert "boundary that frameworks read differently" in str(refused.value)
        # Some framework really does read user_id out of it, which the gate did not see.
        readers = [
            name
            for name, read in FRAMEWORKS.items()
            if read(content_type, body, b"")[0].get("user_id")
        ]
        assert readers, content_type


def test_a_content_type_that_is_not_one_media_type_is_refused_with_its_reason() -> None:
    for content_type, body in NOT_ONE_MEDIA_TYPE:
        with pytest.raises(BodyError, match="a list or a wildcard, not one media type"):
            collect(content_type=content_type, body=body, query_string=b"", header_value=None)
        assert falcon_wsgi(content_type, body, b"")[0] == {"user_id": ["victim"]}
    # Without a body there is nothing to read either way.
    fields = collect(content_type="text/plain, */*", body=b"", query_string=b"", header_value=None)
    assert "user_id" not in fields


JSON_BODIES = [
    b'{"lot_number": "abc", "n": 1}',
    '\ufeff{"lot_number": "abc"}'.encode(),  # a BOM: json.loads(bytes) takes it
    '{"lot_number": "abc"}'.encode("utf-16"),
    '{"lot_number": "abc"}'.encode("utf-32-le"),
    b'{"lot_number": "\\u00e9"}',
    b'{"lot_number": NaN}',
    b'{"lot_number": "a", "lot_number": "b"}',
    b'{"lot_number": "\\ud800"}',
    b'{"lot_number": "a\\u0000b"}',
    b'{"lot_number": "abc"} ',
    b'{"lot_number": "abc"}\n{"lot_number": "zzz"}',
    b'["lot_number", "abc"]',
    b'{"lot\\u005fnumber": "abc"}',
    b'{"lot_number": "abc", "lot_number\\u0000": "zzz"}',
    '{"lot_number": "J\u00f6rg"}'.encode("latin-1"),
]


def _json_document(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except Exception:  # the framework refuses the body (400, or a 500 of its own)
        return None


def _json_readers(body: bytes) -> dict[str, Any]:
    """The document each framework's own JSON reading gives an app (None: it refuses)."""

    async def starlette_json() -> Any:
        scope = _scope("application/json", body, b"")
        return await StarletteRequest(scope, _receiver(body)).json()

    async def falcon_json() -> Any:
        request = falcon.asgi.Request(_scope("application/json", body, b""), _receiver(body))
        return await request.get_media()

    def litestar_json() -> Any:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {**_scope("application/json", body, b""), "path": "/json", "raw_path": b"/json"}
        asyncio.run(_LITESTAR(scope, _receiver(body), send))  # type: ignore[arg-type]
        if sent[0]["status"] != 200:
            raise ValueError(sent[0]["status"])
        return json.loads(b"".join(m.get("body", b"") for m in sent[1:]))["document"]

    def flask_json() -> Any:
        environ = _environ("application/json", body, b"")
        return WerkzeugRequest(environ).get_json()

    return {
        "json.loads (Django: apps parse request.body)": _json_document(lambda: json.loads(body)),
        "starlette": _json_document(lambda: asyncio.run(starlette_json())),
        "flask": _json_document(flask_json),
        "falcon": _json_document(
            lambda: falcon.Request(_environ("application/json", body, b"")).get_media()
        ),
        "falcon-asgi": _json_document(lambda: asyncio.run(falcon_json())),
        "litestar": _json_document(litestar_json),
    }


@pytest.mark.parametrize("body", JSON_BODIES)
def test_json_is_read_as_every_framework_reads_it(body: bytes) -> None:
    # The same property for JSON: a value the gate reads is the one every framework that
    # accepts the body reads under that key (or the key is absent there).
    try:
        fields = collect(
            content_type="application/json", body=body, query_string=b"", header_value=None
        )
    except BodyError:
        return  # refused: the gate's way out of an ambiguity
    ours = _readable(fields, "lot_number")
    if ours is None:
        return
    for framework, document in _json_readers(body).items():
        if isinstance(document, dict) and "lot_number" in document:
            assert document["lot_number"] == ours, (framework, ours, document)


def test_every_json_reader_reads_a_plain_document() -> None:
    readers = _json_readers(b'{"lot_number": "abc"}')
    assert readers == {name: {"lot_number": "abc"} for name in readers}


# ---------------------------------------------------------------------------------------------
# Generated bodies: the same shapes, mixed at random.

# With the escapes frameworks undo differently in a part's name (Werkzeug reads user\_id as
# user_id, Werkzeug and Litestar read a%22b as a"b), and user_id in UTF-16, which Django
# reads as user_id under a charset=utf-16 form.
NAMES = st.sampled_from(
    [
        "lot_number",
        "user_id",
        "a",
        "l\u00e9",
        "",
        "user\\_id",
        "a%22b",
        "a\tb",
        "u\0s\0e\0r\0_\0i\0d\0",
    ]
)
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
        # Where one parser sees a filename (a file, skipped) and another none (a field).
        name_param = draw(
            st.sampled_from(
                [b"; name=", b"; name=", b";name=", b" ; name=", b";\tname=", b"; name ="]
            )
        )
        star = draw(
            st.sampled_from(
                [
                    b"",
                    b"",
                    b'; filename="f"',
                    b"; name*=utf-8''x",
                    b';\tfilename="f"',
                    b'; filename ="f"',
                    b'; filename="a\\"',
                    b'; filename="\\\\"',
                    b'; filename="C:\\"',
                ]
            )
        )
        headers = [b"Content-Disposition: " + kind + name_param + quoted % name + star]
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
    charset = draw(
        st.sampled_from(["", "", "; charset=latin-1", "; charset=utf-8", "; charset=utf-16"])
    )
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


@st.composite
def boundary_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """A boundary parameter spelled some way, and a body cut now at what the gate reads as the
    boundary, now at XX (what a parser that strips or cuts the parameter may read)."""
    header, used = draw(
        st.sampled_from(
            [
                ("XX", b"XX"),
                ('"XX"', b"XX"),
                ('"XX "', b"XX "),
                ('"XX\t"', b"XX\t"),
                ("XX:YY", b"XX:YY"),
                ('"XX:YY"', b"XX:YY"),
                ("XX,YY", b"XX,YY"),
                ("XX/YY", b"XX/YY"),
                ('"X X"', b"X X"),
                ('XX"YY', b'XX"YY'),
                ('"XX%22"', b"XX%22"),
                ('"XX\\"YY"', b'XX"YY'),
                ("XX!", b"XX!"),
            ]
        )
    )
    delimiter = st.sampled_from([b"--" + used, b"--" + used, b"--XX"])
    body = draw(st.sampled_from([b"", b"--XX\r\n"]))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([b"lot_number", b"user_id", b"a"]))
        body += draw(delimiter) + b'\r\nContent-Disposition: form-data; name="' + name + b'"'
        body += b"\r\n\r\n" + draw(st.sampled_from([b"abc", b"x"])) + b"\r\n"
    body += draw(delimiter) + b"--\r\n"
    if draw(st.booleans()):
        body += draw(delimiter) + b"--\r\n"
    return "multipart/form-data; boundary=" + header, body


@given(boundary_bodies())
def test_generated_boundary_spellings_agree(made: tuple[str, bytes]) -> None:
    agree(*made)


# ---------------------------------------------------------------------------------------------
# The head: headers and parameters that make frameworks read the same bytes differently
# (issue 15, section 3). The gate refuses these before it reads the body (captcha_guard._head)
# or with it (a charset); each case also shows that some framework really reads them apart.

from captcha_guard._head import check_head  # noqa: E402
from captcha_guard._request import from_scope  # noqa: E402

_VICTIM = b"user_id=victim"


def _head_scope(headers: list[tuple[bytes, bytes]], body: bytes) -> dict[str, Any]:
    scope = _scope(FORM, body, b"")
    scope["headers"] = [(b"host", b"127.0.0.1"), *headers]
    return scope


def _head_refusal(headers: list[tuple[bytes, bytes]], body: bytes) -> BodyError | None:
    request = from_scope(_head_scope(headers, body), "/login", lambda scope: None)
    return check_head(request)


def _falcon_asgi_form(headers: list[tuple[bytes, bytes]], body: bytes) -> Read:
    async def read() -> Read:
        request = falcon.asgi.Request(_head_scope(headers, body), _receiver(body))
        media = await request.get_media()
        return _falcon_lists(media) if isinstance(media, dict) else {}

    return asyncio.run(read())


def _starlette_form(headers: list[tuple[bytes, bytes]], body: bytes) -> Read:
    async def read() -> Read:
        request = StarletteRequest(_head_scope(headers, body), _receiver(body))
        async with request.form() as data:
            return {k: [v] for k, v in data.items() if isinstance(v, str)}

    return asyncio.run(read())


def _django_asgi_form(headers: list[tuple[bytes, bytes]], body: bytes) -> Read:
    from django.core.handlers.asgi import ASGIRequest

    request = ASGIRequest(_head_scope(headers, body), io.BytesIO(body))
    return {k: request.POST.getlist(k) for k in request.POST}


def _drf_data(content_type: str, body: bytes) -> Any:
    """What a Django REST framework view reads as ``request.data``."""
    from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
    from rest_framework.request import Request as DRFRequest

    parsers = [JSONParser(), FormParser(), MultiPartParser()]
    request = DRFRequest(WSGIRequest(_environ(content_type, body, b"")), parsers=parsers)
    data = request.data
    return {k: data.getlist(k) for k in data} if hasattr(data, "getlist") else data


def test_a_repeated_content_type_is_read_three_ways_and_refused() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-type", FORM.encode())]
    # Starlette reads the first (no form), Django under ASGI joins them (no form), Falcon's
    # ASGI request the last: user_id=victim, where the gate would have taken the query's.
    assert _starlette_form(headers, _VICTIM) == {}
    assert _django_asgi_form(headers, _VICTIM) == {}
    assert _falcon_asgi_form(headers, _VICTIM) == {"user_id": ["victim"]}
    refused = _head_refusal(headers, _VICTIM)
    assert refused is not None and refused.status == 400
    assert refused.code == "repeated_header" and "content-type" in str(refused)


@pytest.mark.parametrize(
    "name", [b"content-type", b"content-length", b"content-encoding", b"transfer-encoding"]
)
def test_every_repeated_framing_header_is_refused(name: str) -> None:
    value = FORM.encode() if name == b"content-type" else b"14"
    refused = _head_refusal([(name, value), (name.upper(), value)], _VICTIM)
    assert refused is not None and refused.code == "repeated_header", name


def test_other_repeated_headers_and_an_identity_encoding_are_not_refused() -> None:
    headers = [
        (b"content-type", FORM.encode()),
        (b"accept", b"text/html"),
        (b"accept", b"application/json"),
        (b"content-encoding", b"Identity"),
    ]
    assert _head_refusal(headers, _VICTIM) is None


def test_a_compressed_body_is_read_otherwise_by_an_app_that_decompresses_it_and_refused() -> None:
    import gzip

    # FastAPI's documented GzipRequest decompresses the body before the form is parsed; the
    # gate, parsing the raw bytes, would read none of its fields (or others, crafted).
    body = gzip.compress(_VICTIM)

    async def decompressing() -> Read:
        request = StarletteRequest(
            _head_scope([(b"content-type", FORM.encode())], body), _receiver(body)
        )
        plain = gzip.decompress(await request.body())
        return {k: [v] for k, v in [pair.split("=") for pair in plain.decode().split("&")]}

    assert asyncio.run(decompressing()) == {"user_id": ["victim"]}
    gate = collect(content_type=FORM, body=body, query_string=b"", header_value=None)
    assert "user_id" not in gate
    for encoding in (b"gzip", b"br", b"deflate", b"identity, gzip"):
        headers = [(b"content-type", FORM.encode()), (b"content-encoding", encoding)]
        refused = _head_refusal(headers, body)
        assert refused is not None and refused.code == "unsupported_encoding", encoding


#: Bodies whose charset= Django REST framework's parsers honour and the gate (as Starlette,
#: Werkzeug and Falcon) would not: UTF-7 spells "victim" in ASCII that reads as something else.
CHARSET_BODIES: list[tuple[str, bytes]] = [
    (FORM + "; charset=utf-7", b"user_id=+AHYAaQBj-tim"),
    ("application/json; charset=utf-7", b'{"user_id": "+AHYAaQBj-tim"}'),
]


@pytest.mark.parametrize(("content_type", "body"), CHARSET_BODIES)
def test_a_charset_other_than_utf8_is_read_otherwise_and_refused(
    content_type: str, body: bytes
) -> None:
    assert _drf_data(content_type, body) in ({"user_id": ["victim"]}, {"user_id": "victim"})
    for framework in ("starlette", "flask", "falcon"):  # they ignore the parameter
        form, _ = FRAMEWORKS[framework](content_type, body, b"")
        assert form.get("user_id") != ["victim"], framework
    with pytest.raises(BodyError) as refused:
        collect(content_type=content_type, body=body, query_string=b"", header_value=None)
    assert refused.value.status == 400 and refused.value.code == "unsupported_charset"


@pytest.mark.parametrize(
    "parameter",
    ["charset=latin-1", "charset=unknown-thing", "charset=utf-8; charset=utf-7", "Charset=UTF-16"],
)
def test_every_other_charset_on_a_form_or_json_is_refused(parameter: str) -> None:
    for kind, body in ((FORM, _VICTIM), ("application/json", b'{"user_id": "victim"}')):
        with pytest.raises(BodyError, match="charset"):
            collect(
                content_type=f"{kind}; {parameter}", body=body, query_string=b"", header_value=None
            )


@pytest.mark.parametrize(
    "parameter", ["", "; charset=utf-8", '; charset="UTF-8"', "; charset=utf8"]
)
def test_utf8_or_no_charset_is_read(parameter: str) -> None:
    for kind, body in ((FORM, _VICTIM), ("application/json", b'{"user_id": "victim"}')):
        fields = collect(
            content_type=kind + parameter, body=body, query_string=b"", header_value=None
        )
        assert fields.one("user_id") == "victim"


#: A comma inside a quoted boundary: one media type, read alike by every framework that reads
#: it (Falcon splits the header at the comma, as it splits an Accept header, and answers 415).
QUOTED_COMMA: list[tuple[str, bytes]] = [
    (
        'multipart/form-data; boundary="a,b"',
        b"--a,b\r\n" + LOT + b"\r\n\r\nabc\r\n--a,b--\r\n",
    ),
    (
        'multipart/form-data; boundary="XX,, YY"',
        b"--XX,, YY\r\n" + LOT + b"\r\n\r\nabc\r\n--XX,, YY--\r\n",
    ),
]


@pytest.mark.parametrize(("content_type", "body"), QUOTED_COMMA)
def test_a_quoted_boundary_with_a_comma_is_read_as_every_framework_reads_it(
    content_type: str, body: bytes
) -> None:
    fields = collect(content_type=content_type, body=body, query_string=b"", header_value=None)
    assert fields.one("lot_number") == "abc"
    readings = {name: read(content_type, body, b"")[0] for name, read in FRAMEWORKS.items()}
    refusing = {"falcon", "falcon-asgi"}
    assert readings == {
        name: {} if name in refusing else {"lot_number": ["abc"]} for name in FRAMEWORKS
    }
    assert _drf_data(content_type, body) == {"lot_number": ["abc"]}
    agree(content_type, body)
    # Unquoted, or with the quote left open, the comma is a list again, as Falcon reads it.
    for spelled in (content_type.replace('"', ""), content_type[:-1]):
        with pytest.raises(BodyError):
            collect(content_type=spelled, body=body, query_string=b"", header_value=None)
