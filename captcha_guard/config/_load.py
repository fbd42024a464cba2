"""``load(path) -> Config``: pure (no I/O beyond reading the file and the environment
variables and secret files it names; nothing is connected, nothing is probed).

Theory of operation. ``tomllib`` parses the file (and says where a syntax error is); then every
table is checked against its schema (``_schema``), so an unknown key or a bad value is an error
that names the file, the line (``_locate``) and the key. Every error is collected before
``ConfigError`` is raised; a file that loads is then checked for what works but should not be
shipped (``_checks``: warnings).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .._breaker import CircuitBreaker
from .._rules import Rule
from ..providers import Provider
from ._checks import findings
from ._locate import Key, Locator
from ._model import ClearanceSpec, Config, ProviderSpec, RuleSpec, StateSpec
from ._private_tokens import check_rules, private_tokens
from ._schema import (
    _BREAKER,
    _CLEARANCE,
    _CLIENT_IP,
    _LIMITS,
    _METRICS,
    _RULE,
    _STATE,
    _TABLES,
    _TOP,
    PARSE_LIMITS,
    PROVIDER_TYPES,
    ProviderType,
)
from ._values import Check, ConfigError, Context, Problem, _integer, _string, _table, _type_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

logger = logging.getLogger("captcha_guard")
T = TypeVar("T")

#: The options of a ``[[rules]]`` entry passed to ``Rule`` as they are (``provider`` is
#: resolved against the file's providers first).
RULE_OPTIONS = ("methods", "fail_open", "clearance", "private_tokens")


def load(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check a configuration file; ``ConfigError`` lists every problem found."""
    where = Path(path)
    name = str(path)
    try:
        raw = where.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(name, None, "", f"cannot read: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError([Problem(name, line, "", "not UTF-8 text")]) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        at = int(match.group(1)) if match else None
        raise ConfigError([Problem(name, at, "", f"not valid TOML: {message}")]) from None
    ctx = Context(name, Locator(text), os.environ if environ is None else environ, where.parent)
    config = _build(ctx, document, where)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    assert config is not None
    return config


def _build(ctx: Context, document: dict[str, Any], where: Path) -> Config | None:
    top = _table(ctx, (), document, _TOP, skip=_TABLES)
    environment = top.get("environment", "production")
    limits = _table(ctx, ("limits",), document.get("limits", {}), _LIMITS, skip=("parse",))
    parse_limits = _parse_limits(ctx, document.get("limits", {}))
    client_ip = _table(ctx, ("client_ip",), document.get("client_ip", {}), _CLIENT_IP)
    metrics = _table(ctx, ("metrics",), document.get("metrics", {}), _METRICS)
    state = _state(ctx, document)
    clearance = _clearance(ctx, document)
    tokens = private_tokens(ctx, document, clearance is not None)
    providers = _providers(ctx, document.get("providers", {}))
    default = _default_provider(ctx, top.get("provider"), document)
    declared = document.get("providers", {})
    declared_names = frozenset(declared) if isinstance(declared, dict) else frozenset()
    rules = _rules(
        ctx, document.get("rules", []), providers, declared_names, default, clearance is not None
    )
    check_rules(ctx, document.get("rules", []), tokens is not None)
    if ctx.problems:
        return None
    config = Config(
        path=where,
        environment=environment,
        default_provider=default,
        providers=providers,
        rules=tuple(rules),
        max_body_size=limits.get("max_body_size"),
        body_timeout=limits.get("body_timeout"),
        fallback_limit=limits.get("fallback_limit"),
        parse_limits=parse_limits or None,
        client_ip=client_ip.get("trusted_hops"),
        state=state,
        clearance=clearance,
        private_tokens=tokens,
        prometheus=metrics.get("prometheus", False),
    )
    findings(config, ctx)
    return dataclasses.replace(config, warnings=tuple(ctx.warnings))


def _parse_limits(ctx: Context, limits: Any) -> dict[str, int]:
    if not isinstance(limits, dict) or "parse" not in limits:
        return {}
    schema = dict.fromkeys(PARSE_LIMITS, _integer(1))
    return _table(ctx, ("limits", "parse"), limits["parse"], schema)


def _state(ctx: Context, document: dict[str, Any]) -> StateSpec | None:
    if "state" not in document:
        return None
    values = _table(ctx, ("state",), document["state"], _STATE, required=("url",))
    url = values.get("url")
    if url is None:
        return None
    if not re.match(r"(redis|rediss|unix)://", url):
        ctx.error(("state", "url"), "must be a redis://, rediss:// or unix:// URL")
        return None
    raw = document["state"].get("url", "")
    if re.match(r"(redis|rediss)://[^/@]*:[^/@]+@", raw):
        # A password written in the file is a secret written in the file.
        ctx.error(
            ("state", "url"),
            'a URL with a password must come from "env:NAME" or "file:/path" '
            '(or be marked "literal:...")',
        )
    options: dict[str, Any] = {
        k: values[k] for k in ("in_outage", "clock_skew", "max_entries") if k in values
    }
    line = ctx.locator.line(("state",))
    return StateSpec(url, values.get("prefix"), values.get("timeout"), line, options)


def _clearance(ctx: Context, document: dict[str, Any]) -> ClearanceSpec | None:
    if "clearance" not in document:
        return None
    values = _table(ctx, ("clearance",), document["clearance"], _CLEARANCE, required=("secret",))
    if "secret" not in values:
        return None
    return ClearanceSpec(tuple(values["secret"]), values.get("ttl"), values.get("secure"))


def _providers(ctx: Context, table: Any) -> dict[str, ProviderSpec]:
    if not isinstance(table, dict):
        ctx.error(("providers",), f"must be a table of providers, not {_type_name(table)}")
        return {}
    out: dict[str, ProviderSpec] = {}
    for name, body in table.items():
        path: Key = ("providers", name)
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", name):
            ctx.error(path, "a provider's name is letters, digits, '_', '-' or '.' (<= 64)")
            continue
        if not isinstance(body, dict):
            ctx.error(path, f"must be a table, not {_type_name(body)}")
            continue
        kind = body.get("type", name)  # [providers.geetest] needs no type = "geetest"
        if kind not in PROVIDER_TYPES:
            known = ", ".join(PROVIDER_TYPES)
            at = (*path, "type") if "type" in body else path
            ctx.error(at, f"unknown provider type {kind!r} (known: {known})")
            continue
        spec = PROVIDER_TYPES[kind]
        schema: dict[str, Check] = {"type": _string, **spec.schema}
        if spec.cls.remote:
            schema["breaker"] = _check_breaker
        errors_before = len(ctx.problems)
        values = _table(ctx, path, body, schema, required=spec.required)
        if len(ctx.problems) > errors_before:
            continue
        values.pop("type", None)
        provider = _construct(ctx, path, spec, values)
        if provider is not None:
            out[name] = ProviderSpec(name, kind, provider, ctx.locator.line(path), values)
    return out


def _check_breaker(ctx: Context, path: Key, value: Any) -> dict[str, Any]:
    # Its errors are recorded one by one; the provider is then not built (see _providers).
    return _table(ctx, path, value, _BREAKER)


def _construct(
    ctx: Context, path: Key, spec: ProviderType, values: dict[str, Any]
) -> Provider | None:
    kwargs = dict(values)
    if "breaker" in kwargs:
        kwargs["breaker"] = CircuitBreaker(**kwargs["breaker"])
    args = [kwargs.pop(name) for name in spec.positional]
    try:
        return spec.cls(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        # The constructors name the argument in their message; point at it when we can.
        message = str(exc)
        named = [k for k in values if re.search(rf"\b{re.escape(k)}\b", message)]
        ctx.error((*path, named[0]) if named else path, message)
        return None


def _default_provider(ctx: Context, chosen: str | None, document: dict[str, Any]) -> str | None:
    declared = document.get("providers", {})
    names = list(declared) if isinstance(declared, dict) else []
    if chosen is not None:
        if chosen not in names:
            ctx.error(
                ("provider",), f"names no [providers.{chosen}] table ({', '.join(names) or 'none'})"
            )
            return None
        return chosen  # if it failed to build, its own error says why; its rules stay quiet
    return names[0] if len(names) == 1 else None


def _rules(
    ctx: Context,
    entries: Any,
    providers: Mapping[str, ProviderSpec],
    declared: frozenset[str],
    default: str | None,
    has_clearance: bool,
) -> list[RuleSpec]:
    if not isinstance(entries, list):
        ctx.error(("rules",), "must be an array of tables: write each rule as [[rules]]")
        return []
    out: list[RuleSpec] = []
    for index, entry in enumerate(entries):
        path: Key = ("rules", index)
        errors_before = len(ctx.problems)
        values = _table(ctx, path, entry, _RULE)
        if len(ctx.problems) > errors_before or not isinstance(entry, dict):
            continue
        if ("pattern" in values) == ("regex" in values):
            ctx.error(path, "a rule needs exactly one of 'pattern' or 'regex'")
            continue
        name = values.get("provider", default)
        if name is None:
            ctx.error(path, "no provider: set provider = ... here or at the top of the file")
            continue
        if name not in providers:
            if name in declared:
                continue  # that provider's own error is reported already
            known = ", ".join(providers) or "none"
            at = (*path, "provider") if "provider" in values else ("provider",)
            ctx.error(at, f"names no provider {name!r} (known: {known})")
            continue
        if values.get("clearance") and not has_clearance:
            ctx.error((*path, "clearance"), "clearance = true needs a [clearance] table")
            continue
        rule = _make_rule(ctx, path, values, name)
        if rule is None:
            continue
        options = {k: values[k] for k in RULE_OPTIONS if k in values}
        out.append(RuleSpec(index, rule, ctx.locator.line(path), name, options))
    return out


def _make_rule(ctx: Context, path: Key, values: dict[str, Any], provider: str) -> Rule | None:
    kwargs: dict[str, Any] = {"provider": provider}
    kwargs.update((name, values[name]) for name in RULE_OPTIONS if name in values)
    if "regex" in values:
        try:
            pattern: str | re.Pattern[str] = re.compile(values["regex"])
        except re.error as exc:
            ctx.error((*path, "regex"), f"not a valid regular expression: {exc}")
            return None
        key = "regex"
    else:
        pattern, key = values["pattern"], "pattern"
    try:
        return Rule(pattern, **kwargs)
    except (TypeError, ValueError) as exc:
        at = (*path, "methods") if "method" in str(exc) and "methods" in values else (*path, key)
        ctx.error(at, str(exc))
        return None


def door_from_file(
    door: Callable[..., T], app: Any, path: str | os.PathLike[str], overrides: Mapping[str, Any]
) -> T:
    """What ``from_file`` on both doors does: load, log the warnings, build the door with the
    file's options and then the caller's ``overrides``."""
    config = load(path)
    for warning in config.warnings:
        logger.warning("captcha_guard config: %s [%s]", warning, warning.code)
    return build_door(door, app, config, overrides)


def build_door(door: Callable[..., T], app: Any, config: Config, overrides: Mapping[str, Any]) -> T:
    """``door`` built from ``config``: what the door itself refuses (two providers serving one
    challenge path, a clearance secret too short, a missing extra) is a ``ConfigError`` naming
    the file, as ``load`` would. ``captcha-guard check`` builds the door through here too, so
    that it passes no file ``from_file`` refuses."""
    try:
        return door(app, **{**config.door_kwargs(), **overrides})
    except (ValueError, ImportError) as exc:
        if isinstance(exc, ConfigError):
            raise
        problem = Problem(str(config.path), None, "", f"the door refuses it: {exc}")
        raise ConfigError([problem]) from exc


__all__ = ["build_door", "door_from_file", "load"]
