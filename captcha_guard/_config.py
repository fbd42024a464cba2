"""Configuration from a TOML file: ``load(path) -> Config``, pure (no I/O beyond reading the
file and the environment variables it names; nothing is connected, nothing is probed).

Theory of operation. ``tomllib`` parses the file (and says where a syntax error is); then
every table is checked against its schema below, so an unknown key or a bad value is an error
that names the file, the line and the key. ``tomllib`` gives no positions, so ``_Locator``
finds a key's line in the source text itself (table headers, ``[[arrays]]`` by their index,
dotted keys). Every key is named as the constructor argument or door option it becomes.

Secrets never sit in the file by accident: a secret is ``"env:NAME"`` (read from the
environment when the file is loaded), ``"file:/path"`` (a mounted secret, stripped of its
final newline) or, when someone decided so, ``"literal:the-value"``. Anything else is refused.

What ``Config`` holds: the door options (``door_kwargs()``), the rules and providers as the
file gave them (for ``captcha-guard check`` and ``explain``), and the warnings found while
loading (test keys in production, rules that can never be reached, ...).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ._breaker import CircuitBreaker
from ._rules import Rule
from .providers import (
    AliyunCaptcha,
    DeepKnow,
    GeeTest,
    HCaptcha,
    ProofOfWork,
    Provider,
    ReCaptcha,
    Turnstile,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

logger = logging.getLogger("captcha_guard")

#: The door options a config file sets, in one table: option -> whether both doors take it
#: yet. ``door_kwargs()`` passes only the ready ones; flip an entry to True when the doors
#: grow that option (the value is already built and tested in ``Config.options``).
DOOR_OPTIONS: dict[str, bool] = {
    "rules": True,
    "provider": True,
    "providers": True,
    "max_body_size": True,
    "fallback_limit": True,
    "body_timeout": True,
    "parse_limits": True,
    "client_ip": True,
    "state": True,
    "clearance": True,
    "event_hooks": True,
}

#: Rule options the file may set: option -> whether ``Rule`` takes it yet.
RULE_OPTIONS: dict[str, bool] = {
    "methods": True,
    "provider": True,
    "fail_open": True,
    "clearance": True,
}

ENVIRONMENTS = ("production", "staging", "development", "test")

SECRET_PREFIXES = ("env:", "file:", "literal:")

#: Vendors' public test keys and the sample keys their docs print (anyone may use them, so a
#: production site configured with one is not protected): value -> what it is.
TEST_KEYS: dict[str, str] = {
    "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe": "reCAPTCHA's test secret (passes every token)",
    "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI": "reCAPTCHA's test site key",
    "0x0000000000000000000000000000000000000000": "hCaptcha's test secret",
    "10000000-ffff-ffff-ffff-000000000001": "hCaptcha's test site key",
    "1x0000000000000000000000000000000AA": "Turnstile's always-pass test secret",
    "2x0000000000000000000000000000000AA": "Turnstile's always-fail test secret",
    "3x0000000000000000000000000000000AA": "Turnstile's already-spent test secret",
    "647f5ed2ed8acb4be36784e01556bb71": "the captcha_id of GeeTest's documentation samples",
    "b09a7aafbfd83f73b35a9b530d0337bf": "the captcha_key of GeeTest's documentation samples",
    "your-256-bit-secret": "the secret of GeeTest DeepKnow's documentation example",
    "YourAccessKeyId": "the AccessKey ID of Alibaba Cloud's signature example",
    "YourAccessKeySecret": "the AccessKey secret of Alibaba Cloud's signature example",
    # captcha_guard.testing's emulators' defaults.
    "6Lemulated-recaptcha-secret-000000000000": "captcha_guard.testing's reCAPTCHA secret",
    "0xEmulatedHCaptchaSecret000000000000000000": "captcha_guard.testing's hCaptcha secret",
    "0x4AAAAAAAEmulatedTurnstileSecret000": "captcha_guard.testing's Turnstile secret",
    "LTAI5tEmulatedAccessKeyId": "captcha_guard.testing's Alibaba Cloud AccessKey ID",
    "EmulatedAccessKeySecret0123456789": "captcha_guard.testing's Alibaba Cloud secret",
}

#: The vendors' test secrets proper: the vendor answers them with test behaviour (always pass,
#: always fail, only the dummy token), so probing one proves nothing.
VENDOR_TEST_SECRETS = frozenset(
    {
        "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe",
        "0x0000000000000000000000000000000000000000",
        "1x0000000000000000000000000000000AA",
        "2x0000000000000000000000000000000AA",
        "3x0000000000000000000000000000000AA",
    }
)

Key = tuple[str | int, ...]
T = TypeVar("T")


def key_text(path: Key) -> str:
    """``("rules", 1, "methods")`` as ``rules[2].methods`` (arrays counted from 1)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            text += f".{part}" if text else part
    return text


