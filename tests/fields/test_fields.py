from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from captcha_guard import GeeTest, Rule
from captcha_guard._effects import Deny, Pass
from captcha_guard._fields import (
    DEFAULT_LIMITS,
    BodyError,
    FieldError,
    Fields,
    ParseLimits,
    collect,
    media_type,
    parse_body,
    parse_json,
    parse_multipart,
    parse_urlencoded,
)
from captcha_guard._flow import Gate
from captcha_guard._responses import Denial
from captcha_guard._route import Route
from captcha_guard.testing import GeeTestEmulator
from tests import ROOT, TLS
from tests.wire import client_request, state_of, until_call

EMULATOR = GeeTestEmulator()


def _fields(**kw: str) -> dict[str, str]:
    base = EMULATOR.issue()
    base.update(kw)
    return base


def _collect(
    body: bytes = b"",
    content_type: str = "",
    query: bytes = b"",
    header: str | None = None,
) -> Fields:
    return collect(content_type=content_type, body=body, query_string=query, header_value=header)


def _multipart(data: dict[str, str], files: dict[str, tuple[str, bytes, str]] | None = None):  # type: ignore[no-untyped-def]
    request = httpx.Request("POST", "http://127.0.0.1/", data=data, files=files or {})
    return request.headers["content-type"], request.read()


# ---------------------------------------------------------------- the Fields bag


def test_one_returns_a_single_string() -> None:
    fields = Fields()
    fields.add("a", "1")
    assert fields.one("a") == "1"
    assert "a" in fields and "b" not in fields
    assert fields.optional("b") is None
    assert fields.optional("a") == "1"


def test_one_refuses_missing_duplicated_and_non_strings() -> None:
    fields = Fields()
    fields.extend([("dup", "1"), ("dup", "1"), ("num", 5), ("none", None), ("obj", {"a": "b"})])
    with pytest.raises(FieldError, match="missing absent"):
        fields.one("absent")
    with pytest.raises(FieldError, match="duplicated dup"):
        fields.one("dup")
    for name in ("num", "none", "obj"):
        with pytest.raises(FieldError, match=f"{name} is not a string"):
            fields.one(name)


def test_repr_shows_names_never_values() -> None:
    fields = Fields()
    fields.add("pass_token", "SECRET-TOKEN-VALUE")
    assert "SECRET" not in repr(fields)
    assert "pass_token" in repr(fields)


# ---------------------------------------------------------------- urlencoded


def test_urlencoded_form() -> None:
    sent = _fields()
    body = urlencode({**sent, "user": "zoë", "empty": ""}).encode()
    fields = _collect(body, "application/x-www-form-urlencoded; charset=utf-8")
    for name, value in sent.items():
        assert fields.one(name) == value
    assert fields.one("user") == "zoë"
    assert fields.one("empty") == ""


def test_urlencoded_duplicate_is_refused() -> None:
    fields = _collect(b"lot_number=a&lot_number=a", "application/x-www-form-urlencoded")
    with pytest.raises(FieldError, match="duplicated lot_number"):
        fields.one("lot_number")


@pytest.mark.parametrize(
    ("body", "name", "why"),
    [
        (b"a=%ff", "a", "percent-escapes that are not UTF-8"),
        (b"a=Jos%E9", "a", "percent-escapes that are not UTF-8"),  # accept-charset=ISO-8859-1
        (b"a=\xff\xfe", "a", "raw non-ASCII bytes"),
        (b"a=zo\xc3\xab", "a", "raw non-ASCII bytes"),  # Starlette reads "zoÃ«", Django "zoë"
        (b"%E9=1", "\ufffd", "a name that percent-escapes"),
    ],
)
def test_urlencoded_values_frameworks_read_differently_are_unreadable(
    body: bytes, name: str, why: str
) -> None:
    fields = _collect(body + b"&lot_number=abc", "application/x-www-form-urlencoded")
    assert fields.one("lot_number") == "abc"  # the rest of the form is read: no 400
    with pytest.raises(FieldError, match=why):
        fields.one(name)


