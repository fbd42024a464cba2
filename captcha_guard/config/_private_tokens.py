"""``[private_tokens]``: Private Access Tokens from the file (docs/private-access-tokens.md).

One block: the table's schema, the spec it builds, and the checks that tie it to
``[clearance]`` and to rules that set ``private_tokens = true``.

    [private_tokens]
    secret = "env:PRIVATE_TOKEN_KEY"
    origin = "shop.example"            # or an array of names
    issuers = ["issuer.example"]
    # fetch = true, window = 300, grease = 0.1, path = "/captcha-guard/private-token"
    [private_tokens.keys]              # optional pins, per issuer
    "issuer.example" = ["MIIBUjA9..."]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._locate import Key
from ._values import (
    Check,
    Context,
    Invalid,
    _boolean,
    _nonempty,
    _number,
    _secret,
    _strings,
    _table,
)

TABLE = "private_tokens"
SCHEMA: dict[str, Check] = {
    "secret": _secret,
    "origin": _strings,
    "issuers": _strings,
    "fetch": _boolean,
    "window": _number(10, maximum=86_400),
    "grease": _number(0, maximum=0.99),
    "path": _nonempty,
}


@dataclass(frozen=True)
class PrivateTokensSpec:
    """``PrivateTokens(secret, issuers, origin=...)`` with the pinned keys of
    ``[private_tokens.keys]``. Built (and ``cryptography`` used) on ``build()``; issuers and
    keys are checked when the file is read."""

    secret: str = field(repr=False)
    origin: tuple[str, ...]
    issuers: tuple[Any, ...]
    options: Mapping[str, Any]

    def build(self) -> Any:
        from .._privacy_pass import PrivateTokens

        return PrivateTokens(self.secret, self.issuers, origin=list(self.origin), **self.options)


def private_tokens(
    ctx: Context, document: dict[str, Any], has_clearance: bool
) -> PrivateTokensSpec | None:
    """The ``[private_tokens]`` table, checked; None when absent or wrong."""
    if TABLE not in document:
        return None
    from .._privacy_pass import TokenIssuer
    from .._privacy_pass._rsa import INSTALL_HINT, available

    path: Key = (TABLE,)
    table = document[TABLE]
    errors_before = len(ctx.problems)
    required = ("secret", "origin", "issuers")
    values = _table(ctx, path, table, SCHEMA, required=required, skip=("keys",))
    if not has_clearance:
        ctx.error(path, "[private_tokens] needs a [clearance] table: a token mints a clearance")
    if not available():
        ctx.error(path, INSTALL_HINT)
    pinned = table.get("keys", {}) if isinstance(table, dict) else {}
    if not isinstance(pinned, dict):
        ctx.error((*path, "keys"), "must be a table: issuer name = [keys]")
        pinned = {}
    names = values.get("issuers", [])
    issuers = []
    for index, name in enumerate(names):
        try:
            keys = _strings(ctx, (*path, "keys", name), pinned[name]) if name in pinned else []
            issuers.append(TokenIssuer(name, keys=keys, fetch=values.get("fetch", True)))
        except Invalid as invalid:
            ctx.error(invalid.path, invalid.message)
        except (TypeError, ValueError) as exc:
            ctx.error((*path, "issuers", index), str(exc))
    for name in pinned:
        if name not in names:
            ctx.error((*path, "keys", name), "pins keys of an issuer not in 'issuers'")
    if len(ctx.problems) > errors_before:
        return None
    options: dict[str, Any] = {k: values[k] for k in ("window", "grease", "path") if k in values}
    return PrivateTokensSpec(values["secret"], tuple(values["origin"]), tuple(issuers), options)


def check_rules(ctx: Context, entries: Any, has_private_tokens: bool) -> None:
    """A rule that sets ``private_tokens = true`` in a file without the table."""
    if has_private_tokens or not isinstance(entries, list):
        return
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get(TABLE) is True:
            message = "private_tokens = true needs a [private_tokens] table"
            ctx.error(("rules", index, TABLE), message)


__all__ = ["SCHEMA", "TABLE", "PrivateTokensSpec", "check_rules", "private_tokens"]
