"""What ``captcha-guard check`` warns about in a configuration that loads: things that work
but should not be shipped. Each finding has a stable code (``captcha-guard check --allow``).

- ``test-key``: a vendor's public test key or documentation sample in a production config.
- ``unreachable-rule``: a rule that an earlier rule always matches first (first match wins).
- ``fail-open-replay``: a rule fails open but the fallback replay guard is in each process's
  memory only: under several workers a token let through in fallback passes once per worker.
- ``fail-open-budget``: a rule fails open with no ``fallback_limit``: during an outage, made-up
  fields pass as fast as a client can send them (each once).
- ``plain-http``: a vendor endpoint over ``http://`` to another host: the secret and the
  user's token travel unencrypted (recorded by the schema's endpoint check).
- ``no-rules``: nothing is protected. ``unused-provider``: a provider no rule uses (a typo in a
  rule's ``provider`` usually shows as an error; this is the other half).
"""

from __future__ import annotations

import re

from ._model import Config, RuleSpec
from ._schema import TEST_KEYS
from ._values import Context

_PARAM = re.compile(r"{([^{}]*)}")

#: Values to put in each convertor's place when sampling the paths a rule matches: varied in
#: length and kind, so that an earlier rule covering all of them covers the rule.
_SAMPLES: dict[str, tuple[str, ...]] = {
    "str": ("x", "a-b_c", "Z9"),
    "path": ("", "a", "a/b/c"),
    "int": ("0", "7", "123456"),
    "float": ("1.5", "0", "10.25"),
    "uuid": (
        "123e4567-e89b-12d3-a456-426614174000",
        "00000000000000000000000000000000",
        "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
    ),
}


def sample_paths(pattern: str) -> list[str] | None:
    """Paths the route pattern matches, one per sample row; None for a custom convertor."""
    params = [m.group(1).partition(":")[2] or "str" for m in _PARAM.finditer(pattern)]
    if any(p not in _SAMPLES for p in params):
        return None
    rows = 3 if params else 1
    paths: list[str] = []
    for row in range(rows):
        pieces = _PARAM.split(pattern)  # literal, param, literal, param, ..., literal
        samples = [_SAMPLES[p][row] for p in params]
        path = "".join(piece if i % 2 == 0 else samples[i // 2] for i, piece in enumerate(pieces))
        paths.append(path)
        paths.append(path.rstrip("/") + "/" if path != "/" else path)
    return paths


def shadowed_methods(spec: RuleSpec, earlier: list[RuleSpec]) -> dict[str, int] | None:
    """For each method of ``spec``'s rule, the index of an earlier rule that matches every
    sampled path first; None when the rule's paths cannot be sampled (a regex)."""
    rule = spec.rule
    if not isinstance(rule.pattern, str):
        return None
    paths = sample_paths(rule.pattern)
    if paths is None:
        return None
    out: dict[str, int] = {}
    for method in sorted(rule.methods):
        covering: int | None = None
        for path in paths:
            first = _first(earlier, method, path)
            if first is None:
                covering = None
                break
            covering = first if covering is None else min(covering, first)
        if covering is not None:
            out[method] = covering
    return out


def _first(rules: list[RuleSpec], method: str, path: str) -> int | None:
    for spec in rules:
        if spec.rule.matches(method, path):
            return spec.index
    return None


def findings(config: Config, ctx: Context) -> None:
    """Record every warning about ``config`` in ``ctx``."""
    _test_keys(config, ctx)
    _unused(config, ctx)
    _unreachable(config, ctx)
    _fail_open(config, ctx)


def _unused(config: Config, ctx: Context) -> None:
    if not config.rules:
        ctx.warn(("rules",), "no-rules", "no [[rules]]: no request is protected")
        return
    used = {spec.provider for spec in config.rules}
    for name in config.providers:
        if name not in used:
            ctx.warn(("providers", name), "unused-provider", "no rule uses this provider")


def _test_keys(config: Config, ctx: Context) -> None:
    if config.environment != "production":
        return
    for path, value in ctx.secrets:
        what = TEST_KEYS.get(value)
        if what is not None:
            ctx.warn(path, "test-key", f"is {what}, in a production config")


def _unreachable(config: Config, ctx: Context) -> None:
    for position, spec in enumerate(config.rules):
        shadowed = shadowed_methods(spec, list(config.rules[:position]))
        if not shadowed:
            continue
        by = sorted({f"rules[{i + 1}]" for i in shadowed.values()})
        methods = ", ".join(sorted(shadowed))
        if set(shadowed) == set(spec.rule.methods):
            message = f"is never reached: {' and '.join(by)} match every request it would"
        else:
            message = f"is never reached for {methods}: {' and '.join(by)} match those first"
        ctx.warn(("rules", spec.index), "unreachable-rule", message + " (first match wins)")


def _fail_open(config: Config, ctx: Context) -> None:
    open_rules = [
        spec
        for spec in config.rules
        if spec.rule.fail_open is not False and config.providers[spec.provider].provider.remote
    ]
    if not open_rules:
        return
    first = ("rules", open_rules[0].index)
    names = ", ".join(f"rules[{s.index + 1}]" for s in open_rules)
    if config.state is None:
        ctx.warn(
            first,
            "fail-open-replay",
            f"{names} fail open, and with no [state] the fallback replay guard is each "
            "process's own memory: under N workers a token let through in fallback passes "
            "up to N times (set [state] url, or fail_open = false)",
        )
    if config.fallback_limit is None:
        ctx.warn(
            first,
            "fail-open-budget",
            f"{names} fail open with no limits.fallback_limit: during an outage made-up "
            "fields pass as fast as a client sends them",
        )