def test_urlencoded_only_ampersand_separates() -> None:
    # python-multipart before 0.0.30 split on ';' too: Starlette then saw a second field.
    assert parse_urlencoded(b"a=1;lot_number=x") == [("a", "1;lot_number=x")]


def test_urlencoded_with_too_many_fields_is_a_413() -> None:
    with pytest.raises(BodyError) as caught:
        parse_urlencoded(b"&".join(b"a%d=1" % i for i in range(1001)))
    assert (caught.value.status, caught.value.code) == (413, "too_many_fields")
    # empty pieces are not fields, and 1,000 is the limit, not over it
    assert len(parse_urlencoded(b"&&" + b"&".join(b"a=1" for _ in range(1000)) + b"&&")) == 1000
    small = ParseLimits(max_fields=3)
    with pytest.raises(BodyError, match="more than 3 urlencoded fields"):
        parse_urlencoded(b"a=1&b=2&c=3&d=4", small)


# ---------------------------------------------------------------- multipart


def test_multipart_fields_and_file_parts_skipped() -> None:
    sent = _fields()
    content_type, body = _multipart(
        {**sent, "note": "héllo"},
        files={
            "avatar": ("me.png", b"\x89PNG\x00\xff" * 100, "image/png"),
            # a file part named like a captcha field is a file, not the field
            "lot_number": ("lot.txt", b"not the lot", "text/plain"),
        },
    )
    fields = _collect(body, content_type)
    for name, value in sent.items():
        assert fields.one(name) == value
    assert fields.one("note") == "héllo"
    assert "avatar" not in fields


def test_multipart_with_quoted_boundary() -> None:
    body = b'--b0und\r\nContent-Disposition: form-data; name="a"\r\n\r\nvalue\r\n--b0und--\r\n'
    assert parse_multipart('multipart/form-data; boundary="b0und"', body) == [("a", "value")]


def test_multipart_truncated_is_a_body_error() -> None:
    content_type, body = _multipart(_fields())
    for cut in (len(body) - 4, len(body) // 2, 10, 0):
        with pytest.raises(BodyError):
            parse_multipart(content_type, body[:cut])


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; charset=x"],
)
def test_multipart_without_boundary_is_a_body_error(content_type: str) -> None:
    _, body = _multipart({"a": "1"})
    with pytest.raises(BodyError, match="boundary"):
        parse_multipart(content_type, body)


def test_multipart_garbage_is_a_body_error() -> None:
    with pytest.raises(BodyError):
        parse_multipart("multipart/form-data; boundary=x", b"this is not multipart at all")


def test_multipart_field_that_is_not_utf8_is_unreadable_not_a_400() -> None:
    body = (
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n\xff\xfe\r\n'
        b'--x\r\nContent-Disposition: form-data; name="b"\r\n\r\nok\r\n--x--\r\n'
    )
    fields = _collect(body, "multipart/form-data; boundary=x")
    assert fields.one("b") == "ok"
    with pytest.raises(FieldError, match="a is not UTF-8"):
        fields.one("a")


# ---------------------------------------------------------------- JSON


def test_json_top_level() -> None:
    sent = _fields()
    fields = _collect(json.dumps({**sent, "email": "a@b.c"}).encode(), "application/json")
    for name, value in sent.items():
        assert fields.one(name) == value


def test_json_nested_under_captcha() -> None:
    sent = _fields()
    body = json.dumps({"email": "a@b.c", "captcha": sent}).encode()
    fields = _collect(body, "application/vnd.api+json")
    for name, value in sent.items():
        assert fields.one(name) == value


def test_json_top_level_and_nested_is_a_duplicate() -> None:
    sent = _fields()
    body = json.dumps({**sent, "captcha": sent}).encode()
    with pytest.raises(FieldError, match="duplicated"):
        _collect(body, "application/json").one("lot_number")


def test_json_duplicate_key_is_a_duplicate() -> None:
    # Parsers differ on which of two equal keys wins; the gate must not pick one silently.
    body = b'{"lot_number": "aaaa", "lot_number": "bbbb"}'
    with pytest.raises(FieldError, match="duplicated lot_number"):
        _collect(body, "application/json").one("lot_number")
    nested = b'{"captcha": {"lot_number": "aaaa"}, "captcha": {"lot_number": "bbbb"}}'
    with pytest.raises(FieldError, match="duplicated lot_number"):
        _collect(nested, "application/json").one("lot_number")


