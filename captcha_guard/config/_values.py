"""Checking one value of a configuration file: the problems it records, the checks of the
schema (``Check``), and secrets, which never sit in the file by accident.

A secret is ``"env:NAME"`` (read from the environment when the file is loaded), ``"file:/path"``
(a mounted secret, stripped of its final newline) or, when someone decided so,
``"literal:the-value"``. Anything else is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._locate import Key, Locator

SECRET_PREFIXES = ("env:", "file:", "literal:")

#: Hosts a plain-http endpoint may name without a warning: the traffic never leaves the host.
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


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


class Invalid(Exception):
    def __init__(self, path: Key, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


@dataclass
class Context:
    file: str
    locator: Locator
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


Check = Callable[[Context, Key, Any], Any]


def _string(ctx: Context, path: Key, value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid(path, f"must be a string, not {_type_name(value)}")
    return value


def _nonempty(ctx: Context, path: Key, value: Any) -> str:
    text = _string(ctx, path, value)
    if not text:
        raise Invalid(path, "must not be empty")
    return text


def _boolean(ctx: Context, path: Key, value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(path, f"must be true or false, not {_type_name(value)}")
    return value


def _integer(minimum: int) -> Check:
    def check(ctx: Context, path: Key, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(path, f"must be an integer, not {_type_name(value)}")
        if value < minimum:
            raise Invalid(path, f"must be >= {minimum}")
        return value

    return check


def _number(minimum: float, *, strict: bool = False, maximum: float | None = None) -> Check:
    def check(ctx: Context, path: Key, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(path, f"must be a number, not {_type_name(value)}")
        if (value <= minimum) if strict else (value < minimum):
            raise Invalid(path, f"must be {'>' if strict else '>='} {minimum:g}")
        if maximum is not None and value > maximum:
            raise Invalid(path, f"must be <= {maximum:g}")
        return float(value)

    return check


def _strings(ctx: Context, path: Key, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise Invalid(path, "must be a string or a non-empty array of strings")
    for index, item in enumerate(value):
        _nonempty(ctx, (*path, index), item)
    return list(value)


def _string_array(ctx: Context, path: Key, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise Invalid(path, f"must be an array of strings, not {_type_name(value)}")
    return _strings(ctx, path, value)


def _one_of(*choices: str) -> Check:
    def check(ctx: Context, path: Key, value: Any) -> str:
        text = _string(ctx, path, value)
        if text not in choices:
            raise Invalid(path, f"must be one of {', '.join(choices)}, not {text!r}")
        return text

    return check


def _reference(ctx: Context, path: Key, value: Any, *, secret: bool) -> str:
    text = _string(ctx, path, value)
    if text.startswith("env:"):
        name = text[4:]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise Invalid(path, f"env:{shown_name(name)} does not name an environment variable")
        resolved = ctx.environ.get(name)
        if not resolved:
            raise Invalid(path, f"environment variable {shown_name(name)} is not set (or empty)")
    elif text.startswith("file:"):
        where = Path(text[5:])
        where = where if where.is_absolute() else ctx.base / where
        try:
            resolved = where.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise Invalid(path, f"cannot read {where}: {type(exc).__name__}") from None
        if not resolved:
            raise Invalid(path, f"{where} is empty")
    elif text.startswith("literal:"):
        resolved = text[8:]
    elif secret:
        raise Invalid(
            path,
            'a secret must be "env:NAME" or "file:/path"; a secret written in the file '
            'itself must be marked "literal:..."',
        )
    else:
        resolved = text
    if not resolved:
        raise Invalid(path, "must not be empty")
    if secret:
        ctx.secrets.append((path, resolved))
    return resolved


def shown_name(name: str) -> str:
    """An environment variable's name as a message may print it: a value that looks like a
    secret pasted after ``env:`` (long, digits among letters, no ``_`` between words, or
    mixed case) is shown as its length and a short fingerprint, never whole."""
    looks_secret = (
        len(name) >= 16
        and any(c.isdigit() for c in name)
        and ("_" not in name or (name != name.upper() and name != name.lower()))
    ) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name)
    if not looks_secret:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return (
        f"<{len(name)} characters, sha256 {digest}: a secret pasted in place of a variable's "
        "name? put it in the environment and name the variable here>"
    )


def _endpoint(ctx: Context, path: Key, value: Any) -> str:
    """A vendor's URL. Over plain ``http://`` the secret travels in clear: flagged
    (``plain-http``) unless it goes to this host (an emulator, a sidecar)."""
    url = _nonempty(ctx, path, value)
    parts = urlsplit(url)
    try:
        host = parts.hostname
    except ValueError:
        host = None
    if parts.scheme.lower() == "http" and host not in _LOOPBACK:
        ctx.warn(
            path,
            "plain-http",
            f"the endpoint is plain http to {host}: the secret and the user's token travel "
            "unencrypted (use https://)",
        )
    return url


def _secret(ctx: Context, path: Key, value: Any) -> str:
    return _reference(ctx, path, value, secret=True)


def _credential(ctx: Context, path: Key, value: Any) -> str:
    """An identifier that may come from the environment but may also be written plainly."""
    resolved = _reference(ctx, path, value, secret=False)
    ctx.secrets.append((path, resolved))
    return resolved


def _secrets(ctx: Context, path: Key, value: Any) -> list[str]:
    if isinstance(value, str):
        return [_secret(ctx, path, value)]
    if not isinstance(value, list) or not value:
        raise Invalid(path, "must be a secret or a non-empty array of secrets (newest first)")
    return [_secret(ctx, (*path, index), item) for index, item in enumerate(value)]


def _field_or_table(ctx: Context, path: Key, value: Any) -> str | dict[str, Any]:
    if isinstance(value, dict):
        return value
    return _nonempty(ctx, path, value)


def _field_or_int(ctx: Context, path: Key, value: Any) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        return _integer(0)(ctx, path, value)  # type: ignore[no-any-return]
    return _nonempty(ctx, path, value)


def _table(
    ctx: Context,
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
        except Invalid as invalid:
            ctx.error(invalid.path, invalid.message)
    for name in required:
        if name not in value:
            ctx.error(path, f"missing required key {name!r}")
    return out


__all__ = [
    "SECRET_PREFIXES",
    "Check",
    "ConfigError",
    "Context",
    "Invalid",
    "Problem",
    "key_text",
]
