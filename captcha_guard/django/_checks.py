"""``manage.py check``: the checks of ``captcha-guard check`` on ``settings.CAPTCHA_GUARD``.

A TOML path is loaded and checked exactly as ``captcha-guard check FILE`` checks it (the same
errors, the same warnings with the same codes: silence one with ``SILENCED_SYSTEM_CHECKS =
["captcha_guard.<code>"]`` as ``--allow <code>`` does). A dict of objects is built, and the
warnings that apply to built objects are given (``unreachable-rule``, ``fail-open-replay``,
``fail-open-budget``).
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from ._core import SETTING

ERROR_ID = "captcha_guard.config"


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    configured = getattr(settings, SETTING, None)
    if configured is None:
        return [
            Warning(
                f"settings.{SETTING} is not set: no provider, so no view can be protected",
                id="captcha_guard.no-config",
            )
        ]
    if isinstance(configured, (str, os.PathLike)):
        return _file(os.fspath(configured))
    return _objects()


def _file(path: str) -> list[CheckMessage]:
    from ..config import ConfigError, load

    try:
        config = load(path)
    except ConfigError as error:
        return [Error(str(problem), id=ERROR_ID) for problem in error.problems]
    return [Warning(str(w), id=f"captcha_guard.{w.code}") for w in config.warnings]


def _objects() -> list[CheckMessage]:
    from ..config._checks import shadowed_methods
    from ._core import build

    try:
        core = build()
    except (TypeError, ValueError) as exc:
        return [Error(f"settings.{SETTING}: {exc}", id=ERROR_ID)]
    try:
        return list(_warnings(core, shadowed_methods))
    finally:
        core.close()


def _warnings(core: Any, shadowed_methods: Any) -> Any:
    gate = core.gate

    class Spec:  # what shadowed_methods reads of a [[rules]] entry
        def __init__(self, index: int, rule: Any) -> None:
            self.index, self.rule = index, rule

    specs = [Spec(i, route.rule) for i, route in enumerate(gate.routes)]
    for position, spec in enumerate(specs):
        shadowed = shadowed_methods(spec, specs[:position])
        if shadowed:
            by = ", ".join(sorted({f"rules[{i + 1}]" for i in shadowed.values()}))
            yield Warning(
                f"settings.{SETTING} rules[{position + 1}] is never reached for "
                f"{', '.join(sorted(shadowed))}: {by} match those first (first match wins)",
                id="captcha_guard.unreachable-rule",
            )
    providers = [p for p in (gate.default_provider, *gate.named_providers.values()) if p]
    if not any(p.remote for p in providers):
        return
    if not getattr(core.state, "shared", False):
        yield Warning(
            f"settings.{SETTING}: views and rules fail open by default, and with no state= "
            "the fallback replay guard is each process's own memory: under N workers a "
            "token let through in fallback passes up to N times (set state=, or fail_open=False)",
            id="captcha_guard.fail-open-replay",
        )
    if gate.fallback_limit is None:
        yield Warning(
            f"settings.{SETTING}: views and rules fail open with no fallback_limit=: during "
            "an outage made-up fields pass as fast as a client sends them",
            id="captcha_guard.fail-open-budget",
        )


__all__ = ["check_settings"]
