"""Rule: which requests must carry a captcha, in the route syntax Starlette users write.

The gate's match must agree with the app's own router, or a request the app routes to a
protected view slips past it. It cannot run every router, so it matches a superset of what
each supported one (Starlette, FastAPI, Flask/Werkzeug, Django) routes to the same pattern,
and refuses what no superset can describe safely:

- the method is upper-cased first, as Django and Werkzeug do before they route (``post``
  runs their POST view; h11, wsgiref and the Werkzeug server pass it through as sent);
- a protected-method request whose path holds a control character (C0, DEL, C1, after the
  server's percent-decoding) is refused (``BAD_PATH``): Starlette's route regexes end in
  ``$``, which matches before a trailing newline, Django's ``re_path`` and users' own regexes
  do too, and no legitimate client puts a control character in a path;
- so is one whose path does not begin with ``/`` (``POST login HTTP/1.1``, which h11,
  wsgiref, the Werkzeug server and waitress pass through): Falcon and Litestar strip leading
  slashes and Werkzeug adds one, so each routes it to ``/login``;
- a convertor matches every spelling some framework would accept as that type (``{id:int}``:
  Werkzeug's ``\\d`` takes any Unicode digit, FastAPI's ``id: int`` takes ``" +1_0 "``);
- a trailing slash is optional and repeated slashes are collapsed, for a compiled regex too
  (Litestar strips trailing slashes before it routes), and a route pattern also sees the
  path as sent, since Falcon's ``{name}`` takes an empty segment (``/posts//comments``);
- a prefix the app strips itself (FastAPI's ``root_path=``, Django's ``FORCE_SCRIPT_NAME``
  under ASGI) is stripped here too (``app_prefixes``).

Matching more than the app routes costs nothing but a captcha on a path that would be a 404.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

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
#: Unicode's Cc category: C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Every letter-case spelling of a method is looked up in one set: no str.upper() on the hot
# path. Methods with more letters than this are upper-cased instead (2**12 spellings at most).
_MAX_SPELLED = 12


class BadPath:
    """A protected-method request whose path no rule can be trusted to judge (see module doc):
    the door answers it 400 ``bad_path`` without calling the app."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: A control character in the path.
BAD_PATH: Final = BadPath("BAD_PATH")
#: A path that does not begin with ``/`` (below the mount point).
NO_LEADING_SLASH: Final = BadPath("NO_LEADING_SLASH")


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

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule's pattern covers ``method`` (any letter case) on ``path``.

        The path policy (control characters, learned prefixes) is ``RuleTable``'s."""
        return method.upper() in self.methods and self.matches_path(path)

    def matches_path(self, path: str) -> bool:
        merged = normalize_path(path)
        if isinstance(self.pattern, str):
            return _route_covers(self.regex, path, merged)
        return _regex_covers(self.regex, path, merged)


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


def route_path(path: str, root_path: str) -> str:
    """The path below the app's mount point (ASGI ``root_path``); the whole path when it does
    not continue ``root_path`` at a ``/`` (see ``past_root``)."""
    if root_path and path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest.startswith("/"):
            return rest or "/"
    return path


def past_root(path: str, root_path: str) -> str | None:
    """What follows ``root_path`` in ``path`` when it continues it without a ``/`` boundary
    (``/applogin`` under ``/app``), else None.

    uvicorn builds the path as root_path + request target, so this is a target sent without
    its leading slash. Starlette routes the whole path, Litestar the part after the first
    ``root_path`` it finds (``login``, i.e. ``/login``): the door matches both, and the second
    is ``NO_LEADING_SLASH`` for a protected method."""
    if root_path and len(path) > len(root_path) and path.startswith(root_path):
        rest = path[len(root_path) :]
        if rest[0] != "/":
            return rest
    return None


def has_control(path: str) -> bool:
    """Whether ``path`` holds a control character (Unicode Cc: C0, DEL, C1)."""
    # isprintable() is one C loop and true for nearly every path; the regex decides the rest
    # (non-ASCII blanks and format characters are not printable, but not controls either).
    return not path.isprintable() and _CONTROL.search(path) is not None


def _spellings(method: str) -> Iterable[str]:
    if sum(c.isalpha() for c in method) > _MAX_SPELLED:
        return (method,)
    choices = [(c.lower(), c.upper()) if c.isalpha() else (c,) for c in method]
    return ("".join(p) for p in itertools.product(*choices))


T = TypeVar("T")


