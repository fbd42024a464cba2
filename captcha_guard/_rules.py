"""Rule: which requests must carry a captcha, in the route syntax Starlette users write.

A rule's pattern compiles to one anchored regex that matches a superset of what each
supported router routes to the same pattern: a convertor takes every spelling some framework
accepts as that type, a trailing slash is optional, and a twin ignores letter case (BlackSheep
routes ``/LOGIN`` to ``/login``). Which spellings of a request's path are put to the rules, and what
is refused before any rule is asked, is the routing decision's business (``_routing``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# For each convertor, the union of what the routers accept for it: Starlette's regex, Werkzeug's
# (``\d`` is any Unicode digit, and int() takes them), Django's, and what FastAPI's pydantic
# accepts for a ``{name}`` annotated with that type (blanks around, a sign, ``_``, ``1.0``).
CONVERTERS: dict[str, str] = {
    # Falcon's ``{name}`` takes an empty segment too: ``/reports/`` and ``/posts//comments``.
    "str": r"[^/]*",
    "path": r".*",
    "int": r"\s*[+-]?[\d_]+(?:\.0*)?\s*",
    # Written so no two quantifiers can share a character: linear time on a long segment.
    "float": (
        r"\s*[+-]?(?:(?:[\d_]+(?:\.[\d_]*)?|\.[\d_]+)(?:[eE][+-]?[\d_]+)?"
        r"|(?i:inf|infinity|nan))\s*"
    ),
    "uuid": (
        r"(?i:urn:)?(?i:uuid:)?\{?"
        r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?"
    ),
}

_PARAM = re.compile(r"{([^{}]*)}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token, what a method is
_SCOPE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SLASHES = re.compile(r"//+")


def _converter_regex(name: str) -> str:
    if name in CONVERTERS:
        return CONVERTERS[name]
    try:  # a convertor the app registered with Starlette's register_url_convertor
        from starlette.convertors import CONVERTOR_TYPES
    except ImportError:  # a WSGI site without Starlette: only the built-in convertors
        CONVERTOR_TYPES = {}
    if name in CONVERTOR_TYPES:
        return str(CONVERTOR_TYPES[name].regex)
    known = ", ".join(sorted(CONVERTERS))
    raise ValueError(f"unknown converter {name!r} (known: {known})")


def _literal(text: str, pattern: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError(f"unbalanced braces in route pattern {pattern!r}")
    return re.escape(text)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Turn ``/posts/{post_id:int}/comments`` into an anchored regex."""
    if not pattern.startswith("/"):
        raise ValueError(f"route pattern must start with '/': {pattern!r}")
    parts: list[str] = []
    seen: set[str] = set()
    end = 0
    for match in _PARAM.finditer(pattern):
        parts.append(_literal(pattern[end : match.start()], pattern))
        name, colon, converter = match.group(1).partition(":")
        if not _NAME.match(name):
            raise ValueError(f"bad parameter name {name!r} in route pattern {pattern!r}")
        if name in seen:
            raise ValueError(f"duplicated parameter {name!r} in route pattern {pattern!r}")
        seen.add(name)
        parts.append(f"(?:{_converter_regex(converter if colon else 'str')})")
        end = match.end()
    parts.append(_literal(pattern[end:], pattern))
    body = "".join(parts)
    if body.endswith("/") and len(body) > 1:
        body = body[:-1]
    # A trailing slash is optional: frameworks redirect or route both spellings to one view,
    # and a gate that matched only one of them would be a gate with a side door. ``\Z``, never
    # ``$`` (which matches before a final newline); DOTALL so ``.`` is every character.
    return re.compile(f"{body}/?\\Z" if body != "/" else "/\\Z", re.DOTALL)


def _check_methods(methods: Iterable[str]) -> frozenset[str]:
    if isinstance(methods, str):
        raise TypeError("methods must be a list of method names, not a string")
    out: set[str] = set()
    for method in methods:
        if not isinstance(method, str) or not _TOKEN.match(method):
            raise ValueError(f"bad HTTP method {method!r}")
        out.add(method.upper())
    if not out:
        raise ValueError("a rule needs at least one method")
    if "GET" in out:
        # Starlette and Flask answer HEAD with the GET view (its side effects included): a
        # gate on GET alone would leave HEAD as a side door.
        out.add("HEAD")
    return frozenset(out)


