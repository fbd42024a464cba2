"""Rule: which requests must carry a captcha, in the route syntax Starlette users write."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# The regexes of Starlette's built-in convertors, so `{id:int}` means what it means there.
CONVERTERS: dict[str, str] = {
    "str": r"[^/]+",
    "path": r".*",
    "int": r"[0-9]+",
    "float": r"[0-9]+(?:\.[0-9]+)?",
    "uuid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
}

_PARAM = re.compile(r"{([^{}]*)}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # RFC 9110 token, what a method is
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
    # and a gate that matched only one of them would be a gate with a side door.
    return re.compile(f"{body}/?\\Z" if body != "/" else "/\\Z")


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
    """

    pattern: str | re.Pattern[str]
    methods: frozenset[str]
    provider: str | None
    fail_open: bool | None
    regex: re.Pattern[str] = field(repr=False, compare=False)

    def __init__(
        self,
        pattern: str | re.Pattern[str],
        methods: Iterable[str] = DEFAULT_METHODS,
        provider: str | None = None,
        fail_open: bool | None = None,
    ) -> None:
        if isinstance(pattern, re.Pattern):
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
        object.__setattr__(self, "fail_open", fail_open)
        object.__setattr__(self, "regex", regex)

    def matches(self, method: str, path: str) -> bool:
        if method not in self.methods:
            return False
        if isinstance(self.pattern, str):
            return self.regex.match(normalize_path(path)) is not None
        # A regex sees the path as sent and as a slash-merging proxy or framework would route
        # it, so ``//login`` cannot slip past ``re.compile("/login")``.
        return self.regex.fullmatch(path) is not None or (
            "//" in path and self.regex.fullmatch(normalize_path(path)) is not None
        )


def normalize_path(path: str) -> str:
    """Collapse repeated slashes, as werkzeug and many proxies do, so ``//login`` is ``/login``."""
    if "//" in path:
        path = _SLASHES.sub("/", path)
    return path or "/"


def route_path(path: str, root_path: str) -> str:
    """The path below the app's mount point (ASGI ``root_path``)."""
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest.startswith("/"):
            return rest or "/"
    return path


def first_match(rules: Iterable[Rule], method: str, path: str) -> Rule | None:
    for rule in rules:
        if rule.matches(method, path):
            return rule
    return None
