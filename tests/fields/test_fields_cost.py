"""What keeps the gate's parse no dearer than the app's (issue 15, section 4): the bounds on a
part's headers, values left unread, and the C-speed helpers checked against what they replace.
The costs themselves are measured side by side in bench/parse_cost.py (bench/README.md)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from captcha_guard._fields import (
    BodyError,
    FieldError,
    Fields,
    _json_depth_over,
    _unquote,
    collect,
    parse_json,
)

MP = "multipart/form-data; boundary=XX"
PART = b'--XX\r\nContent-Disposition: form-data; name="lot_number"\r\n'


def _mp(body: bytes) -> Fields:
    return collect(content_type=MP, body=body, query_string=b"", header_value=None)


def test_a_part_with_more_than_eight_headers_is_refused_as_python_multipart_does() -> None:
    eight = PART + b"X-A: b\r\n" * 7 + b"\r\nabc\r\n--XX--\r\n"
    assert _mp(eight).one("lot_number") == "abc"
    with pytest.raises(BodyError, match="more than 8 headers"):
        _mp(PART + b"X-A: b\r\n" * 8 + b"\r\nabc\r\n--XX--\r\n")


def test_a_part_header_flood_is_refused_without_reading_the_body_on() -> None:
    flood = PART + b"X-A: b\r\n" * 200_000 + b"\r\nabc\r\n--XX--\r\n"
    with pytest.raises(BodyError, match="longer than 8192 bytes"):
        _mp(flood)
    with pytest.raises(BodyError, match="longer than 8192 bytes"):
        _mp(PART + b"X-A: " + b"b" * 100_000 + b"\r\n\r\nabc\r\n--XX--\r\n")
    # Short, but never ended by a blank line before the next boundary: the old reason.
    with pytest.raises(BodyError, match="do not end with a blank line"):
        _mp(PART + b"abc\r\n--XX--\r\n")


def test_a_value_longer_than_any_captcha_field_is_kept_unread() -> None:
    long = b"a" * 65_537
    fields = _mp(PART + b"\r\n" + long + b"\r\n--XX--\r\n")
    with pytest.raises(FieldError, match="longer than 65536 bytes"):
        fields.one("lot_number")
    at_limit = _mp(PART + b"\r\n" + long[:-1] + b"\r\n--XX--\r\n")
    assert at_limit.one("lot_number") == "a" * 65_536
    # A bare-LF body with a CR in a long value is still refused.
    body = PART.replace(b"\r\n", b"\n") + b"\n" + long[:-1] + b"\r" + b"\n--XX--\n"
    with pytest.raises(BodyError, match="bare-LF"):
        _mp(body)


@given(st.lists(st.sampled_from(["%", "%E9", "%zz", "%4", "a", "%C3%A9", "+", "%%", "%41%", "é"])))
def test_unquote_reads_as_urllib_does(pieces: list[str]) -> None:
    raw = "".join(pieces).encode()
    assert _unquote(raw) == unquote_to_bytes(raw)


def _depth(document: Any) -> int:
    if isinstance(document, list):
        return 1 + max(map(_depth, document), default=0)
    if isinstance(document, dict):
        return 1 + max(map(_depth, document.values()), default=0)
    return 0


JSON_VALUES = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(alphabet='[]{}"\\k', max_size=3), children, max_size=4)
    ),
    max_leaves=40,
)


@given(JSON_VALUES, st.integers(1, 12))
def test_the_depth_read_on_the_bytes_is_the_depth(document: Any, limit: int) -> None:
    raw = json.dumps(document).encode()
    assert _json_depth_over(raw, limit) == (_depth(document) > limit)


def test_fields_keep_every_value_of_a_repeated_name() -> None:
    many = [(f"k{i}", str(i)) for i in range(40)]
    fields = Fields()
    fields.extend(many)
    assert fields.one("k7") == "7"
    fields.extend([("k7", "again")])
    with pytest.raises(FieldError, match="duplicated k7"):
        fields.one("k7")
    repeated = Fields()
    repeated.extend([*many, ("k3", "x")])
    with pytest.raises(FieldError, match="duplicated k3"):
        repeated.one("k3")
    assert repeated.one("k4") == "4"


def test_json_pairs_are_read_only_from_an_object() -> None:
    assert parse_json(b' \n[{"lot_number": "a"}]') == []
    assert parse_json(b"{}") == []
    assert parse_json(b'{"a": 1, "captcha": {"b": "2"}, "c": []}') == [
        ("a", 1),
        ("captcha", [("b", "2")]),
        ("c", []),
        ("b", "2"),
    ]
    assert parse_json(b'{"captcha": [["b", "2"]]}') == [("captcha", [["b", "2"]])]