@dataclass(frozen=True, init=False)
class Rule:
    """A protected route: requests whose method and path match must carry a captcha.

    ``provider`` names an entry of the middleware's ``providers``; None is the default one.
    ``fail_open`` None means yes: a provider outage lets requests through as ``fallback``.
    ``private_tokens`` True lets a clearance minted by a Private Access Token clear this rule
    too (it needs ``clearance``; docs/private-access-tokens.md).
    """

    pattern: str | re.Pattern[str]
    methods: frozenset[str]
    provider: str | None
    fail_open: bool | None
    clearance: bool | str
    private_tokens: bool
    regex: re.Pattern[str] = field(repr=False, compare=False)
    #: ``regex`` in any letter case: BlackSheep's router folds case (``/LOGIN`` runs
    #: ``/login``). Asked only of a path with an upper-case letter in it, since a regex that
    #: ignores case is about a third slower and nearly every path is lower-case.
    folded: re.Pattern[str] = field(repr=False, compare=False)

    def __init__(
        self,
        pattern: str | re.Pattern[str],
        methods: Iterable[str] = DEFAULT_METHODS,
        provider: str | None = None,
        fail_open: bool | None = None,
        clearance: bool | str = False,
        private_tokens: bool = False,
    ) -> None:
        if isinstance(pattern, re.Pattern):
            if isinstance(pattern.pattern, bytes):
                raise TypeError("a compiled pattern must be a str pattern, not bytes")
            regex = pattern
        elif isinstance(pattern, str):
            regex = compile_pattern(pattern)
        else:
            raise TypeError(f"pattern must be a str or a compiled re.Pattern, not {pattern!r}")
        if provider is not None and not isinstance(provider, str):
            raise TypeError("provider must be the name of an entry in providers=")
        if fail_open is not None and not isinstance(fail_open, bool):
            raise TypeError("fail_open must be True, False or None")
        object.__setattr__(self, "pattern", pattern)
        object.__setattr__(self, "methods", _check_methods(methods))
        object.__setattr__(self, "provider", provider)
        if not (
            isinstance(clearance, bool)
            or (isinstance(clearance, str) and _SCOPE_NAME.fullmatch(clearance))
        ):
            raise ValueError(
                f"clearance must be True, False or a scope name (letters, digits, -_.): "
                f"{clearance!r}"
            )
        object.__setattr__(self, "fail_open", fail_open)
        object.__setattr__(self, "clearance", clearance)
        if not isinstance(private_tokens, bool):
            raise TypeError("private_tokens must be True or False")
        if private_tokens and clearance is False:
            # A token only ever mints a clearance: a rule that takes none asks for its captcha.
            raise ValueError("private_tokens=True needs clearance=True (or a scope name)")
        object.__setattr__(self, "private_tokens", private_tokens)
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "folded", re.compile(regex.pattern, regex.flags | re.IGNORECASE))

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule's pattern covers ``method`` (any letter case) on ``path``.

        The path policy (control characters, other spellings of the path) is the routing
        decision's (``_routing.RuleTable``)."""
        return method.upper() in self.methods and self.matches_path(path)

    def matches_path(self, path: str) -> bool:
        merged = normalize_path(path)
        covers = _route_covers if isinstance(self.pattern, str) else _regex_covers
        if covers(self.regex, path, merged):
            return True
        return not path.islower() and covers(self.folded, path, merged)


def _route_covers(regex: re.Pattern[str], path: str, merged: str) -> bool:
    """Whether a route pattern's regex covers ``path``: as a slash-merging framework routes it,
    and as sent, where Falcon takes the empty segment of ``/posts//comments`` for a ``{name}``."""
    return regex.match(merged) is not None or (merged != path and regex.match(path) is not None)


def _regex_covers(regex: re.Pattern[str], path: str, merged: str) -> bool:
    """Whether a compiled-regex rule covers ``path`` (``merged``: its slashes collapsed).

    The regex sees the path as sent, as a slash-merging proxy or framework would route it (so
    ``//login`` cannot slip past ``re.compile("/login")``), and with its trailing slash toggled:
    Litestar strips trailing slashes before it routes (``/reports/x/`` runs the
    ``/reports/{name:str}`` view) and normalises its own routes the same way, so a regex
    written with or without the slash must cover both spellings, as a route pattern does.
    """
    if regex.fullmatch(path) is not None:
        return True
    if merged != path and regex.fullmatch(merged) is not None:
        return True
    if merged == "/":
        return False
    toggled = merged[:-1] if merged.endswith("/") else merged + "/"
    return regex.fullmatch(toggled) is not None


def normalize_path(path: str) -> str:
    """Collapse repeated slashes, as werkzeug and many proxies do, so ``//login`` is ``/login``."""
    if "//" in path:
        path = _SLASHES.sub("/", path)
    return path or "/"


__all__ = ["CONVERTERS", "DEFAULT_METHODS", "Rule", "compile_pattern", "normalize_path"]