class RuleTable(Generic[T]):
    """The rules, compiled once, each with what the caller binds to it (the gate's route):
    ``match(method, path)`` is the one question a front door asks of every request.

    ``prefixes`` are mount points the app strips from the path itself (``app_prefixes``):
    a path under one is also matched with it removed.
    """

    def __init__(self, entries: Iterable[tuple[Rule, T]], *, prefixes: Iterable[str] = ()) -> None:
        self.entries = tuple(entries)
        self.methods = frozenset(m for rule, _ in self.entries for m in rule.methods)
        #: Every letter-case spelling of the protected methods. A method not in it is
        #: unmatched when it is ASCII and ``exhaustive`` (no method too long to spell out):
        #: that test alone, inlined, is a door's hot path.
        self.spelled = frozenset(s for m in self.methods for s in _spellings(m))
        self.exhaustive = all(sum(c.isalpha() for c in m) <= _MAX_SPELLED for m in self.methods)
        self.prefixes = tuple(p for p in dict.fromkeys(prefixes) if p and p != "/")
        self._compiled = tuple(
            (rule.methods, rule.regex, isinstance(rule.pattern, str), value)
            for rule, value in self.entries
        )

    def match(self, method: str, path: str) -> T | BadPath | None:
        """What the rules say of a request: the first matching entry's value, a ``BadPath``
        (``BAD_PATH``, ``NO_LEADING_SLASH``), or None (no rule covers it: call the app, touch
        nothing).

        ``method`` as the server gave it; ``path`` the path below the ASGI ``root_path`` (or
        PATH_INFO), percent-decoded as the server gives it to the app.
        """
        if method not in self.spelled:
            # The hot path: a GET, when no rule names GET. Only a method no spelling set
            # holds can still upper-case to a protected one ("\u017f" is "S", say).
            if self.exhaustive and method.isascii():
                return None
            if method.upper() not in self.methods:
                return None
        if method not in self.methods:
            method = method.upper()
        if has_control(path):
            return BAD_PATH
        if path and path[0] != "/":
            # No origin-form a client sends, and Falcon, Litestar and Werkzeug route ``login``
            # as ``/login``: refused, not guessed at.
            return NO_LEADING_SLASH
        found = self._scan(method, path)
        if found is None and self.prefixes:
            for prefix in self.prefixes:
                # Like Django's removeprefix, no "/" boundary asked: a superset of Starlette's.
                if path.startswith(prefix):
                    found = self._scan(method, path[len(prefix) :] or "/")
                    if found is not None:
                        break
        return found

    def _scan(self, method: str, path: str) -> T | None:
        merged = normalize_path(path) if "//" in path else path or "/"
        for methods, regex, is_route, value in self._compiled:
            if method not in methods:
                continue
            if is_route:
                # _route_covers, inlined: this loop runs for every protected-method request.
                if regex.match(merged) is not None or (
                    merged is not path and regex.match(path) is not None
                ):
                    return value
            elif _regex_covers(regex, path, merged):
                return value
        return None


def first_match(rules: Iterable[Rule], method: str, path: str) -> Rule | None:
    """The first rule that protects ``method path`` (None for a path with a control character
    in it or without its leading slash: ``RuleTable`` refuses those whole)."""
    found = RuleTable((rule, rule) for rule in rules).match(method, path)
    return None if isinstance(found, BadPath) else found


def _walk(app: Any) -> Iterable[Any]:
    """``app``, then the apps it wraps through ``.app`` (the convention of ASGI middleware)."""
    seen: set[int] = set()
    while app is not None and id(app) not in seen and len(seen) < 32:
        seen.add(id(app))
        yield app
        app = getattr(app, "app", None)


def app_prefixes(app: Any) -> tuple[str, ...]:
    """Path prefixes ``app`` strips from the ASGI path itself before it routes, so that a gate
    wrapped around it from outside sees what it will route.

    ``FastAPI(root_path="/app")`` overwrites the scope's ``root_path`` and routes ``/app/login``
    to ``/login``; Django's ASGI handler strips ``settings.FORCE_SCRIPT_NAME`` (read here, once).
    Looked for in ``app`` and the apps it wraps; nothing is imported that was not already.
    """
    found: list[str] = []
    fastapi = sys.modules.get("fastapi")
    django_asgi = sys.modules.get("django.core.handlers.asgi")
    for inner in _walk(app):
        if fastapi is not None and isinstance(inner, fastapi.FastAPI):
            root = getattr(inner, "root_path", "")
            if isinstance(root, str) and root:
                found.append(root)
        if django_asgi is not None and isinstance(inner, django_asgi.ASGIHandler):
            # The handler imported django.conf; its settings are configured by now.
            settings = sys.modules["django.conf"].settings
            script_name = getattr(settings, "FORCE_SCRIPT_NAME", None)
            if isinstance(script_name, str) and script_name:
                found.append(script_name)
    return tuple(found)
