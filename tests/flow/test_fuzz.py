"""Fuzzing both front doors with hypothesis: random bodies, content types, headers, paths,
methods and chunkings, at protected and unprotected routes, in every provider state.

For every request: never a 500 and never an exception out of the middleware; never a hang;
never a pass without a valid captcha (without well-formed fields when the provider is down);
and on a pass, the app gets exactly the bytes the client sent.

The examples per test come from the hypothesis profile (``HYPOTHESIS_PROFILE``): "ci" (the
default) runs a few hundred, "nightly" at least 10 000 (see tests/conftest.py).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import anyio
import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import given, settings
from hypothesis import strategies as st

from captcha_guard import CaptchaGuard, CircuitBreaker, Rule, WSGICaptchaGuard
from captcha_guard.testing import Outage
from tests import TLS
from tests.hardening_kit import CASES, ProviderCase, RecordingWSGIApp
from tests.helpers import Capture, FakeClock, RecordingApp
from tests.servers import serve_asgi

MAX_BODY = 16 * 1024
# "/LOGIN" and "/login.json" are protected too: the generic doors match any letter case
# (BlackSheep routes it) and Django REST framework's format suffixes (docs/routing.md).
PROTECTED_PATHS = ["/login", "/login/", "//login", "/LOGIN", "/login.json"]
UNPROTECTED_PATHS = ["/about", "/", "/loginx", "/login/more", "/static/app.js"]
STATES = ["up", "failing", "circuit open"]
#: Per request, in-process: far above what one takes, far below a hang.
DEADLINE = 5.0
EXAMPLES = settings().max_examples

# ---------------------------------------------------------------------------------------------
# What a request is made of. Strategies draw a recipe; the captcha fields are minted fresh for
# each run of it (a solved captcha verifies once), then placed where the recipe says.

# Characters a browser or a script might send, minus lone surrogates (which no encoder takes).
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24)
#: Names of the app's own fields: any text but the captcha's names, and nothing a multipart
#: header would have to escape (so that every encoding carries the name unchanged), nor the
#: %22, %0D, %0A that some multipart parsers decode in a name (the gate refuses those: 400).
NAME = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\\r\n'), max_size=24
).filter(lambda name: re.search("%(22|0d|0a)", name, re.IGNORECASE) is None)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
#: Values no provider's shape check can take, put anywhere in a field to break it.
#: (Not a blank: inside Alibaba's JSON parameter a blank can be valid.)
POISON = st.sampled_from(["\x00", "\n", "\t", "é", "\u202e", "\x7f"])
OPAQUE_TYPES = ["", "text/plain", "application/octet-stream", "text/html; charset=utf-8"]
CONTENT_TYPES = [
    *OPAQUE_TYPES,
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "application/json",
    "application/json; charset=utf-8",
    "application/vnd.api+json",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded, application/json",
]
PLACEMENTS = [
    None,
    "form",
    "form-latin1",  # <form accept-charset="ISO-8859-1">: the app's own fields in latin-1
    "json",
    "json-nested",
    "multipart",
    "multipart-lf",  # bare-LF line breaks, which Werkzeug serves
    "multipart-preamble",  # a preamble and an "attachment" part, which all frameworks read
    "query",
    "header",
]
DEFECTS = [None, "drop", "duplicate", "poison", "retype"]
#: Headers the test sets itself, and hop-by-hop ones that change how HTTP frames the request.
RESERVED_HEADERS = {
    "content-length",
    "content-type",
    "transfer-encoding",
    "host",
    "x-captcha",
    "connection",
    "upgrade",
    "expect",
    "te",
    "trailer",
    "keep-alive",
}
HEADER_NAME = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12).filter(
    lambda n: n not in RESERVED_HEADERS
)
# No leading or trailing blanks: HTTP clients refuse to send them (servers strip them).
HEADER_VALUE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip
)


@dataclass(frozen=True)
class Recipe:
    case: ProviderCase
    state: str
    protected: bool
    method: str
    path: str
    placement: str | None
    defect: str | None
    defect_at: int
    poison: str
    retype: Any
    junk_pairs: list[tuple[str, str]]
    junk_json: dict[str, Any]
    raw_body: bytes
    content_type: str
    with_length: bool
    oversize: bool
    cuts: list[int]
    headers: list[tuple[str, str]] = field(default_factory=list)
    accept: str = ""


@st.composite
def recipes(draw: st.DrawFn) -> Recipe:
    case = draw(st.sampled_from(CASES))
    names = set(case.issue(case.emulator()))
    junk_name = NAME.filter(lambda n: n not in names and n != "captcha")
    protected = draw(st.booleans())
    if protected:
        method = draw(st.sampled_from(["POST", "PUT", "PATCH", "DELETE"]))
        path = draw(st.sampled_from(PROTECTED_PATHS))
    else:
        method = draw(st.sampled_from(["GET", "HEAD", "POST", "OPTIONS", "DELETE"]))
        path = draw(st.sampled_from(UNPROTECTED_PATHS))
        if method in ("GET", "HEAD") and draw(st.booleans()):
            path = draw(st.sampled_from(PROTECTED_PATHS))  # a safe method on a guarded path
    placement = draw(st.sampled_from(PLACEMENTS))
    return Recipe(
        case=case,
        state=draw(st.sampled_from(STATES)),
        protected=protected,
        method=method,
        path=path,
        placement=placement,
        defect=draw(st.sampled_from(DEFECTS)) if placement else None,
        defect_at=draw(st.integers(0, 1000)),
        poison=draw(POISON),
        retype=draw(JSON_SCALARS.filter(lambda v: not isinstance(v, str)) | st.lists(TEXT)),
        junk_pairs=draw(st.lists(st.tuples(junk_name, TEXT), max_size=5)),
        junk_json=draw(st.dictionaries(junk_name, JSON_VALUES, max_size=5)),
        raw_body=draw(st.binary(max_size=512)),
        content_type=draw(st.sampled_from(CONTENT_TYPES)),
        with_length=draw(st.booleans()),
        oversize=draw(st.integers(0, 30)) == 0,
        cuts=draw(st.lists(st.integers(0, 1 << 16), max_size=6)),
        headers=draw(st.lists(st.tuples(HEADER_NAME, HEADER_VALUE), max_size=3)),
        accept=draw(st.sampled_from(["", "application/json", "text/html", "*/*"])),
    )


@dataclass
class Built:
    """A concrete request, and what must become of it."""

    method: str
    path: str
    query: bytes
    headers: list[tuple[str, str]]
    body: bytes
    chunks: list[bytes]
    #: "pass": a valid captcha, well placed: the app must get it. "refuse": it must not.
    #: "app": an unprotected request: the app must get it, whatever it is.
    expect: str


def build(recipe: Recipe, fields: dict[str, str]) -> Built:
    fields = dict(fields)
    names = list(fields)
    target = names[recipe.defect_at % len(names)]
    placement = recipe.placement
    defect = recipe.defect
    if defect == "retype" and placement not in ("json", "json-nested"):
        defect = "drop"  # only JSON carries a value that is not a string
    query: list[tuple[str, str]] = []
    extra: list[tuple[str, str]] = []
    json_fields: dict[str, Any] = dict(fields)
    if defect == "drop":
        del fields[target]
        del json_fields[target]
    elif defect == "poison":
        value = fields[target]
        cut = recipe.defect_at % (len(value) + 1)
        fields[target] = json_fields[target] = value[:cut] + recipe.poison + value[cut:]
    elif defect == "retype":
        json_fields[target] = recipe.retype
    elif defect == "duplicate":
        query.append((target, fields[target]))  # the same value again, from the query
    content_type = recipe.content_type
    body = recipe.raw_body
    if placement == "form":
        pairs = [*recipe.junk_pairs, *fields.items()]
        body, content_type = urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    elif placement == "form-latin1":
        junk = urlencode(recipe.junk_pairs, encoding="latin-1", errors="replace")
        body = "&".join(filter(None, [junk, urlencode(list(fields.items()))])).encode()
        content_type = "application/x-www-form-urlencoded"
    elif placement in ("json", "json-nested"):
        document = dict(recipe.junk_json)
        if placement == "json":
            document.update(json_fields)
        else:
            document["captcha"] = json_fields
        body, content_type = json.dumps(document).encode(), "application/json"
    elif placement in ("multipart", "multipart-lf", "multipart-preamble"):
        body, content_type = multipart(
            [*recipe.junk_pairs, *fields.items()],
            eol="\n" if placement == "multipart-lf" else "\r\n",
            preamble=placement == "multipart-preamble",
        )
    elif placement in ("query", "header"):
        if content_type not in OPAQUE_TYPES:
            # A body the gate parses must parse: the app's own form, then.
            body = urlencode(recipe.junk_pairs).encode()
            content_type = "application/x-www-form-urlencoded"
        if placement == "query":
            query.extend(fields.items())
        else:
            extra.append(("x-captcha", urlencode(list(fields.items()))))
    if recipe.oversize:
        body += b"&pad=" + b"x" * MAX_BODY
    headers = [*recipe.headers, *extra]
    if content_type:
        headers.append(("content-type", content_type))
    if recipe.accept:
        headers.append(("accept", recipe.accept))
    if recipe.with_length:
        headers.append(("content-length", str(len(body))))
    cuts = sorted({c % (len(body) + 1) for c in recipe.cuts})
    edges = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in itertools.pairwise(edges)]
    if not recipe.protected:
        expect = "app"
    elif placement is None or defect is not None or recipe.oversize:
        expect = "refuse"
    else:
        expect = "pass"
    return Built(
        recipe.method,
        recipe.path,
        urlencode(query).encode(),
        headers,
        body,
        chunks,
        expect,
    )


def _with(recipe: Recipe, **changes: Any) -> Recipe:
    return Recipe(**{**recipe.__dict__, **changes})


def multipart(
    pairs: list[tuple[str, str]], *, eol: str = "\r\n", preamble: bool = False
) -> tuple[bytes, str]:
    boundary = "fuzz" + hashlib.sha256(repr(pairs).encode()).hexdigest()[:16]
    kind = "attachment" if preamble else "form-data"
    parts = ["This is a preamble, which every framework but Starlette skips." + eol] * preamble
    for name, value in pairs:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")
        if eol == "\n":
            value = value.replace("\r", "")  # a CR in a bare-LF body is refused: cut elsewhere
        parts.append(f'--{boundary}{eol}content-disposition: {kind}; name="{quoted}"{eol}{eol}')
        parts.append(value + eol)
    file_bytes = bytes(range(256)).replace(b"\r", b"") if eol == "\n" else bytes(range(256))
    head = (
        f'--{boundary}{eol}content-disposition: form-data; name="f"; filename="a.bin"{eol}'
        f"content-type: application/octet-stream{eol}{eol}"
    )
    body = (
        "".join(parts).encode() + head.encode() + file_bytes + f"{eol}--{boundary}--{eol}".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def judge(built: Built, recipe: Recipe, status: int, seen_body: bytes | None, calls: int) -> None:
    """The invariants, for one request and what came of it."""
    assert status != 500
    assert status in (200, 400, 403, 413), status
    if built.expect == "app":
        assert status == 200
        assert calls == 1
        assert seen_body == built.body
    elif built.expect == "refuse":
        assert status != 200
        assert calls == 0
    else:
        assert status == 200, status
        assert calls == 1
        assert seen_body == built.body


# ---------------------------------------------------------------------------------------------
# The guards: one per provider, front door and provider state, against in-process emulators.


@dataclass
class Stand:
    """A guard in one provider state, and how to mint fields it will accept."""

    case: ProviderCase
    emulator: Any
    guard: Any
    app: Any

    def fields(self) -> dict[str, str]:
        return self.case.issue(self.emulator)


def stand_up(case: ProviderCase, state: str, door: str) -> Stand:
    emulator = case.emulator()
    breaker = CircuitBreaker(1 if state == "circuit open" else 10**9, 10**9, clock=FakeClock())
    provider = case.provider(emulator, f"http://{case.name}.invalid{case.path}", 5.0, breaker)
    rules = [Rule("/login")]
    if state != "up":
        emulator.outage = Outage.HTTP_500
    if state == "circuit open":
        breaker.record(breaker.acquire(), ok=False)  # type: ignore[arg-type]
        assert breaker.state.value == "open"
    guard: Any
    app: Any
    if door == "asgi":
        app = RecordingApp()
        client = httpx.AsyncClient(transport=emulator.transport())
        guard = CaptchaGuard(
            app, rules=rules, provider=provider, max_body_size=MAX_BODY, http_client=client
        )
    else:
        app = RecordingWSGIApp()
        client_sync = httpx.Client(transport=emulator.transport())
        guard = WSGICaptchaGuard(
            validator(app),
            rules=rules,
            provider=provider,
            max_body_size=MAX_BODY,
            http_client=client_sync,
        )
    return Stand(case, emulator, guard, app)


@pytest.fixture(scope="module")
def stands() -> dict[tuple[str, str, str], Stand]:
    return {
        (case.name, state, door): stand_up(case, state, door)
        for case in CASES
        for state in STATES
        for door in ("asgi", "wsgi")
    }


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal("asyncio") as running:
        yield running


async def call_asgi(stand: Stand, built: Built) -> tuple[int, bytes | None, int]:
    app: RecordingApp = stand.app
    before = app.calls
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": built.method,
        "scheme": "http",
        "path": built.path,
        "raw_path": built.path.encode(),
        "root_path": "",
        "query_string": built.query,
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in built.headers],
        "client": ("203.0.113.7", 50000),
        "server": ("127.0.0.1", 80),
    }
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(built.chunks) - 1}
        for i, chunk in enumerate(built.chunks)
    ]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await anyio.sleep_forever()  # a server sends disconnect only when the client goes
        raise AssertionError("unreachable")

    capture = Capture()
    with anyio.fail_after(DEADLINE):
        await stand.guard(scope, receive, capture)
    assert capture.messages, "no answer at all"
    assert capture.messages[-1].get("more_body", False) is False
    calls = app.calls - before
    return capture.status, app.bodies[-1] if calls else None, calls


def call_wsgi(stand: Stand, built: Built) -> tuple[int, bytes | None, int]:
    app: RecordingWSGIApp = stand.app
    before = app.calls
    environ: dict[str, Any] = {
        "REQUEST_METHOD": built.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": built.path,
        "QUERY_STRING": built.query.decode("latin-1"),
        "REMOTE_ADDR": "203.0.113.7",
        "wsgi.input": ChunkedInput(built.chunks),
    }
    for name, value in built.headers:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            environ[key] = value
        else:
            environ[f"HTTP_{key}"] = value
    if "CONTENT_LENGTH" not in environ:
        environ["wsgi.input_terminated"] = True  # a server that de-chunked the body
    setup_testing_defaults(environ)
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        status.append(line)
        return lambda data: None

    started = time.monotonic()
    result = stand.guard(environ, start_response)
    try:
        b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    assert time.monotonic() - started < DEADLINE
    calls = app.calls - before
    return int(status[0].split()[0]), app.bodies[-1] if calls else None, calls


class ChunkedInput(io.RawIOBase):
    """``wsgi.input`` that hands the body over in the recipe's pieces: short reads."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = [c for c in chunks if c]

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if not self._chunks:
            return b""
        chunk = self._chunks[0]
        if size is None or size < 0 or size >= len(chunk):
            return self._chunks.pop(0)
        self._chunks[0] = chunk[size:]
        return chunk[:size]

    def readline(self, size: int | None = -1) -> bytes:
        return self.read(size)


