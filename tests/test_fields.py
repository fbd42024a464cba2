from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from captcha_guard import GeeTest, Rule
from captcha_guard.fields import (
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
from captcha_guard.gate import Gate
from captcha_guard.providers.base import RequestInfo
from captcha_guard.responses import Denial
from captcha_guard.testing import GeeTestEmulator
from captcha_guard.verdict import Verdict

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
    """What the gate does with a request before any network call."""
    gate = _gate()
    route = gate.match("POST", "/login")
    assert route is not None
    info = RequestInfo("POST", "/login", "127.0.0.1", {}, raw=None)
    step = gate.begin(
        route,
        request=info,
        content_type=content_type,
        body=body,
        query_string=query,
        header_value=None,
    )
    if isinstance(step, Verdict):  # judged locally: the gate's own answer, if any
        return gate.judge(route, step) or step
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