@dataclass(frozen=True)
class Problem:
    """An error or a warning about one key of one file. ``code`` is stable (for ``--allow``)."""

    file: str
    line: int | None
    key: str
    message: str
    code: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(ValueError):
    """The file is not a valid configuration. ``problems`` lists every error found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# Finding a key's line.

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _split_key(text: str) -> list[str] | None:
    """A TOML key (``a.b``, ``"a.b".c``, ``'x'``) as its parts; None if it is not one."""
    parts: list[str] = []
    rest = text.strip()
    while rest:
        if rest[0] in "\"'":
            end = rest.find(rest[0], 1)
            if end < 0:
                return None
            parts.append(rest[1:end])
            rest = rest[end + 1 :].strip()
        else:
            match = _BARE.match(rest)
            if match is None:
                return None
            parts.append(match.group())
            rest = rest[match.end() :].strip()
        if rest.startswith("."):
            rest = rest[1:].strip()
        elif rest:
            return None
    return parts


class _Locator:
    """Lines of keys in a TOML text that ``tomllib`` already accepted."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Key, int] = {}
        arrays: dict[Key, int] = {}
        table: Key = ()
        quote: str | None = None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if quote is not None:  # inside a multi-line string: no keys here
                if line.count(quote) % 2 == 1:
                    quote = None
                continue
            if line.startswith("[["):
                parts = _split_key(line[2 : line.find("]]")])
                if parts is None:
                    continue
                name = self._resolve(parts, arrays)
                arrays[name] = arrays.get(name, -1) + 1
                table = (*name, arrays[name])
                self.lines.setdefault(name, number)
                self.lines[table] = number
            elif line.startswith("["):
                parts = _split_key(line[1 : line.find("]")])
                if parts is None:
                    continue
                table = self._resolve(parts, arrays)
                self.lines.setdefault(table, number)
            elif "=" in line and not line.startswith("#"):
                parts = _split_key(line.split("=", 1)[0])
                if parts is None:
                    continue
                for depth in range(1, len(parts) + 1):
                    self.lines.setdefault((*table, *parts[:depth]), number)
                value = line.split("=", 1)[1]
                for mark in ('"""', "'''"):
                    if value.count(mark) % 2 == 1:
                        quote = mark

    @staticmethod
    def _resolve(parts: list[str], arrays: Mapping[Key, int]) -> Key:
        """A header's path, with the current index after each array of tables in it."""
        resolved: list[str | int] = []
        for part in parts:
            resolved.append(part)
            index = arrays.get(tuple(resolved))
            if index is not None and len(resolved) < len(parts):
                resolved.append(index)
        return tuple(resolved)

    def line(self, path: Key) -> int | None:
        """The line of ``path``, or of the nearest enclosing key the text names."""
        for end in range(len(path), 0, -1):
            number = self.lines.get(path[:end])
            if number is not None:
                return number
        return None


# Values.