@pytest.mark.parametrize("document", ["[1, 2]", '"text"', "42", "null", "true"])
def test_json_that_is_not_an_object_carries_no_fields(document: str) -> None:
    assert parse_json(document.encode()) == []


def test_json_non_string_values_are_refused() -> None:
    body = json.dumps({"lot_number": 123, "captcha_output": ["a"], "pass_token": None}).encode()
    fields = _collect(body, "application/json")
    for name in ("lot_number", "captcha_output", "pass_token"):
        with pytest.raises(FieldError, match="not a string"):
            fields.one(name)


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"a": }', b"\xff\xfe\x00", b'{"a": 1' + b"0" * 5000 + b"}", b"{'a': 'b'}"],
)
def test_invalid_json_is_a_body_error(body: bytes) -> None:
    with pytest.raises(BodyError, match="not valid JSON"):
        parse_json(body)


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
def test_deeply_nested_json_is_a_body_error_not_a_crash(opening: bytes) -> None:
    with pytest.raises(BodyError):
        parse_json(opening * 200_000)


def test_empty_json_body_carries_no_fields() -> None:
    assert parse_body("application/json", b"  ") == []


# ---------------------------------------------------------------- other sources


def test_query_string() -> None:
    sent = _fields()
    fields = _collect(query=urlencode(sent).encode())
    for name, value in sent.items():
        assert fields.one(name) == value


def test_query_string_not_utf8_is_unreadable() -> None:
    with pytest.raises(FieldError, match="a has percent-escapes that are not UTF-8"):
        _collect(query=b"a=%ff").one("a")


def test_query_string_over_the_limit_says_so() -> None:
    with pytest.raises(BodyError, match=r"^query string: more than 1000") as caught:
        _collect(query=b"&".join([b"a=1"] * 1001))
    assert caught.value.status == 413


def test_x_captcha_header() -> None:
    sent = _fields()
    fields = _collect(
        json.dumps({"email": "a@b.c"}).encode(), "application/json", header=urlencode(sent)
    )
    for name, value in sent.items():
        assert fields.one(name) == value


def test_x_captcha_header_not_utf8_is_unreadable() -> None:
    with pytest.raises(FieldError, match="a has percent-escapes"):
        _collect(header="a=%ff").one("a")
    with pytest.raises(BodyError, match=r"x-captcha header: .*beyond latin-1"):
        _collect(header="a=\u20ac")
    with pytest.raises(BodyError, match="x-captcha header: more than 1000"):
        _collect(header="&".join(["a=1"] * 1001))


