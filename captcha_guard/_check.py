"""Checking constructor arguments: counts and durations, with one wording everywhere.

A ``bool`` is an ``int`` to Python, so ``max_entries=True`` would pass a bare ``isinstance``
check and mean 1: every count here refuses bools. The error type stays the caller's choice
(some arguments have always raised ``TypeError`` for a wrong type, and tests and users catch
it); the wording is this module's, and always names the argument (and its owner, if given).
"""

from __future__ import annotations

from typing import NoReturn


def _fail(error: type[Exception], owner: str | None, text: str) -> NoReturn:
    raise error(f"{owner}: {text}" if owner else text)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def int_arg(
    value: object,
    name: str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    owner: str | None = None,
    wrong_type: type[Exception] = ValueError,
) -> int:
    """``value`` if it is an int (not a bool) from ``minimum`` to ``maximum``; else an error
    naming ``name``: ``wrong_type`` for a non-int, ``ValueError`` for one out of range."""
    span = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    if not _is_int(value):
        _fail(wrong_type, owner, f"{name} must be an integer {span}, not {type(value).__name__}")
    assert isinstance(value, int)
    if value < minimum or (maximum is not None and value > maximum):
        _fail(ValueError, owner, f"{name} must be an integer {span}, not {value}")
    return value


def seconds_arg(
    value: object,
    name: str,
    *,
    minimum: float = 0.0,
    maximum: float | None = None,
    inclusive: bool = False,
    owner: str | None = None,
    wrong_type: type[Exception] = ValueError,
    unit: str = "seconds",
) -> float:
    """``value`` as a float if it is a number (not a bool) above ``minimum`` (or equal to it,
    when ``inclusive``) and at most ``maximum``; else an error naming ``name``."""
    if maximum is not None:
        span = f"from {_num(minimum)} to {_num(maximum)}"
    else:
        span = f"{'>=' if inclusive else '>'} {_num(minimum)}"
    what = (
        f"{name} must be a number of {unit} {span}" if unit else f"{name} must be a number {span}"
    )
    if not _is_number(value):
        _fail(wrong_type, owner, f"{what}, not {type(value).__name__}")
    assert isinstance(value, int | float)
    low = value >= minimum if inclusive or maximum is not None else value > minimum
    # ``not`` on the comparisons: NaN fails both and is refused.
    if not low or (maximum is not None and not value <= maximum):
        _fail(ValueError, owner, f"{what}, not {value}")
    return float(value)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


__all__ = ["int_arg", "seconds_arg"]
