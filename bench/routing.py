"""Micro-benchmark: what the gate adds to a request no rule protects (issue 9: <= 1 us).

    PYTHONPATH=. python bench/routing.py

Times, per request, ``CaptchaGuard.__call__`` and ``WSGICaptchaGuard.__call__`` around an app
that does nothing, minus the bare app, for an unmatched GET and an unmatched POST (a method
some rule protects, on a path none does), and ``Gate.match`` alone. Best of several runs.
"""

from __future__ import annotations

import contextlib
import timeit
from collections.abc import Callable
from typing import Any

from captcha_guard import CaptchaGuard, GeeTest, Rule, WSGICaptchaGuard

RULES = [Rule("/login"), Rule("/posts/{post_id:int}/comments"), Rule("/api/signup")]
PROVIDER = GeeTest("0" * 32, "key", endpoint="http://127.0.0.1:9/validate")
N = 200_000
REPEAT = 9


async def noop_asgi(scope: Any, receive: Any, send: Any) -> None:
    return None


def noop_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    return []


def scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def best(stmt: Any) -> float:
    """Nanoseconds per call, best of REPEAT runs of N calls."""
    return min(timeit.repeat(stmt, number=N, repeat=REPEAT)) / N * 1e9


def asgi_call(app: Any, request: dict[str, Any]) -> Callable[[], None]:
    """One call of an ASGI app that never awaits, driven by hand (no event loop to time)."""

    def run() -> None:
        with contextlib.suppress(StopIteration):
            app(request, None, None).send(None)

    return run


def measure(guard: Any, wsgi_guard: Any, method: str, path: str) -> tuple[float, ...]:
    request = scope(method, path)
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path}
    asgi_added = best(asgi_call(guard, request)) - best(asgi_call(noop_asgi, request))
    wsgi_added = best(lambda: wsgi_guard(environ, None)) - best(lambda: noop_wsgi(environ, None))
    match = best(lambda: guard.gate.match(method, path))
    return match, asgi_added, wsgi_added


def main() -> None:
    guard = CaptchaGuard(noop_asgi, rules=RULES, provider=PROVIDER)
    wsgi_guard = WSGICaptchaGuard(noop_wsgi, rules=RULES, provider=PROVIDER)
    print(f"{'unmatched request':<22} {'Gate.match':>11} {'ASGI added':>11} {'WSGI added':>11}")
    for method, path in (("GET", "/about"), ("POST", "/api/items/42")):
        match, asgi_added, wsgi_added = measure(guard, wsgi_guard, method, path)
        name = f"{method} {path}"
        print(f"{name:<22} {match:>9.0f}ns {asgi_added:>9.0f}ns {wsgi_added:>9.0f}ns")


if __name__ == "__main__":
    main()
