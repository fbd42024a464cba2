"""A rule bound to what serves it: its provider, its fail-open setting, its clearance scope;
and the start-up checks of what a gate is given (event hooks, challenge paths, private
tokens). Every error here is raised when the door is built, never at a request."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._clearance import Clearance, rule_scope
from ._effects import EventHook
from ._rules import Rule
from .providers._base import Provider

if TYPE_CHECKING:
    from ._privacy_pass import PrivateTokens
    from ._token_flow import TokenGate


@dataclass(frozen=True)
class Route:
    """A rule bound to the provider it names and its effective fail-open setting."""

    rule: Rule
    provider_name: str
    provider: Provider
    fail_open: bool
    #: The rule as events and metrics label it: its pattern as configured.
    label: str
    #: A provider that judges locally with a replay memory in the door's state (proof of
    #: work: ``check_flow`` yields its one ``remember``).
    remembers: bool = False
    #: The clearance scope this rule honours and grants (None: a captcha every time).
    clearance_scope: str | None = None
    #: A private-token clearance also clears this rule (the rule opted in, the door has both).
    private_tokens: bool = False


def bind(
    rule: Rule,
    default: Provider | None,
    named: Mapping[str, Provider],
    clearance: bool,
) -> Route:
    if rule.provider is None:
        if default is None:
            raise ValueError(f"{rule!r} uses the default provider, but provider= is not set")
        chosen, name = default, default.name
    else:
        if rule.provider not in named:
            known = ", ".join(sorted(named)) or "none"
            raise ValueError(f"{rule!r} names unknown provider {rule.provider!r} ({known})")
        chosen, name = named[rule.provider], rule.provider
    fail_open = True if rule.fail_open is None else rule.fail_open
    pattern = rule.pattern
    label = pattern if isinstance(pattern, str) else pattern.pattern
    remembers = callable(getattr(chosen, "check_flow", None))
    scope = rule_scope(rule) if clearance else None
    if scope is not None:
        scope = bound_scope(scope, name, chosen)
    return Route(rule, name, chosen, fail_open, label, remembers, scope)


def provider_identity(name: str, provider: Provider) -> str:
    """Who judged the captcha a clearance stands for: the configured name, the kind and the
    endpoint. Signed into the scope, so a clearance earned with a cheap captcha never clears a
    route of a stronger one (two apps sharing a secret, or two providers on one site)."""
    return f"{name}\0{provider.name}\0{provider.endpoint}"


def bound_scope(scope: str, name: str, provider: Provider) -> str:
    return f"{scope}\0provider:{provider_identity(name, provider)}"


def claim_scopes(routes: Iterable[Route]) -> dict[str, str]:
    """The provider identity of each named clearance scope (``Rule(clearance="name")``).

    One named scope spanning rules judged by different providers cannot be made safe (a pass on
    the weaker would have to clear the stronger, or the name would quietly mean two scopes): a
    ValueError when the door is built."""
    owners: dict[str, str] = {}
    for route in routes:
        name = route.rule.clearance
        if route.clearance_scope is None or not isinstance(name, str):
            continue
        identity = provider_identity(route.provider_name, route.provider)
        if owners.setdefault(name, identity) != identity:
            raise ValueError(
                f"clearance scope {name!r} spans rules judged by different providers "
                f"({route.label!r} uses {route.provider_name!r}): a clearance earned with one "
                "would clear the other; give each provider its own scope name"
            )
    return owners


def token_gate(
    tokens: PrivateTokens,
    clearance: Clearance | None,
    hooks: Mapping[str, Iterable[EventHook]] | None,
) -> TokenGate:
    from ._privacy_pass import PrivateTokens
    from ._token_flow import TokenGate

    if not isinstance(tokens, PrivateTokens):
        raise TypeError("private_tokens must be a captcha_guard.PrivateTokens")
    if clearance is None:
        raise ValueError("private_tokens= needs clearance=: a valid token mints a clearance")
    listeners = check_hooks(hooks).get("private_token", ())
    return TokenGate(tokens, clearance, hooks=listeners)


def opt_in(route: Route) -> Route:
    if not route.rule.private_tokens or route.clearance_scope is None:
        return route
    return dataclasses.replace(route, private_tokens=True)


def challenge_paths(configured: Iterable[Provider | None]) -> dict[str, Provider]:
    paths: dict[str, Provider] = {}
    for candidate in configured:
        if candidate is None or candidate.challenge_path is None:
            continue
        path = candidate.challenge_path
        if paths.get(path, candidate) is not candidate:
            raise ValueError(f"two providers serve challenges at {path!r}")
        paths[path] = candidate
    return paths


def check_hooks(
    hooks: Mapping[str, Iterable[EventHook]] | None,
) -> dict[str, tuple[EventHook, ...]]:
    from ._events import EVENT_NAMES

    checked: dict[str, tuple[EventHook, ...]] = {}
    for name, listed in (hooks or {}).items():
        if name not in EVENT_NAMES:
            raise ValueError(
                f"event_hooks: unknown event {name!r} (known: {', '.join(EVENT_NAMES)})"
            )
        if callable(listed):
            raise TypeError(f"event_hooks[{name!r}] must be a list of callables")
        functions = tuple(listed)
        for function in functions:
            if not callable(function):
                raise TypeError(f"event_hooks[{name!r}]: {function!r} is not callable")
        if functions:
            checked[name] = functions
    return checked


__all__ = [
    "Route",
    "bind",
    "bound_scope",
    "challenge_paths",
    "check_hooks",
    "claim_scopes",
    "opt_in",
    "provider_identity",
    "token_gate",
]
