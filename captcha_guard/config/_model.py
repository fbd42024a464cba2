"""What a configuration file builds: ``Config``, with its providers and rules as the file
gave them (for ``captcha-guard check`` and ``explain``) and the door options they make."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._rules import Rule
from ..providers import Provider
from ._private_tokens import PrivateTokensSpec
from ._values import Problem


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
    """One ``[[rules]]`` entry: the built ``Rule``, where it is, and the rule options the
    file set (``methods``, ``fail_open``, ``clearance``)."""

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
    #: ``in_outage``, ``clock_skew``, ``max_entries``: passed on as written.
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        from ..redis import RedisState  # type: ignore[import-not-found, unused-ignore]

        kwargs: dict[str, Any] = dict(self.options)
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
    secure: bool | None = None

    def build(self) -> Any:
        from .. import Clearance  # type: ignore[attr-defined, unused-ignore]

        secret: Any = self.secrets[0] if len(self.secrets) == 1 else list(self.secrets)
        kwargs: dict[str, Any] = {} if self.ttl is None else {"ttl": self.ttl}
        if self.secure is not None:
            kwargs["secure"] = self.secure
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
    private_tokens: PrivateTokensSpec | None = None
    prometheus: bool = False
    warnings: tuple[Problem, ...] = ()

    def door_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for ``CaptchaGuard`` / ``WSGICaptchaGuard``: every door
        option the file sets, built (``state``, ``clearance`` and the metrics hooks are
        imported and made here, so their extras are needed only by a file that sets them)."""
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
            from .._fields import ParseLimits

            out["parse_limits"] = ParseLimits(**self.parse_limits)
        if self.state is not None:
            out["state"] = self.state.build()
        if self.clearance is not None:
            out["clearance"] = self.clearance.build()
        if self.private_tokens is not None:
            out["private_tokens"] = self.private_tokens.build()
        if self.prometheus:
            from ..prometheus import event_hooks

            out["event_hooks"] = event_hooks()
        return out


__all__ = ["ClearanceSpec", "Config", "ProviderSpec", "RuleSpec", "StateSpec"]