@pytest.mark.parametrize(
    "sources",
    [
        ("body", "query"),
        ("body", "header"),
        ("query", "header"),
        ("json", "query"),
        ("multipart", "header"),
    ],
)
def test_the_same_field_in_two_sources_is_refused(sources: tuple[str, str]) -> None:
    sent = _fields()
    encoded = urlencode(sent)
    kwargs: dict[str, object] = {}
    for source in sources:
        if source == "body":
            kwargs.update(body=encoded.encode(), content_type="application/x-www-form-urlencoded")
        elif source == "json":
            kwargs.update(body=json.dumps(sent).encode(), content_type="application/json")
        elif source == "multipart":
            content_type, body = _multipart(sent)
            kwargs.update(body=body, content_type=content_type)
        elif source == "query":
            kwargs["query"] = encoded.encode()
        else:
            kwargs["header"] = encoded
    fields = _collect(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(FieldError, match="duplicated"):
        fields.one("pass_token")


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/octet-stream"])
def test_other_media_types_carry_no_fields(content_type: str) -> None:
    assert parse_body(content_type, urlencode(_fields()).encode()) == []


def test_media_type_ignores_parameters_and_case() -> None:
    assert media_type(" Application/JSON ; charset=utf-8") == "application/json"


# ---------------------------------------------------------------- through the gate


def _gate() -> Gate:
    provider = GeeTest(EMULATOR.captcha_id, EMULATOR.captcha_key, endpoint="http://127.0.0.1:9/")
    return Gate([Rule("/login")], provider)


def _begin(body: bytes, content_type: str, query: bytes = b"") -> object:
    """What the gate does with a request before any network call: its denial, the verdict
    it let through, or the provider call it would make."""
    gate = _gate()
    route = gate.route("POST", "/login")
    assert route is not None
    info = client_request(content_type=content_type, query=query)
    flow = gate.decide(route, info)
    step = until_call(flow, body=body, state=state_of(gate))
    flow.close()  # a call left out is abandoned: nothing counted
    if isinstance(step, Deny):
        return step.denial
    if isinstance(step, Pass):
        return step.verdict
    return step


def test_non_string_json_values_are_403_at_the_gate() -> None:
    sent: dict[str, object] = dict(_fields())
    sent["gen_time"] = 1700000000
    step = _begin(json.dumps(sent).encode(), "application/json")
    assert isinstance(step, Denial)
    assert step.status == 403
    assert step.reason == "gen_time is not a string"


def test_non_object_json_is_403_at_the_gate() -> None:
    step = _begin(json.dumps([_fields()]).encode(), "application/json")
    assert isinstance(step, Denial) and step.status == 403


def test_unparseable_bodies_are_400_at_the_gate() -> None:
    bad = [
        (b"{", "application/json", "bad_request"),
        (b"[" * 10_000, "application/json", "json_too_deep"),
        (b"--x\r\n", "multipart/form-data; boundary=x", "bad_request"),
        (b"x", "multipart/form-data", "bad_request"),
    ]
    for body, content_type, error in bad:
        step = _begin(body, content_type)
        assert isinstance(step, Denial), (body[:10], content_type)
        assert (step.status, step.error) == (400, error)


def test_duplicates_across_sources_are_403_at_the_gate() -> None:
    sent = _fields()
    step = _begin(urlencode(sent).encode(), "application/x-www-form-urlencoded", query=b"")
    assert not isinstance(step, Denial)  # the control: once is fine
    step = _begin(
        urlencode(sent).encode(),
        "application/x-www-form-urlencoded",
        query=urlencode({"lot_number": sent["lot_number"]}).encode(),
    )
    assert isinstance(step, Denial) and step.status == 403
    assert step.reason == "duplicated lot_number"


# ---------------------------------------------------------------- parse limits


def test_default_limits_are_what_the_frameworks_accept() -> None:
    import inspect

    from django.conf import global_settings
    from starlette.requests import Request
    from werkzeug.wrappers import Request as WerkzeugRequest

    form = inspect.signature(Request.form).parameters
    assert DEFAULT_LIMITS.max_fields == form["max_fields"].default == 1000
    assert DEFAULT_LIMITS.max_files == form["max_files"].default == 1000
    assert DEFAULT_LIMITS.max_fields == global_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
    assert DEFAULT_LIMITS.max_fields == WerkzeugRequest.max_form_parts


@pytest.mark.parametrize(
    "options",
    [
        {"max_fields": 0},
        {"max_files": -1},
        {"max_json_depth": True},
        {"max_json_items": 1.5},
        {"max_fields": "10"},
    ],
)
def test_bad_limits_fail_at_construction(options: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="ParseLimits"):
        ParseLimits(**options)  # type: ignore[arg-type]


def _parts(count: int, *, filename: bool = False) -> tuple[str, bytes]:
    extra = b'; filename="f.txt"' if filename else b""
    part = b'--b\r\nContent-Disposition: form-data; name="a"%s\r\n\r\n1\r\n' % extra
    return "multipart/form-data; boundary=b", part * count + b"--b--\r\n"


@pytest.mark.parametrize(
    ("body", "limits", "code"),
    [
        (_parts(1001), DEFAULT_LIMITS, "too_many_fields"),
        (_parts(1001, filename=True), DEFAULT_LIMITS, "too_many_files"),
        (_parts(2002), DEFAULT_LIMITS, "too_many_parts"),
        (_parts(17_000), DEFAULT_LIMITS, "too_many_parts"),
        (_parts(4), ParseLimits(max_fields=3), "too_many_fields"),
        (_parts(3, filename=True), ParseLimits(max_files=2), "too_many_files"),
        (_parts(6), ParseLimits(max_fields=2, max_files=2), "too_many_parts"),
    ],
)
def test_multipart_over_the_limits_is_413(
    body: tuple[str, bytes], limits: ParseLimits, code: str
) -> None:
    content_type, data = body
    with pytest.raises(BodyError) as caught:
        collect(
            content_type=content_type, body=data, query_string=b"", header_value=None, limits=limits
        )
    assert (caught.value.status, caught.value.code) == (413, code)


def test_multipart_at_the_limits_is_read() -> None:
    content_type, body = _parts(1000)
    assert len(parse_multipart(content_type, body)) == 1000
    content_type, body = _parts(1000, filename=True)
    assert parse_multipart(content_type, body) == []


def test_a_body_of_tiny_parts_is_refused_within_the_part_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What 0.2-0.3 s of event-loop time went into: no part past the limits may be read (the
    # part reader is replaced by one that counts nothing, so only the part limit stops it).
    from captcha_guard import _fields as module

    read: list[bytes] = []
    monkeypatch.setattr(
        module._PartReader, "part", lambda self, head, content: read.append(content)
    )
    content_type, body = _parts(17_000)
    with pytest.raises(BodyError, match="more than 2000 parts"):
        parse_multipart(content_type, body)
    assert len(read) == 2000


@pytest.mark.parametrize(
    ("body", "limits", "status", "code"),
    [
        (b"[" + b"1," * 20_000 + b"1]", DEFAULT_LIMITS, 413, "json_too_large"),
        (b"[" + b"{}," * 10_000 + b"{}]", DEFAULT_LIMITS, 413, "json_too_large"),
        (b"[" * 129 + b"]" * 129, DEFAULT_LIMITS, 400, "json_too_deep"),
        (b'{"a":' * 129 + b"1" + b"}" * 129, DEFAULT_LIMITS, 400, "json_too_deep"),
        (b"[" * 5000 + b"]" * 5000, DEFAULT_LIMITS, 400, "json_too_deep"),  # RecursionError
        (b'{"a": [1, 2, 3]}', ParseLimits(max_json_items=3), 413, "json_too_large"),
        (b'{"a": {"b": {}}}', ParseLimits(max_json_depth=2), 400, "json_too_deep"),
    ],
)
def test_json_over_the_limits(body: bytes, limits: ParseLimits, status: int, code: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_json(body, limits)
    assert (caught.value.status, caught.value.code) == (status, code)


def test_json_at_the_limits_is_read() -> None:
    deep = b'{"lot_number": "x", "deep": ' + b"[" * 127 + b"]" * 127 + b"}"
    assert parse_json(deep)[0] == ("lot_number", "x")
    # brackets inside strings count as items, never as depth
    assert parse_json(b'{"a": "' + b"[" * 500 + b'"}') == [("a", "[" * 500)]
    assert parse_json(b'{"a": [1, 2]}', ParseLimits(max_json_items=3)) == [("a", [1, 2])]


def test_limits_reach_the_gate_and_answer_413_with_a_code() -> None:
    provider = GeeTest(EMULATOR.captcha_id, EMULATOR.captcha_key, endpoint="http://127.0.0.1:9/")
    gate = Gate([Rule("/login")], provider, parse_limits=ParseLimits(max_fields=5))
    route = gate.route("POST", "/login")
    assert isinstance(route, Route)
    form = urlencode({**_fields(), "a": "1", "b": "2"}).encode()
    request = client_request(content_type="application/x-www-form-urlencoded")
    decision = until_call(gate.decide(route, request), body=form, state=state_of(gate))
    assert isinstance(decision, Deny)
    step = decision.denial
    assert (step.status, step.error) == (413, "too_many_fields")
    assert step.reason == "more than 5 urlencoded fields"
    with pytest.raises(TypeError, match="parse_limits"):
        Gate([Rule("/login")], provider, parse_limits={"max_fields": 5})  # type: ignore[arg-type]


# ---------------------------------------------------------------- multipart as clients send it


def _mp(body: bytes) -> Fields:
    return _collect(body, "multipart/form-data; boundary=XX")


PART = b'Content-Disposition: form-data; name="lot_number"'


@pytest.mark.parametrize(
    "body",
    [
        b"preamble\r\n--XX\r\n" + PART + b"\r\n\r\nabc\r\n--XX--\r\n",
        b"junk--XX\r\n" + PART + b"\r\n\r\nabc\r\n--XX--\r\n",
        b"--XX\n" + PART + b"\n\nabc\n--XX--\n",  # bare LF throughout
        b"--XX \t\r\n" + PART + b"\r\n\r\nabc\r\n--XX--  \r\n",  # transport padding
        b"--XX\r\n" + PART + b"\r\n\r\nabc\r\n--XX--\r\n\r\n \t",  # a blank epilogue
        b"--XX\r\n" + PART + b"\r\n\r\nabc\r\n--XX--",
        b"--XX\r\ncontent-DISPOSITION: Form-Data; NAME=lot_number\r\n\r\nabc\r\n--XX--\r\n",
        b'--XX\r\nContent-Disposition: attachment; name="lot_number"\r\n\r\nabc\r\n--XX--\r\n',
        b"--XX\r\n" + PART + b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\nabc\r\n--XX--\r\n",
    ],
)
def test_multipart_that_the_frameworks_read_is_read(body: bytes) -> None:
    assert _mp(body).one("lot_number") == "abc"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"--XX\r\n" + PART + b"\n\nabc\r\n--XX--\r\n", "do not end with a blank line"),
        (b"--XX\r\n" + PART + b"\r\n\r\nabc\r\n--XX\r\n", "ends before its closing boundary"),
        (b"--XX\r\n" + PART + b"\r\n\r\nabc", "ends before its closing boundary"),
        (b"--XX\r\n" + PART + b"\r\n\r\nabc\r\n--XX--\r\n--XX--", "after the closing"),
        (b"--XX\r\n" + PART + b"\r\n\r\nabc\r\n--XX--\r\nepilogue", "data after its closing"),
        (b"--XX--\r\n" + PART + b"\r\n\r\nvictim", "data after its closing"),
        # Django parses a preamble with headers as a part:
        (b'Content-Disposition: form-data; name="u"\r\n\r\nvictim\r\n--XX--', "preamble"),
        # Django reads on past the closing boundary and finds this part:
        (
            b"--XX\r\n"
            + PART
            + b'\r\n\r\nabc\r\n--XX--\r\nContent-Disposition: form-data; name="u"'
            b"\r\n\r\nvictim",
            "data after its closing boundary",
        ),
        (b"--XX\r\n" + PART + b"\r\n\r\na\r\n--XX--\r\n\r\n--XX\r\n", "after the closing"),
        # "\n--XX" in a CRLF body: Werkzeug takes it for a boundary, python-multipart for data
        (
            b"--XX\r\n" + PART + b"\r\n\r\nabc\n--XX\r\n"
            b'Content-Disposition: form-data; name="user_id"\r\n\r\nvictim\r\n--XX--\r\n',
            "boundary string inside a part",
        ),
        (b"--XX\r\nContent-Disposition: form-data;\r\n name=lot\r\n\r\na\r\n--XX--", "folded"),
        (b"--XX\r\n" + PART + b"\r\n" + PART + b"\r\n\r\na\r\n--XX--\r\n", "two Content-Disp"),
        (b"--XX\r\nContent-Disposition: form-data\r\n\r\na\r\n--XX--\r\n", "without a name"),
        (b"--XX\r\nContent-Type: text/plain\r\n\r\na\r\n--XX--\r\n", "without a Content-Disp"),
        (b"--XX\r\nContent-Disposition: form-data; name*=utf-8''lot\r\n\r\na\r\n--XX--", "RFC"),
        (
            b"--XX\r\nContent-Disposition: form-data; name=\"a\"; filename*=utf-8''f\r\n\r\n"
            b"a\r\n--XX--\r\n",
            "RFC 2231",
        ),
        (
            b'--XX\r\nContent-Disposition: form-data; name="a"; name="b"\r\n\r\na\r\n--XX--',
            "repeated name",
        ),
        (b"--XX\r\nNo colon here\r\n\r\na\r\n--XX--\r\n", "malformed multipart part header"),
        (b"--XXjunk\r\n" + PART + b"\r\n\r\na\r\n--XX--\r\n", "not followed by a line break"),
        (b"no boundary at all", "without its boundary"),
    ],
)
def test_multipart_the_frameworks_read_differently_is_a_400_that_says_why(
    body: bytes, reason: str
) -> None:
    with pytest.raises(BodyError, match=reason) as caught:
        _mp(body)
    assert (caught.value.status, caught.value.code) == (400, "bad_request")


