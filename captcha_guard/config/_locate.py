"""Where a key is in a TOML text: ``tomllib`` gives no positions, so a problem's line is
found in the source itself (table headers, ``[[arrays]]`` by their index, dotted keys)."""

from __future__ import annotations

import re
from collections.abc import Mapping

Key = tuple[str | int, ...]

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


class Locator:
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


__all__ = ["Key", "Locator"]
