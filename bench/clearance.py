"""What a clearance costs the gate per request: reading a valid cookie, issuing one.

    python -m bench.clearance

Pure CPU (no state round trip: the operations a read yields are the door's to run). One
process, best of 5 runs of N calls each, in CPU time (the machine is shared).
"""

from __future__ import annotations

import time
import timeit
from collections.abc import Generator
from typing import Any, TypeVar

from captcha_guard import Clearance
from captcha_guard._clearance import ClearanceContext
from captcha_guard._state import StateOp

T = TypeVar("T")

N = 20_000
SECRET = "bench-clearance-secret-0123456789abcdef"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
OTHER_COOKIES = (
    "_ga=GA1.1.123456789.1700000000; theme=dark; csrftoken=abcdefghijklmnopqrstuvwxyz012345"
)


def run(flow: Generator[StateOp, Any, T]) -> T:
    """Drive a clearance flow as a door would, against a state that always agrees: the
    generation is 0, a use is spent."""
    try:
        op = next(flow)
        while True:
            op = flow.send(True if op.name == "spend" else 0)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def main() -> None:
    clearance = Clearance(SECRET)
    capped = Clearance(SECRET, max_uses=10**9)
    ctx = ClearanceContext("203.0.113.7", UA, True, "shop.example", 1_800_000_000.0)
    scope = "rule:POST:/comments"
    header = run(clearance.issue_flow(ctx, scope))  # generation 0, cached
    run(capped.issue_flow(ctx, scope))
    assert header is not None
    cookie = OTHER_COOKIES + "; " + header.split(";", 1)[0]
    assert run(clearance.check_flow(cookie, ctx, scope)).cleared
    cases = {
        "read, valid cookie (generation cached)": lambda: run(
            clearance.check_flow(cookie, ctx, scope)
        ),
        "read, valid cookie, max_uses (spend yielded)": lambda: run(
            capped.check_flow(cookie, ctx, scope)
        ),
        "read, no clearance cookie among others": lambda: run(
            clearance.check_flow(OTHER_COOKIES, ctx, scope)
        ),
        "issue (Set-Cookie value)": lambda: run(clearance.issue_flow(ctx, scope)),
    }
    for name, call in cases.items():
        best = min(timeit.repeat(call, timer=time.process_time, number=N, repeat=5)) / N
        print(f"{name:45s} {best * 1e6:6.2f} µs")


if __name__ == "__main__":
    main()