def test_multipart_with_two_boundaries_is_a_400() -> None:
    # python-multipart and Werkzeug take the last, Django the first.
    body = b"--XX\r\n" + PART + b"\r\n\r\nabc\r\n--XX--\r\n"
    for content_type in [
        "multipart/form-data; boundary=XX; boundary=YY",
        "multipart/form-data; boundary=YY; Boundary=XX",
    ]:
        with pytest.raises(BodyError, match="two boundaries"):
            _collect(body, content_type)


@pytest.mark.parametrize(
    ("content_type", "part_headers", "value", "why"),
    [
        ("multipart/form-data; boundary=XX", b"", b"Jos\xe9", "is not UTF-8"),
        ("multipart/form-data; boundary=XX; charset=latin-1", b"", b"Jos\xe9", "declared charset"),
        (
            "multipart/form-data; boundary=XX",
            b"Content-Type: text/plain; charset=latin-1\r\n",
            b"Jos\xe9",
            "declared charset",
        ),
        (
            "multipart/form-data; boundary=XX",
            b"Content-Type: text/plain; charset=utf-16\r\n",
            b"abcd",
            "charset frameworks read differently",
        ),
        (
            "multipart/form-data; boundary=XX",
            b"Content-Transfer-Encoding: base64\r\n",
            b"YWJj",
            "Content-Transfer-Encoding",
        ),
    ],
)
def test_multipart_values_frameworks_read_differently_are_unreadable(
    content_type: str, part_headers: bytes, value: bytes, why: str
) -> None:
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="name"\r\n'
        + part_headers
        + b"\r\n"
        + value
        + b"\r\n--XX\r\n"
        + PART
        + b"\r\n\r\nabc\r\n--XX--\r\n"
    )
    fields = _collect(body, content_type)
    assert fields.one("lot_number") == "abc"  # an ISO-8859-1 form's other fields: no 400
    with pytest.raises(FieldError, match=why):
        fields.one("name")


