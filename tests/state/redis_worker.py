"""A separate process that drives a RedisState, for the tests that need two or more hosts.

``python -m tests.state.redis_worker MODE URL PREFIX [ARGS...]`` prints one JSON document. Each
worker waits for a start file to appear before it begins, so all begin together.
"""

from __future__ import annotations

import json
import os
import sys
import time

from captcha_guard._state import StateOp
from captcha_guard.redis import RedisState


def _wait_for(path: str) -> None:
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.001)


def main() -> None:
    mode, url, prefix, start = sys.argv[1:5]
    args = sys.argv[5:]
    state = RedisState.from_url(url, prefix=prefix, timeout=2.0)
    out: dict[str, object] = {}
    if mode == "remember":
        keys = int(args[0])
        _wait_for(start)
        out["first"] = [
            k for k in range(keys) if state.run(StateOp("remember", ("pow", str(k), 60)))
        ]
    elif mode == "spend":
        tries, limit = int(args[0]), int(args[1])
        _wait_for(start)
        out["within"] = sum(
            bool(state.run(StateOp("spend", ("fallback", "client", limit, 86_400))))
            for _ in range(tries)
        )
    elif mode == "failing":
        # A provider that always fails: call it whenever the breaker allows, until it says no.
        threshold = int(args[0])
        _wait_for(start)
        calls = 0
        while True:
            permit = state.run(StateOp("breaker_acquire", ("p", threshold, 60.0)))
            if permit is None:
                break
            calls += 1
            state.run(StateOp("breaker_record", ("p", threshold, 60.0, permit, False)))
        out["calls"] = calls
    elif mode == "probe":
        # Race for the half-open probe; hold it, report, then wait to be killed or told.
        _wait_for(start)
        # The server's clock just before the grant: the lease cannot end before this + lease.
        seconds, micros = state._sync_client().time()
        out["before_ms"] = int(seconds) * 1000 + int(micros) // 1000
        permit = state.run(StateOp("breaker_acquire", ("p", 1, float(args[0]), float(args[1]))))
        out["probe"] = bool(permit is not None and permit.probe)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(out), flush=True)
    if mode == "probe" and args[2:] == ["hold"]:
        sys.stdin.read()  # until the test kills us or closes stdin


if __name__ == "__main__":
    main()
