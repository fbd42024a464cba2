"""The routing decision: which rule, if any, protects a request, from its method and path.

Every driver of the gate asks this one question the same way (``Gate.route``): both front
doors, the framework adapters' ``rules=``, and ``captcha-guard explain``. Its answer must agree
with the app's own router, or a request the app routes to a protected view slips past the
gate. It cannot run every router, so it matches a deliberate superset of what each supported
one routes (docs/routing.md), and refuses what no superset can describe safely:

- the method is upper-cased first, as Django and Werkzeug do before they route (``post``
  runs their POST view; h11, wsgiref and the Werkzeug server pass it through as sent);
- a protected-method request whose path holds a control character (C0, DEL, C1, after the
  server's percent-decoding) is refused (``BAD_PATH``): Starlette's route regexes end in
  ``$``, which matches before a trailing newline, Django's ``re_path`` and users' own regexes
  do too, and no legitimate client puts a control character in a path;
- so is one whose path does not begin with ``/`` (``POST login HTTP/1.1``, which h11,
  wsgiref, the Werkzeug server and waitress pass through): Falcon and Litestar strip leading
  slashes and Werkzeug adds one, so each routes it to ``/login``;
- the path below the ASGI ``root_path`` is matched, and so is the whole path (Falcon routes
  it, root included) or what follows a ``root_path`` not ended by ``/`` (Litestar's cut);
- a prefix the app strips itself (FastAPI's ``root_path=``, Django's ``FORCE_SCRIPT_NAME``
  under ASGI) is stripped here too (``app_prefixes``);
- the undecoded ``raw_path`` is matched too, up to a ``#``: BlackSheep and Sanic route on
  it, so ``/posts/a%2Fb/comments`` runs their ``/posts/{id}/comments`` view, and Sanic
  parses it as a URL, so ``/login#x`` runs ``/login``;
- a format suffix on the last segment is cut off and the rest matched again: Django REST
  framework's ``format_suffix_patterns`` and ``DefaultRouter`` give every route a
  ``.<format>`` twin (``/login.json``, ``/login.json/``);
- letter case is ignored (each rule's ``folded`` twin): BlackSheep routes ``/LOGIN`` to
  ``/login``.

Matching more than the app routes costs nothing but a captcha on a path that would be a 404.
The request most apps see most (a method no rule names) is turned away by one set lookup.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable, Iterator
from typing import Any, Final, Generic, TypeVar

from ._rules import Rule, _regex_covers, normalize_path

#: Unicode's Cc category: C0, DEL and C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Every letter-case spelling of a method is looked up in one set: no str.upper() on the hot
# path. Methods with more letters than this are upper-cased instead (2**12 spellings at most).
_MAX_SPELLED = 12
#: A format suffix on the last segment, as Django REST framework routes it (its own is
#: ``[a-z0-9]+``, or the ``allowed`` list; any text without a dot or a slash is a superset).
_FORMAT_SUFFIX = re.compile(r"\.[^/.]+/?\Z")


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


def _other_spellings(
    path: str, below: str, root_path: str, raw_path: bytes | None
) -> Iterator[str]:
    """The request's path as the routers that did not route ``below`` would spell it."""
    if root_path:
        if below is not path:
            yield path  # Falcon routes the whole path, root_path included
        else:
            rest = past_root(path, root_path)
            if rest is not None:
                yield rest
    if raw_path is not None and (0x25 in raw_path or 0x23 in raw_path):  # "%", "#"
        # Without a "%" the raw path decodes to the path itself: nothing new to match. A
        # query a server left on is cut off (ASGI says it does not leave it), and so is a
        # fragment a client sent: Sanic parses the raw target as a URL, so POST /login#x
        # runs its /login view.
        target = raw_path.partition(b"?")[0].partition(b"#")[0]
        raw = target.decode("utf-8", "surrogateescape")
        raw_below = route_path(raw, root_path)
        yield raw_below
        if raw_below is not raw:
            yield raw


