"""The ``PrivateToken`` HTTP authentication scheme's headers (RFC 9577 sections 2.1, 2.2).

``WWW-Authenticate: PrivateToken challenge="...", token-key="..."[, max-age="N"]`` out, and
``Authorization: PrivateToken token="..."`` in. The parser follows RFC 9110 section 11
(``#challenge``, ``auth-param = token BWS "=" BWS ( token / quoted-string )``), is bounded,
never raises on input, and ignores schemes and parameters it does not know, as the RFC asks.
"""

from __future__ import annotations

import re

from ._wire import b64encode

SCHEME = "PrivateToken"
#: Longest header value parsed: a token is 472 base64 characters; room for a few more params.
MAX_HEADER_CHARS = 8192
MAX_ITEMS = 64

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# The unrolled form of "(?:[^"\\]|\\.)*": one regex step per run of plain characters instead of
# one per character (a token is 472 characters).
_QUOTED = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"')
_TOKEN68_TAIL = re.compile(r"=+[ \t]*(?:,|\Z)")
_OWS = re.compile(r"[ \t]*")
_LIST_SEP = re.compile(r"[ \t,]*")


def challenge_value(challenge: bytes, token_key: bytes, max_age: int | None = None) -> str:
    """One ``PrivateToken`` challenge for a WWW-Authenticate header (values quoted: padded
    base64url ends in "=", which a bare token may not hold)."""
    value = f'{SCHEME} challenge="{b64encode(challenge)}", token-key="{b64encode(token_key)}"'
    if max_age is not None:
        value += f', max-age="{int(max_age)}"'
    return value


def parse_challenges(value: str) -> list[tuple[str, dict[str, str]]] | None:
    """Every challenge of a WWW-Authenticate (or credentials of an Authorization) value, as
    (scheme, parameters with lower-cased names); None if it does not parse. A token68 (as in
    ``Basic dXNlcg==``) is skipped."""
    if len(value) > MAX_HEADER_CHARS:
        return None
    found: list[tuple[str, dict[str, str]]] = []
    at = 0
    end = len(value)
    while True:
        at = _LIST_SEP.match(value, at).end()  # type: ignore[union-attr]
        if at >= end:
            return found
        if len(found) > MAX_ITEMS:
            return None
        name = _TOKEN.match(value, at)
        if name is None:
            return None
        at = name.end()
        after = _OWS.match(value, at).end()  # type: ignore[union-attr]
        if after < end and value[after] == "=" and found and not _TOKEN68_TAIL.match(value, after):
            parsed = _param_value(value, _OWS.match(value, after + 1).end())  # type: ignore[union-attr]
            if parsed is None:
                return None
            text, at = parsed
            params = found[-1][1]
            params.setdefault(name.group().lower(), text)  # the first of a repeated name wins
            continue
        if after < end and value[after] == "=":  # a token68 (or "=" with no scheme before it)
            if not found:
                return None
            tail = _TOKEN68_TAIL.match(value, after)
            at = after if tail is None else tail.end()
            continue
        found.append((name.group(), {}))
        at = after


def _param_value(value: str, at: int) -> tuple[str, int] | None:
    if at < len(value) and value[at] == '"':
        quoted = _QUOTED.match(value, at)
        if quoted is None:
            return None
        text = quoted.group(1)
        if "\\" in text:
            text = re.sub(r"\\(.)", r"\1", text)
        return text, quoted.end()
    token = _TOKEN.match(value, at)
    if token is None:
        return None
    return token.group(), token.end()


def private_token_params(value: str | None) -> list[dict[str, str]]:
    """The parameters of each ``PrivateToken`` item in a header value (scheme names compare
    case-insensitively, RFC 9110 section 11.1); [] for a value that does not parse."""
    if not value:
        return []
    parsed = parse_challenges(value)
    if parsed is None:
        return []
    return [params for scheme, params in parsed if scheme.lower() == SCHEME.lower()]


def token_param(authorization: str | None) -> str | None:
    """The ``token`` parameter of ``Authorization: PrivateToken token=...``, or None."""
    for params in private_token_params(authorization):
        token = params.get("token")
        if token is not None:
            return token
    return None


__all__ = [
    "MAX_HEADER_CHARS",
    "SCHEME",
    "challenge_value",
    "parse_challenges",
    "private_token_params",
    "token_param",
]