# ---------------------------------------------------------------------------------------------
# The properties.


@given(recipe=recipes())
def test_asgi_door_in_process(
    recipe: Recipe, stands: dict[tuple[str, str, str], Stand], portal: BlockingPortal
) -> None:
    stand = stands[(recipe.case.name, recipe.state, "asgi")]
    built = build(recipe, stand.fields())
    status, seen, calls = portal.call(call_asgi, stand, built)
    judge(built, recipe, status, seen, calls)


@given(recipe=recipes())
def test_wsgi_door_in_process(recipe: Recipe, stands: dict[tuple[str, str, str], Stand]) -> None:
    stand = stands[(recipe.case.name, recipe.state, "wsgi")]
    built = build(recipe, stand.fields())
    status, seen, calls = call_wsgi(stand, built)
    judge(built, recipe, status, seen, calls)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Stand]]:
    stand = stand_up(CASES[0], "up", "asgi")
    with serve_asgi(stand.guard) as url:
        yield url, stand


@settings(max_examples=max(20, EXAMPLES // 10))
@given(recipe=recipes())
def test_asgi_door_under_uvicorn(recipe: Recipe, served: tuple[str, Stand]) -> None:
    url, stand = served
    recipe = _with(recipe, case=stand.case, state="up")
    built = build(recipe, stand.fields())
    if built.method == "HEAD" or built.path.startswith("//"):
        return  # no body to compare; '//' is an authority to an HTTP client, not a path
    app: RecordingApp = stand.app
    before = app.calls
    headers = [(k, v) for k, v in built.headers if k != "content-length"]

    def stream() -> Iterator[bytes]:
        yield from built.chunks  # chunked transfer encoding: the server sees the pieces

    content: Any = stream() if not built_has_length(built) else built.body
    with httpx.Client(timeout=DEADLINE, verify=TLS) as client:
        response = client.request(
            built.method,
            url + built.path + ("?" + built.query.decode() if built.query else ""),
            headers=headers,
            content=content,
        )
    calls = app.calls - before
    judge(built, recipe, response.status_code, app.bodies[-1] if calls else None, calls)


def built_has_length(built: Built) -> bool:
    return any(k == "content-length" for k, _ in built.headers)