class _Invalid(Exception):
    def __init__(self, path: Key, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass
class _Context:
    file: str
    locator: _Locator
    environ: Mapping[str, str]
    base: Path
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: Secret values seen (for the test-key check), with where they came from.
    secrets: list[tuple[Key, str]] = field(default_factory=list)

    def error(self, path: Key, message: str) -> None:
        self.problems.append(Problem(self.file, self.locator.line(path), key_text(path), message))

    def warn(self, path: Key, code: str, message: str) -> None:
        self.warnings.append(
            Problem(self.file, self.locator.line(path), key_text(path), message, code)
        )


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


Check = Callable[[_Context, Key, Any], Any]


def _string(ctx: _Context, path: Key, value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid(path, f"must be a string, not {_type_name(value)}")
    return value


def _nonempty(ctx: _Context, path: Key, value: Any) -> str:
    text = _string(ctx, path, value)
    if not text:
        raise _Invalid(path, "must not be empty")
    return text


def _boolean(ctx: _Context, path: Key, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(path, f"must be true or false, not {_type_name(value)}")
    return value


def _integer(minimum: int) -> Check:
    def check(ctx: _Context, path: Key, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(path, f"must be an integer, not {_type_name(value)}")
        if value < minimum:
            raise _Invalid(path, f"must be >= {minimum}")
        return value

    return check


def _number(minimum: float, *, strict: bool = False, maximum: float | None = None) -> Check:
    def check(ctx: _Context, path: Key, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(path, f"must be a number, not {_type_name(value)}")
        if (value <= minimum) if strict else (value < minimum):
            raise _Invalid(path, f"must be {'>' if strict else '>='} {minimum:g}")
        if maximum is not None and value > maximum:
            raise _Invalid(path, f"must be <= {maximum:g}")
        return float(value)

    return check


def _strings(ctx: _Context, path: Key, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise _Invalid(path, "must be a string or a non-empty array of strings")
    for index, item in enumerate(value):
        _nonempty(ctx, (*path, index), item)
    return list(value)


def _string_array(ctx: _Context, path: Key, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _Invalid(path, f"must be an array of strings, not {_type_name(value)}")
    return _strings(ctx, path, value)


def _one_of(*choices: str) -> Check:
    def check(ctx: _Context, path: Key, value: Any) -> str:
        text = _string(ctx, path, value)
        if text not in choices:
            raise _Invalid(path, f"must be one of {', '.join(choices)}, not {text!r}")
        return text

    return check


def _reference(ctx: _Context, path: Key, value: Any, *, secret: bool) -> str:
    text = _string(ctx, path, value)
    if text.startswith("env:"):
        name = text[4:]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise _Invalid(path, f"{text!r} does not name an environment variable")
        resolved = ctx.environ.get(name)
        if not resolved:
            raise _Invalid(path, f"environment variable {name} is not set (or empty)")
    elif text.startswith("file:"):
        where = Path(text[5:])
        where = where if where.is_absolute() else ctx.base / where
        try:
            resolved = where.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise _Invalid(path, f"cannot read {where}: {type(exc).__name__}") from None
        if not resolved:
            raise _Invalid(path, f"{where} is empty")
    elif text.startswith("literal:"):
        resolved = text[8:]
    elif secret:
        raise _Invalid(
            path,
            'a secret must be "env:NAME" or "file:/path"; a secret written in the file '
            'itself must be marked "literal:..."',
        )
    else:
        resolved = text
    if not resolved:
        raise _Invalid(path, "must not be empty")
    if secret:
        ctx.secrets.append((path, resolved))
    return resolved


def _secret(ctx: _Context, path: Key, value: Any) -> str:
    return _reference(ctx, path, value, secret=True)


def _credential(ctx: _Context, path: Key, value: Any) -> str:
    """An identifier that may come from the environment but may also be written plainly."""
    resolved = _reference(ctx, path, value, secret=False)
    ctx.secrets.append((path, resolved))
    return resolved


def _secrets(ctx: _Context, path: Key, value: Any) -> list[str]:
    if isinstance(value, str):
        return [_secret(ctx, path, value)]
    if not isinstance(value, list) or not value:
        raise _Invalid(path, "must be a secret or a non-empty array of secrets (newest first)")
    return [_secret(ctx, (*path, index), item) for index, item in enumerate(value)]


def _field_or_table(ctx: _Context, path: Key, value: Any) -> str | dict[str, Any]:
    if isinstance(value, dict):
        return value
    return _nonempty(ctx, path, value)


def _field_or_int(ctx: _Context, path: Key, value: Any) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return _integer(0)(ctx, path, value)  # type: ignore[no-any-return]
    return _nonempty(ctx, path, value)


def _table(
    ctx: _Context,
    path: Key,
    value: Any,
    schema: Mapping[str, Check],
    *,
    required: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> dict[str, Any]:
    """Check a table against ``schema``: every error is recorded, the good values returned."""
    if not isinstance(value, dict):
        ctx.error(path, f"must be a table, not {_type_name(value)}")
        return {}
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name in skip:
            continue
        check = schema.get(name)
        if check is None:
            known = ", ".join(sorted([*schema, *skip]))
            ctx.error((*path, name), f"unknown key (known here: {known})")
            continue
        try:
            out[name] = check(ctx, (*path, name), item)
        except _Invalid as invalid:
            ctx.error(invalid.path, invalid.message)
    for name in required:
        if name not in value:
            ctx.error(path, f"missing required key {name!r}")
    return out


# The schema.

_BREAKER: dict[str, Check] = {
    "failure_threshold": _integer(1),
    "reset_timeout": _number(0),
}
_REMOTE: dict[str, Check] = {
    "endpoint": _nonempty,
    "timeout": _number(0, strict=True),
}
_SITEVERIFY: dict[str, Check] = {
    **_REMOTE,
    "secret": _secret,
    "hostnames": _strings,
    "field": _nonempty,
}


@dataclass(frozen=True)
class ProviderType:
    cls: type[Provider]
    schema: Mapping[str, Check]
    required: tuple[str, ...]
    #: The argument passed positionally (the constructors' first parameters).
    positional: tuple[str, ...]


PROVIDER_TYPES: dict[str, ProviderType] = {
    "geetest": ProviderType(
        GeeTest,
        {
            **_REMOTE,
            "captcha_id": _credential,
            "captcha_key": _secret,
            "region": _one_of("cn", "global", "eu", "na"),
        },
        ("captcha_id", "captcha_key"),
        ("captcha_id", "captcha_key"),
    ),
    "deepknow": ProviderType(
        DeepKnow,
        {
            **_REMOTE,
            "secret": _secret,
            "scene": _nonempty,
            "session_field": _nonempty,
            "user_id": _nonempty,
            "user_email": _nonempty,
            "phone_num": _nonempty,
            "attr": _field_or_table,
            "flow_id": _field_or_int,
            "max_risk_level": _integer(0),
            "blocking_actions": _strings,
        },
        ("secret", "scene"),
        ("secret",),
    ),
    "aliyun": ProviderType(
        AliyunCaptcha,
        {
            **_REMOTE,
            "access_key_id": _credential,
            "access_key_secret": _secret,
            "scene_id": _nonempty,
            "region": _one_of("cn", "sgp"),
            "field": _nonempty,
        },
        ("access_key_id", "access_key_secret"),
        ("access_key_id", "access_key_secret"),
    ),
    "recaptcha": ProviderType(
        ReCaptcha,
        {**_SITEVERIFY, "min_score": _number(0, maximum=1), "action": _strings},
        ("secret",),
        ("secret",),
    ),
    "hcaptcha": ProviderType(
        HCaptcha,
        {**_SITEVERIFY, "sitekey": _credential, "max_score": _number(0, maximum=1)},
        ("secret",),
        ("secret",),
    ),
    "turnstile": ProviderType(
        Turnstile, {**_SITEVERIFY, "action": _strings}, ("secret",), ("secret",)
    ),
    "proof_of_work": ProviderType(
        ProofOfWork,
        {
            "secret": _secret,
            "max_number": _integer(1),
            "expires": _number(1),
            "challenge_path": _nonempty,
            "field": _nonempty,
        },
        ("secret",),
        ("secret",),
    ),
}

_LIMITS: dict[str, Check] = {
    "max_body_size": _integer(0),
    "body_timeout": _number(0, strict=True),
    "fallback_limit": _integer(1),
}
#: Parse limits (``[limits.parse]``): key -> what it bounds. Passed as one mapping,
#: ``parse_limits={...}``, under these names.
PARSE_LIMITS: dict[str, str] = {
    "max_fields": "fields per source (form, query, X-Captcha) and non-file multipart parts",
    "max_files": "file parts in a multipart body",
    "max_json_depth": "nesting of a JSON body",
    "max_json_items": "values of a JSON body (its , [ and { counted)",
    "max_header_fields": "header lines of a protected request (431 above)",
    "max_header_bytes": "bytes of a protected request's header names and values (431 above)",
}
_STATE: dict[str, Check] = {
    "url": _credential,  # may carry a password: env:/file: welcome, a plain URL allowed
    "prefix": _nonempty,
    "timeout": _number(0, strict=True),
}
_CLEARANCE: dict[str, Check] = {"secret": _secrets, "ttl": _number(1)}
_CLIENT_IP: dict[str, Check] = {"trusted_hops": _integer(0)}
_METRICS: dict[str, Check] = {"prometheus": _boolean}
_RULE: dict[str, Check] = {
    "pattern": _nonempty,
    "regex": _nonempty,
    "methods": _string_array,
    "provider": _nonempty,
    "fail_open": _boolean,
    "clearance": _boolean,
}
_TOP: dict[str, Check] = {
    "environment": _one_of(*ENVIRONMENTS),
    "provider": _nonempty,
}
_TABLES = ("limits", "client_ip", "state", "clearance", "metrics", "providers", "rules")


# What the file builds.


@dataclass(frozen=True)
class ProviderSpec:
    """One ``[providers.NAME]`` table: the name, its type, and what it built."""

    name: str
    type: str
    provider: Provider
    line: int | None
    #: The values given (secrets resolved), for check and the probe. Never printed.
    options: Mapping[str, Any] = field(repr=False)


@dataclass(frozen=True)
class RuleSpec:
    """One ``[[rules]]`` entry: the built ``Rule``, where it is, and the options ``Rule``
    does not take yet (``clearance``)."""

    index: int
    rule: Rule
    line: int | None
    provider: str
    options: Mapping[str, Any]

    @property
    def label(self) -> str:
        pattern = self.rule.pattern
        return pattern if isinstance(pattern, str) else f"regex {pattern.pattern!r}"


@dataclass(frozen=True)
class StateSpec:
    """``[state]``: built into ``captcha_guard.redis.RedisState.from_url`` on ``build()``
    (the redis extra is imported only then)."""

    url: str = field(repr=False)
    prefix: str | None = None
    timeout: float | None = None
    line: int | None = None

    def build(self) -> Any:
        from .redis import RedisState  # type: ignore[import-not-found, unused-ignore]

        kwargs: dict[str, Any] = {}
        if self.prefix is not None:
            kwargs["prefix"] = self.prefix
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        return RedisState.from_url(self.url, **kwargs)


@dataclass(frozen=True)
class ClearanceSpec:
    """``[clearance]``: ``Clearance(secret, ttl=...)``; several secrets (newest first) rotate,
    the newest signs. Imported only on ``build()``."""

    secrets: tuple[str, ...] = field(repr=False)
    ttl: float | None = None

    def build(self) -> Any:
        from . import Clearance  # type: ignore[attr-defined, unused-ignore]

        secret: Any = self.secrets[0] if len(self.secrets) == 1 else list(self.secrets)
        kwargs: dict[str, Any] = {} if self.ttl is None else {"ttl": self.ttl}
        return Clearance(secret, **kwargs)


@dataclass(frozen=True)
class Config:
    """A loaded configuration file."""

    path: Path
    environment: str
    default_provider: str | None
    providers: Mapping[str, ProviderSpec]
    rules: tuple[RuleSpec, ...]
    max_body_size: int | None = None
    body_timeout: float | None = None
    fallback_limit: int | None = None
    parse_limits: Mapping[str, int] | None = None
    client_ip: int | None = None
    state: StateSpec | None = None
    clearance: ClearanceSpec | None = None
    prometheus: bool = False
    warnings: tuple[Problem, ...] = ()

    def options(self) -> dict[str, Any]:
        """Every door option the file sets, built (``state`` and ``clearance`` are imported
        and made here), keyed as in ``DOOR_OPTIONS``."""
        out: dict[str, Any] = {
            "rules": [spec.rule for spec in self.rules],
            "providers": {name: spec.provider for name, spec in self.providers.items()},
        }
        if self.default_provider is not None:
            out["provider"] = self.providers[self.default_provider].provider
        for name in ("max_body_size", "body_timeout", "fallback_limit", "client_ip"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.parse_limits:
            from ._fields import ParseLimits

            out["parse_limits"] = ParseLimits(**self.parse_limits)
        if self.state is not None and DOOR_OPTIONS["state"]:
            out["state"] = self.state.build()
        if self.clearance is not None and DOOR_OPTIONS["clearance"]:
            out["clearance"] = self.clearance.build()
        if self.prometheus and DOOR_OPTIONS["event_hooks"]:
            from .prometheus import event_hooks

            out["event_hooks"] = event_hooks()
        return out

    def pending(self) -> list[str]:
        """Options the file sets that the doors do not take yet (dropped by door_kwargs)."""
        given = {
            "body_timeout": self.body_timeout is not None,
            "parse_limits": bool(self.parse_limits),
            "client_ip": self.client_ip is not None,
            "state": self.state is not None,
            "clearance": self.clearance is not None,
            "event_hooks": self.prometheus,
        }
        rule_given = {
            name for spec in self.rules for name in spec.options if not RULE_OPTIONS[name]
        }
        return [n for n, set_ in given.items() if set_ and not DOOR_OPTIONS[n]] + [
            f"rules.{n}" for n in sorted(rule_given)
        ]

    def door_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``CaptchaGuard`` / ``WSGICaptchaGuard``."""
        return {k: v for k, v in self.options().items() if DOOR_OPTIONS.get(k, False)}


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
    ctx = _Context(name, _Locator(text), os.environ if environ is None else environ, where.parent)
    config = _build(ctx, document, where)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    assert config is not None
    return config


def _build(ctx: _Context, document: dict[str, Any], where: Path) -> Config | None:
    top = _table(ctx, (), document, _TOP, skip=_TABLES)
    environment = top.get("environment", "production")
    limits = _table(ctx, ("limits",), document.get("limits", {}), _LIMITS, skip=("parse",))
    parse_limits = _parse_limits(ctx, document.get("limits", {}))
    client_ip = _table(ctx, ("client_ip",), document.get("client_ip", {}), _CLIENT_IP)
    metrics = _table(ctx, ("metrics",), document.get("metrics", {}), _METRICS)
    state = _state(ctx, document)
    clearance = _clearance(ctx, document)
    providers = _providers(ctx, document.get("providers", {}))
    default = _default_provider(ctx, top.get("provider"), document)
    declared = document.get("providers", {})
    declared_names = frozenset(declared) if isinstance(declared, dict) else frozenset()
    rules = _rules(
        ctx, document.get("rules", []), providers, declared_names, default, clearance is not None
    )
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
        prometheus=metrics.get("prometheus", False),
    )
    from ._checks import findings

    findings(config, ctx)
    return dataclasses.replace(config, warnings=tuple(ctx.warnings))


def _parse_limits(ctx: _Context, limits: Any) -> dict[str, int]:
    if not isinstance(limits, dict) or "parse" not in limits:
        return {}
    schema = dict.fromkeys(PARSE_LIMITS, _integer(1))
    return _table(ctx, ("limits", "parse"), limits["parse"], schema)


def _state(ctx: _Context, document: dict[str, Any]) -> StateSpec | None:
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
    return StateSpec(url, values.get("prefix"), values.get("timeout"), ctx.locator.line(("state",)))


def _clearance(ctx: _Context, document: dict[str, Any]) -> ClearanceSpec | None:
    if "clearance" not in document:
        return None
    values = _table(ctx, ("clearance",), document["clearance"], _CLEARANCE, required=("secret",))
    if "secret" not in values:
        return None
    return ClearanceSpec(tuple(values["secret"]), values.get("ttl"))


def _providers(ctx: _Context, table: Any) -> dict[str, ProviderSpec]:
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


def _check_breaker(ctx: _Context, path: Key, value: Any) -> dict[str, Any]:
    # Its errors are recorded one by one; the provider is then not built (see _providers).
    return _table(ctx, path, value, _BREAKER)


def _construct(
    ctx: _Context, path: Key, spec: ProviderType, values: dict[str, Any]
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


def _default_provider(ctx: _Context, chosen: str | None, document: dict[str, Any]) -> str | None:
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
    ctx: _Context,
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
        options = {k: values[k] for k in RULE_OPTIONS if k in values and k != "provider"}
        out.append(RuleSpec(index, rule, ctx.locator.line(path), name, options))
    return out


def _make_rule(ctx: _Context, path: Key, values: dict[str, Any], provider: str) -> Rule | None:
    kwargs: dict[str, Any] = {"provider": provider}
    if "methods" in values:
        kwargs["methods"] = values["methods"]
    if "fail_open" in values:
        kwargs["fail_open"] = values["fail_open"]
    for name, ready in RULE_OPTIONS.items():
        if ready and name in values and name not in kwargs:
            kwargs[name] = values[name]
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


__all__ = [
    "DOOR_OPTIONS",
    "PARSE_LIMITS",
    "PROVIDER_TYPES",
    "RULE_OPTIONS",
    "ClearanceSpec",
    "Config",
    "ConfigError",
    "Problem",
    "ProviderSpec",
    "RuleSpec",
    "StateSpec",
    "door_from_file",
    "load",
]


def door_from_file(
    door: Callable[..., T], app: Any, path: str | os.PathLike[str], overrides: Mapping[str, Any]
) -> T:
    """What ``from_file`` on both doors does: load, log the warnings, build the door with the
    file's options and then the caller's ``overrides``."""
    config = load(path)
    for warning in config.warnings:
        logger.warning("captcha_guard config: %s [%s]", warning, warning.code)
    pending = [name for name in config.pending() if name not in overrides]
    if pending:
        logger.warning(
            "captcha_guard config: %s sets options this version does not apply yet: %s",
            path,
            ", ".join(pending),
        )
    return door(app, **{**config.door_kwargs(), **overrides})