@pytest.mark.parametrize(
    "body",
    [
        b"--XX\n" + PART + b"\n\nabc\r\n--XX--\n",  # Werkzeug strips the CR, others keep it
        # Django ends the headers at the first CRLF CRLF, even in a bare-LF body, and so reads
        # the name "user_id" from the value:
        b"--XX\n" + PART + b'\n\n\r\nContent-Disposition: form-data; name="user_id"\r\n\r\n'
        b"victim\n--XX--\n",
    ],
)
def test_a_bare_lf_body_with_a_cr_in_a_part_is_a_400(body: bytes) -> None:
    with pytest.raises(BodyError, match="bare-LF multipart body with a CR in a part"):
        _mp(body)


def test_a_multipart_value_keeps_its_inner_line_breaks() -> None:
    assert _mp(b"--XX\r\n" + PART + b"\r\n\r\na\r\nb\nc\r\n--XX--\r\n").one("lot_number") == (
        "a\r\nb\nc"
    )
    assert _mp(b"--XX\r\n" + PART + b"\r\n\r\n\r\n--XX--\r\n").one("lot_number") == ""


def test_a_body_that_may_be_json_to_the_app_is_opaque_for_claims() -> None:
    query = b"user_id=attacker"
    for content_type, body in [
        ("text/plain", b'{"user_id": "victim"}'),
        ("", b"user_id=victim"),
        ("application/x-www-form-urlencoded", b'  {"user_id": "victim"}'),
        ("application/x-www-form-urlencoded", '\ufeff{"user_id": "victim"}'.encode()),
        ("application/x-www-form-urlencoded", '{"user_id": "victim"}'.encode("utf-16")),
    ]:
        fields = _collect(body, content_type, query=query)
        assert fields.one("user_id") == "attacker"  # a captcha token may come from anywhere
        with pytest.raises(FieldError, match="user_id cannot be read the way the app will"):
            fields.claim("user_id")
    for content_type, body in [
        ("text/plain", b"  \r\n"),
        ("application/json", b'{"a": "b"}'),
        ("application/x-www-form-urlencoded", b"a=b"),
    ]:
        assert _collect(body, content_type, query=query).claim("user_id") == "attacker"


