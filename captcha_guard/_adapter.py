"""What the framework adapters share: a view's route, the fields as the framework parsed them,
and the verdict of a request judged already.

An adapter is one more driver of the gate's flow. Its route is a rule bound to a *view*
rather than a path (the decorator's and the dependency's options are a rule's), and its
``ClientRequest`` carries ``read_fields``: the fields are taken from the request the framework
parsed for the view, so the provider judges exactly what the view acts on, whatever the
gate's own parser would have made of the bytes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._effects import BodyProblem, Decision, Deny, Pass, ReadBody
from ._fields import DEFAULT_HEADER, JSON_NESTING_KEY, BodyError, Fields, ParseLimits
from ._fields import DEFAULT_LIMITS as _DEFAULT_LIMITS
from ._fields import parse_urlencoded as _parse_urlencoded
from ._flow import Gate
from ._perform import arun_flow, run_flow
from ._request import ClientRequest
from ._responses import unavailable
from ._route import Route, bind, bound_scope
from ._rules import DEFAULT_METHODS, Rule
from ._verdict import Outcome, Verdict

#: A pattern no path matches: a view's rule is found by the view, never by a path.
_NO_PATH = re.compile(r"(?!)")


def view_route(
    gate: Gate,
    label: str,
    *,
    provider: str | None = None,
    fail_open: bool | None = None,
    clearance: bool | str = False,
    methods: Iterable[str] = DEFAULT_METHODS,
) -> Route:
    """The route of a decorated view: a rule with the decorator's options, bound as the gate
    binds its rules (``provider`` a name from ``providers=``; an unknown one fails now)."""
    rule = Rule(_NO_PATH, methods, provider, fail_open, clearance)
    route = bind(rule, gate.default_provider, gate.named_providers, gate.clearance is not None)
    scope = route.clearance_scope
    if clearance is True and scope is not None:
        # A view's own scope: two views with clearance=True must not clear each other.
        scope = f"view:{','.join(sorted(rule.methods))}:{label}"
        scope = bound_scope(scope, route.provider_name, route.provider)
    # A view's named scope is bound to its provider like a rule's, so a name shared with a rule
    # of another provider is two scopes, never one that mixes them. It is not refused here:
    # Flask and Django bind a view at its first request, where a ValueError would be a 500.
    return dataclasses.replace(route, label=label, clearance_scope=scope)


def read_fields(
    *,
    form: Iterable[tuple[str, object]] = (),
    document: object = None,
    query: Iterable[tuple[str, object]] = (),
    header: str | None = None,
    opaque: str | None = None,
    limits: ParseLimits | None = None,
) -> Fields:
    """One request's candidate fields from what the framework parsed: its form, its JSON
    document (fields at the top level or under ``"captcha"``), its query, and the ``X-Captcha``
    header. A name seen in two places is a duplicate, refused as the doors refuse it."""
    fields = Fields()
    fields.extend(form)
    if isinstance(document, Mapping):
        for name, value in document.items():
            fields.add(str(name), value)
            if name == JSON_NESTING_KEY and isinstance(value, Mapping):
                fields.extend((str(k), v) for k, v in value.items())
    fields.opaque = opaque
    fields.extend(query)
    if header:
        try:
            fields.extend(_parse_urlencoded(header, limits or _DEFAULT_LIMITS))
        except BodyError as exc:
            exc.args = (f"the {DEFAULT_HEADER} header: {exc}",)
            raise
    return fields


def reused(verdict: Verdict, route: Route) -> Pass | Deny:
    """The answer for a request a door or middleware judged already: its verdict stands (the
    token is never sent twice), but a view that does not fail open refuses a fallback."""
    if verdict.outcome is Outcome.REJECTED:  # pragma: no cover - a door never passes one on
        from ._responses import rejected

        return Deny(rejected(verdict))
    if verdict.outcome is Outcome.FALLBACK and not route.fail_open:
        return Deny(unavailable(verdict))
    return Pass(verdict, None)


def judge(door: Any, route: Route, request: ClientRequest) -> Decision:
    """Run the gate's flow for a request whose fields the framework read (``read_fields``),
    performing its effects with ``door``'s sync client and state."""
    decision: Decision = run_flow(
        door.gate.decide(route, request), door.state, door._sender_for, _unread
    )
    return decision


async def ajudge(door: Any, route: Route, request: ClientRequest) -> Decision:
    """``judge`` on an event loop, with ``door``'s async client and state."""
    return await arun_flow(door.gate.decide(route, request), door.state, door._sender_for, _aunread)


def _unread(ask: ReadBody) -> bytes | BodyProblem:  # pragma: no cover - read_fields is set
    raise RuntimeError("an adapter's flow reads no body")


async def _aunread(ask: ReadBody) -> bytes | BodyProblem:  # pragma: no cover
    raise RuntimeError("an adapter's flow reads no body")


def is_judged(method: str, route: Route) -> bool:
    """Whether the view's rule judges this method (others run with the verdict None)."""
    return method.upper() in route.rule.methods


__all__ = ["ajudge", "is_judged", "judge", "read_fields", "reused", "view_route"]
