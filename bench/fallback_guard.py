"""The fallback guard's own cost, and how fast a flood fills it: ``python -m bench.fallback_guard``.

Measures, in-process on one core: one fallback decision (budget + replay memory) for IPv4 and
IPv6 clients, the network bucket alone, ``client_ip=`` resolution on a normal and on an 800 KB
``X-Forwarded-For``, and the wall time a flood from one IPv6 /48 (65,536 /64 budgets) takes to
fill the default replay memory with ``fallback_limit=10``. The numbers feed SECURITY.md.
"""

from __future__ import annotations

import logging
import timeit
from collections.abc import Callable

from captcha_guard._client_ip import ClientAddress
from captcha_guard._fallback import FallbackLimit, network_of, refusal_flow
from captcha_guard._memory import DEFAULT_MAX_ENTRIES, MemoryState
from captcha_guard._state import StateFull
from captcha_guard._verdict import Outcome


class Guard:
    """The gate's fallback decision (``refusal_flow``) performed on a MemoryState, as a door
    performs it."""

    def __init__(self, state: MemoryState, limit: FallbackLimit) -> None:
        self.state, self.limit = state, limit

    def refusal(self, replay_key: str, client: str) -> tuple[Outcome, str] | None:
        flow = refusal_flow(self.limit, replay_key, client)
        run = self.state.run
        try:
            op = next(flow)
            while True:
                try:
                    result = run(op)
                except StateFull as full:
                    op = flow.throw(full)
                else:
                    op = flow.send(result)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


def per_call(function: Callable[[], object], number: int) -> float:
    """Microseconds per call, the best of three runs."""
    return min(timeit.repeat(function, number=number, repeat=3)) / number * 1e6


def decision_cost() -> list[tuple[str, float]]:
    guard = Guard(MemoryState(max_entries=10**7, max_buckets=10**7), FallbackLimit(10**9))
    counter = iter(range(10**9))

    def v4() -> None:
        n = next(counter)
        guard.refusal(f"geetest:{n}", f"198.51.{n >> 8 & 255}.{n & 255}")

    def v6() -> None:
        n = next(counter)
        guard.refusal(f"geetest:{n}", f"2001:db8:1:{n & 0xFFFF:x}::1")

    xff = ClientAddress(1)
    normal = {
        "type": "http",
        "client": ("127.0.0.1", 1),
        "headers": [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.1")],
    }
    huge = {
        "type": "http",
        "client": ("127.0.0.1", 1),
        "headers": [(b"x-forwarded-for", b"6.6.6.6," * 100_000 + b"1.2.3.4")],
    }
    return [
        ("fallback decision, IPv4 client", per_call(v4, 20_000)),
        ("fallback decision, IPv6 client", per_call(v6, 20_000)),
        ("network_of, IPv4", per_call(lambda: network_of("203.0.113.7"), 20_000)),
        ("network_of, IPv6", per_call(lambda: network_of("2001:db8:1:2::1"), 20_000)),
        ("client_ip=1, 2-entry X-Forwarded-For", per_call(lambda: xff.asgi(normal), 20_000)),
        ("client_ip=1, 800 KB X-Forwarded-For", per_call(lambda: xff.asgi(huge), 20)),
    ]


def flood_from_one_48(per_minute: int = 10) -> tuple[int, float]:
    """Fallbacks one /48 gets in before the default replay memory is full, and the CPU time
    the gate spends on them (the attacker's own request rate is the real bound)."""
    guard = Guard(MemoryState(clock=lambda: 0.0), FallbackLimit(per_minute))
    admitted = 0
    started = timeit.default_timer()
    for n in range(DEFAULT_MAX_ENTRIES * 2):
        refusal = guard.refusal(f"geetest:{n}", f"2001:db8:1:{n % 65536:x}::1")
        if refusal is None:
            admitted += 1
        elif refusal[0] is Outcome.FALLBACK:  # full: from now on every new fallback is a 503
            break
    return admitted, timeit.default_timer() - started


def main() -> None:
    logging.disable(logging.WARNING)  # the guard says "full" once it is: expected here
    for name, micros in decision_cost():
        print(f"{name:45s} {micros:9.1f} µs")
    admitted, seconds = flood_from_one_48()
    print(
        f"one /48 at fallback_limit=10: {admitted} fallbacks fill the replay memory "
        f"({DEFAULT_MAX_ENTRIES} ids; {admitted / 10 / 65536:.2f} minutes of its budgets), "
        f"{seconds:.2f} s of the gate's CPU"
    )


if __name__ == "__main__":
    main()
