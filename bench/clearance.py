"""What a clearance costs the gate per request: reading a valid cookie, issuing one.

    python -m bench.clearance

Pure CPU (no state round trip: the operations a read yields are the door's to run). One
process, best of 5 runs of N calls each, in CPU time (the machine is shared).
"""

from __future__ import annotations

import time
import timeit

from captcha_guard import Clearance
from captcha_guard._clearance import ClearanceContext

N = 20_000
SECRET = "bench-clearance-secret-0123456789abcdef"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
OTHER_COOKIES = (
    "_ga=GA1.1.123456789.1700000000; theme=dark; csrftoken=abcdefghijklmnopqrstuvwxyz012345"
)


def main() -> None:
    clearance = Clearance(SECRET)
    capped = Clearance(SECRET, max_uses=10**9)
    ctx = ClearanceContext("203.0.113.7", UA, True, "shop.example", 1_800_000_000.0)
    header = clearance.set_cookie(ctx, "rule:POST:/comments", [0])  # generation 0, cached
    capped.set_cookie(ctx, "rule:POST:/comments", [0])
    assert header is not None
    cookie = OTHER_COOKIES + "; " + header.split(";", 1)[0]
    assert clearance.read(cookie, ctx, "rule:POST:/comments").cleared
    cases = {
        "read, valid cookie (generation cached)": lambda: clearance.read(
            cookie, ctx, "rule:POST:/comments"
        ),
        "read, valid cookie, max_uses (spend yielded)": lambda: capped.read(
            cookie, ctx, "rule:POST:/comments"
        ),
        "read, no clearance cookie among others": lambda: clearance.read(
            OTHER_COOKIES, ctx, "rule:POST:/comments"
        ),
        "issue (Set-Cookie value)": lambda: clearance.set_cookie(ctx, "rule:POST:/comments"),
    }
    for name, call in cases.items():
        best = min(timeit.repeat(call, timer=time.process_time, number=N, repeat=5)) / N
        print(f"{name:45s} {best * 1e6:6.2f} µs")


if __name__ == "__main__":
    main()