T = TypeVar("T")
Pattern = re.Pattern[str]


class RuleTable(Generic[T]):
    """The rules, compiled once, each with what the caller binds to it (the gate's route):
    ``match`` is the one question every driver asks of every request.

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
        self._folded = tuple(
            (rule.methods, rule.folded, isinstance(rule.pattern, str), value)
            for rule, value in self.entries
        )

    def match(
        self, method: str, path: str, root_path: str = "", raw_path: bytes | None = None
    ) -> T | BadPath | None:
        """What the rules say of a request: the first matching entry's value, a ``BadPath``
        (``BAD_PATH``, ``NO_LEADING_SLASH``), or None (no rule covers it: call the app, touch
        nothing).

        ``method`` as the server gave it; ``path`` percent-decoded as the server gives it to
        the app (ASGI ``path``, or WSGI ``PATH_INFO``, already below ``SCRIPT_NAME``);
        ``root_path`` the ASGI mount point; ``raw_path`` the path as sent (ASGI ``raw_path``).
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
        below = route_path(path, root_path) if root_path else path
        # self._judge(method, below), inlined: every protected-method request runs it.
        if has_control(below):
            return BAD_PATH
        if below and below[0] != "/":
            return NO_LEADING_SLASH
        found: T | BadPath | None = self._scan(method, below, self._compiled)
        if found is None:
            if self.prefixes or "." in below or not below.islower():
                found = self._variants(method, below)
            # 0x25 is "%", 0x23 "#": an int is looked for with memchr, where b"%" goes
            # through the buffer protocol at ten times the cost.
            if found is None and (
                root_path or (raw_path is not None and (0x25 in raw_path or 0x23 in raw_path))
            ):
                for other in _other_spellings(path, below, root_path, raw_path):
                    found = self._judge(method, other)
                    if found is not None:
                        break
        return found

    def _judge(self, method: str, path: str) -> T | BadPath | None:
        """One spelling of the path (``method`` upper-cased already)."""
        if has_control(path):
            return BAD_PATH
        if path and path[0] != "/":
            # No origin-form a client sends, and Falcon, Litestar and Werkzeug route ``login``
            # as ``/login``: refused, not guessed at.
            return NO_LEADING_SLASH
        found = self._scan(method, path, self._compiled)
        if found is None and (self.prefixes or "." in path or not path.islower()):
            found = self._variants(method, path)
        return found

    def _variants(self, method: str, path: str) -> T | None:
        """``path`` in any letter case, under a learned prefix, without a format suffix."""
        paths = [path]
        if "." in path:
            suffix = _FORMAT_SUFFIX.search(path)
            if suffix is not None:
                paths.append(path[: suffix.start()] or "/")
        for prefix in self.prefixes:
            # Like Django's removeprefix, no "/" boundary asked: a superset of Starlette's.
            paths.extend(p[len(prefix) :] or "/" for p in tuple(paths) if p.startswith(prefix))
        for index, candidate in enumerate(paths):
            if index:
                found = self._scan(method, candidate, self._compiled)
                if found is not None:
                    return found
            if not candidate.islower():  # an upper-case letter, or no letter at all
                found = self._scan(method, candidate, self._folded)
                if found is not None:
                    return found
        return None

    def _scan(
        self, method: str, path: str, compiled: tuple[tuple[frozenset[str], Pattern, bool, T], ...]
    ) -> T | None:
        """The first entry whose rule covers ``path`` (``compiled``: the rules' regexes, or
        their twins that ignore letter case)."""
        merged = normalize_path(path) if "//" in path else path or "/"
        for methods, regex, is_route, value in compiled:
            if method not in methods:
                continue
            if is_route:
                # _rules._route_covers, inlined: this loop runs for every protected-method
                # request.
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


__all__ = [
    "BAD_PATH",
    "NO_LEADING_SLASH",
    "BadPath",
    "RuleTable",
    "app_prefixes",
    "first_match",
    "has_control",
    "past_root",
    "route_path",
]