def test_the_python_multipart_floor_is_one_that_does_not_split_on_semicolons() -> None:
    import asyncio
    import re

    from packaging.requirements import Requirement
    from starlette.datastructures import Headers
    from starlette.formparsers import FormParser

    text = (ROOT / "pyproject.toml").read_text()
    (line,) = re.findall(r'^\s*"(python-multipart[^"]*)",', text, re.MULTILINE)
    requirement = Requirement(line)
    assert "0.0.29" not in requirement.specifier and "0.0.30" in requirement.specifier

    async def starlette_form() -> list[tuple[str, object]]:
        async def stream():  # type: ignore[no-untyped-def]
            # As Request.stream() feeds it: the body, then an empty chunk on which FormParser
            # finalizes (Starlette before 1.10 reads no last field without it).
            yield b"a=1;user_id=victim"
            yield b""

        headers = Headers({"content-type": "application/x-www-form-urlencoded"})
        return list((await FormParser(headers, stream()).parse()).multi_items())

    assert asyncio.run(starlette_form()) == parse_urlencoded(b"a=1;user_id=victim")


# ---------------------------------------------------------------- both doors, real servers


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
def test_parse_limits_through_both_doors_on_real_servers(door: str) -> None:
    from captcha_guard import CaptchaGuard, WSGICaptchaGuard
    from tests.apps import echo_asgi, echo_wsgi
    from tests.servers import serve_asgi, serve_wsgi

    provider = GeeTest(EMULATOR.captcha_id, EMULATOR.captcha_key, endpoint="http://127.0.0.1:9/")
    options: dict[str, object] = {
        "rules": [Rule("/login")],
        "provider": provider,
        "parse_limits": ParseLimits(max_fields=10, max_files=2),
    }
    serve: Any
    if door == "asgi":
        guard: Any = CaptchaGuard(echo_asgi, **options)  # type: ignore[arg-type]
        serve = serve_asgi
    else:
        guard = WSGICaptchaGuard(echo_wsgi, **options)  # type: ignore[arg-type]
        serve = serve_wsgi
    json_headers = {"accept": "application/json"}
    with serve(guard) as url, httpx.Client(timeout=10, verify=TLS) as client:

        def post(content: bytes, content_type: str, path: str = "/login") -> httpx.Response:
            headers = {**json_headers, "content-type": content_type}
            return client.post(url + path, content=content, headers=headers)

        content_type, body = _parts(17_000)
        answers = [
            post(body, content_type),
            post(_parts(11)[1], content_type),
            post(_parts(3, filename=True)[1], content_type),
            post(b"&".join([b"a=1"] * 11), "application/x-www-form-urlencoded"),
            post(b"[" * 129 + b"]" * 129, "application/json"),
            post(b"[" + b"1," * 20_000 + b"1]", "application/json"),
        ]
        assert [(a.status_code, a.json()["error"]) for a in answers] == [
            (413, "too_many_parts"),
            (413, "too_many_fields"),
            (413, "too_many_files"),
            (413, "too_many_fields"),
            (400, "json_too_deep"),
            (413, "json_too_large"),
        ]
        # the same bytes to an unprotected path reach the app untouched
        assert post(body, content_type, "/about").status_code == 200
        # and a body the frameworks read is read: the captcha is judged (the provider is down)
        form = urlencode(_fields()).encode().replace(b"&", b"&name=Jos%E9&", 1)
        passed = post(form, "application/x-www-form-urlencoded")
        assert passed.status_code == 200 and passed.json()["outcome"] == "fallback"
