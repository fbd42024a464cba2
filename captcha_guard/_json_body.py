"""JSON bodies: the pairs of a top-level object (and of its ``"captcha"`` object), bounded in
items and depth before the parse, which costs about what ``json.loads`` does."""

from __future__ import annotations

import json
import re
from itertools import accumulate, chain
from operator import itemgetter, sub
from typing import Any

from ._parsing import DEFAULT_LIMITS, BodyError, ParseLimits, over

#: In a JSON body the fields may sit at the top level or under this key.
JSON_NESTING_KEY = "captcha"

# Objects are read as lists of (key, value) pairs, repeated keys included: parsers differ on
# which of two equal keys wins, so the gate must see both and refuse them. ``list`` as the
# pairs hook is called by the C decoder with no Python frame (a list subclass cost twice the
# whole parse). An object is then a list whose items are tuples; an array's items never are.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(set(range(256)) - set(b"[]{}"))
_JSON_BLANKS = re.compile(r"[ \t\n\r]*")


_RUNS = re.compile(rb"\[+|\]+")


def _json_depth_over(raw: bytes, limit: int) -> bool:
    """Whether the UTF-8 JSON text ``raw`` nests deeper than ``limit``, read on its bytes.

    Strings are cut out (escaped backslashes and quotes first, then every other quote starts
    or ends one) and the brackets kept. Removing every innermost pair lowers the depth by one:
    that is a C loop over bytes, done while it shrinks the text by a quarter or more (wide
    bodies, many leaves); what is left has few, long runs of brackets, whose lengths give the
    depth at each peak. No step costs a Python call per bracket.
    """
    plain = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(plain.split(b'"')[::2]).translate(_BRACKETS, _NOT_BRACKETS)
    while brackets and limit > 0:
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            return False  # unbalanced: not JSON, which the parse then says
        shrunk = len(inner) * 4 <= len(brackets) * 3
        brackets, limit = inner, limit - 1
        if not shrunk:
            break
    if not brackets:
        return False
    if limit <= 0:
        return True
    runs = list(map(len, _RUNS.findall(brackets)))
    if brackets[:1] != b"[" or len(runs) % 2:
        return False  # unbalanced: not JSON
    peaks: map[int] = map(sub, accumulate(runs[0::2]), chain((0,), accumulate(runs[1::2])))
    return max(peaks) > limit


def _object_pairs(value: Any) -> list[tuple[str, object]] | None:
    if type(value) is list and value and type(value[0]) is tuple:
        return value
    return None


def parse_json(body: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> list[tuple[str, object]]:
    # An upper bound on the items, on the raw bytes: the parse below costs about this much.
    openers = body.count(b"[") + body.count(b"{")
    if openers + body.count(b",") > limits.max_json_items:
        raise over("json_too_large", f"JSON body with more than {limits.max_json_items} items")
    try:
        # As json.loads(bytes) does it, and so Starlette's request.json() and Django apps'.
        encoding = json.detect_encoding(body)
        text = body.decode(encoding, "surrogatepass")
    except UnicodeDecodeError as exc:
        raise BodyError("body is not valid JSON") from exc
    if openers > limits.max_json_depth:
        raw = body if encoding.startswith("utf-8") else text.encode("utf-8", "surrogatepass")
        if _json_depth_over(raw, limits.max_json_depth):
            raise BodyError(
                f"JSON body nested deeper than {limits.max_json_depth}", code="json_too_deep"
            )
    # Only an object's pairs are fields: any other document is parsed (for a 400 if it is not
    # JSON) without the pairs hook, which costs a call per object.
    start = _JSON_BLANKS.match(text).end()  # type: ignore[union-attr]
    is_object = text.startswith("{", start)
    try:
        document: Any = json.loads(text, object_pairs_hook=list if is_object else None)
    except RecursionError:
        raise BodyError("JSON body nested too deep", code="json_too_deep") from None
    except ValueError as exc:
        raise BodyError("body is not valid JSON") from exc
    if not is_object or not document:
        return []  # not an object, or an empty one
    pairs: list[tuple[str, object]] = document
    if JSON_NESTING_KEY in map(itemgetter(0), document):
        pairs = list(document)
        for name, nested in document:
            if name == JSON_NESTING_KEY and (inner := _object_pairs(nested)) is not None:
                pairs.extend(inner)
    return pairs


__all__ = ["JSON_NESTING_KEY", "parse_json"]
