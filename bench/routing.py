"""Micro-benchmark: what the gate adds to a request no rule protects (issue 9: <= 1 us).

    PYTHONPATH=. python bench/routing.py                  this tree alone
    PYTHONPATH=. python bench/routing.py --against main   and a git revision, side by side

Times, per request, ``CaptchaGuard.__call__`` and ``WSGICaptchaGuard.__call__`` around an app
that does nothing, minus the bare app, for an unmatched GET and an unmatched POST (a method
some rule protects, on a path none does), and the routing decision alone (``Gate.route``;
``Gate.match`` in revisions before it). Best of several runs. With ``--against``, the
revision's ``captcha_guard`` is extracted (``git archive``) under another name and measured in
the same process, the two alternating, so the ratio is not the machine's mood.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import captcha_guard

N = 100_000
REPEAT = 5
REQUESTS = (("GET", "/about"), ("POST", "/api/items/42"))


async def noop_asgi(scope: Any, receive: Any, send: Any) -> None:
    return None


def noop_wsgi(environ: Any, start_response: Any) -> list[bytes]:
    return []


def scope(method: str, path: str) -> dict[str, Any]:
    # raw_path as uvicorn, hypercorn and daphne send it.
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "headers": [],
    }


def best(stmt: Any) -> float:
    """Nanoseconds per call, best of REPEAT runs of N calls, in this thread's CPU time (on a
    shared machine the wall clock also counts the time other processes had the core)."""
    return min(timeit.repeat(stmt, number=N, repeat=REPEAT, timer=time.thread_time)) / N * 1e9


def asgi_call(app: Any, request: dict[str, Any]) -> Callable[[], None]:
    """One call of an ASGI app that never awaits, driven by hand (no event loop to time)."""

    def run() -> None:
        with contextlib.suppress(StopIteration):
            app(request, None, None).send(None)

    return run


def doors(package: ModuleType) -> tuple[Any, Any]:
    rules = [
        package.Rule("/login"),
        package.Rule("/posts/{post_id:int}/comments"),
        package.Rule("/api/signup"),
    ]
    provider = package.GeeTest("0" * 32, "key", endpoint="http://127.0.0.1:9/validate")
    return (
        package.CaptchaGuard(noop_asgi, rules=rules, provider=provider),
        package.WSGICaptchaGuard(noop_wsgi, rules=rules, provider=provider),
    )


def measure(package: ModuleType, method: str, path: str) -> tuple[float, float, float]:
    guard, wsgi_guard = doors(package)
    request = scope(method, path)
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path}
    gate = guard.gate
    if hasattr(gate, "route"):
        raw = path.encode()
        decision = best(lambda: gate.route(method, path, "", raw))
    else:
        decision = best(lambda: gate.match(method, path))
    asgi_added = best(asgi_call(guard, request)) - best(asgi_call(noop_asgi, request))
    wsgi_added = best(lambda: wsgi_guard(environ, None)) - best(lambda: noop_wsgi(environ, None))
    return decision, asgi_added, wsgi_added


def extracted(revision: str, into: Path) -> ModuleType:
    """``captcha_guard`` as of ``revision``, importable as ``captcha_guard_<short hash>``."""
    root = Path(__file__).resolve().parents[1]
    short = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    name = f"captcha_guard_{short}"
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", revision, "captcha_guard"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "captcha_guard").rename(into / name)
    sys.path.insert(0, str(into))
    return importlib.import_module(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REV", help="a git revision to measure beside")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        packages = [("this tree", captcha_guard)]
        if args.against:
            packages.insert(0, (args.against, extracted(args.against, Path(tmp))))
        header = f"{'unmatched request':<22} {'code':<10} {'decision':>9} {'ASGI':>8} {'WSGI':>8}"
        print(header + "   (ns added per request)")
        for method, path in REQUESTS:
            rows: dict[str, list[tuple[float, ...]]] = {label: [] for label, _ in packages}
            for _ in range(3):  # alternate, so drift in the machine's load hits both
                for label, package in packages:
                    rows[label].append(measure(package, method, path))
            for label, _ in packages:
                decision, asgi_added, wsgi_added = (min(c) for c in zip(*rows[label], strict=True))
                print(
                    f"{method + ' ' + path:<22} {label:<10} {decision:>7.0f}ns "
                    f"{asgi_added:>6.0f}ns {wsgi_added:>6.0f}ns"
                )


if __name__ == "__main__":
    main()
