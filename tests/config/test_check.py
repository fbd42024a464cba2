"""The argument checks: one wording, bools refused, the caller's error type for a wrong type."""

from __future__ import annotations

import math

import pytest

from captcha_guard._check import int_arg, seconds_arg


def test_int_arg_takes_ints_in_range_and_refuses_bools() -> None:
    assert int_arg(1, "n") == 1
    assert int_arg(0, "n", minimum=0, maximum=3) == 0
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, not bool$"):
        int_arg(True, "n")
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1, not 0$"):
        int_arg(0, "n")
    with pytest.raises(ValueError, match=r"^X: n must be an integer from 0 to 3, not 4$"):
        int_arg(4, "n", minimum=0, maximum=3, owner="X")
    with pytest.raises(TypeError, match="not str"):
        int_arg("1", "n", wrong_type=TypeError)
    with pytest.raises(ValueError, match="not float"):
        int_arg(1.0, "n")


def test_seconds_arg_bounds_and_nan() -> None:
    assert seconds_arg(2, "t") == 2.0
    assert seconds_arg(0, "t", inclusive=True) == 0.0
    assert seconds_arg(10, "w", minimum=10, maximum=86_400) == 10.0
    with pytest.raises(ValueError, match=r"^t must be a number of seconds > 0, not 0$"):
        seconds_arg(0, "t")
    with pytest.raises(ValueError, match="not nan"):
        seconds_arg(math.nan, "t")
    with pytest.raises(ValueError, match=r"^s: p must be a number from 0 to 1, not 1.5$"):
        seconds_arg(1.5, "p", maximum=1, owner="s", unit="")
    with pytest.raises(TypeError, match="not bool"):
        seconds_arg(False, "t", wrong_type=TypeError)
    with pytest.raises(ValueError, match="not NoneType"):
        seconds_arg(None, "t")
