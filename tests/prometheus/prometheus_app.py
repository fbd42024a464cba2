"""A tiny ASGI app that drives ``captcha_guard.prometheus`` hooks in each worker and serves the
aggregated ``/metrics`` (prometheus_client multiprocess mode), for
tests/prometheus/test_prometheus.py.

Every worker, at lifespan startup, feeds the hooks the same batch of events (STARTUP_BATCH)
and then drops a marker file ``started-<pid>`` in ``CAPTCHA_GUARD_TEST_MARKERS``, so a test
knows for certain that each worker has emitted, whichever worker later serves its requests.
``POST /breaker?old=...&new=...`` feeds one breaker transition to whichever worker serves it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from captcha_guard._breaker import State
from captcha_guard._events import BreakerEvent, StoreErrorEvent, VerdictEvent
from captcha_guard._verdict import Outcome
from captcha_guard.prometheus import event_hooks

HOOKS = event_hooks()

STARTUP_BATCH: list[tuple[str, Any]] = [
    ("verdict", VerdictEvent("geetest", "/login", Outcome.PASSED, "ok", 0.02)),
    ("verdict", VerdictEvent("geetest", "/login", Outcome.PASSED, "ok", 0.03)),
    ("verdict", VerdictEvent("geetest", "/login", Outcome.REJECTED, "bad_fields", None)),
    (
        "verdict",
        VerdictEvent(
            "geetest", "/login", Outcome.FALLBACK, "provider_timeout", 5.0, fallback="allowed"
        ),
    ),
    (
        "verdict",
        VerdictEvent(
            "geetest",
            "/login",
            Outcome.REJECTED,
            "replayed",
            None,
            fallback="refused_replay",
            replay="fallback",
        ),
    ),
    ("store_error", StoreErrorEvent("breaker", "timeout")),
    ("breaker", BreakerEvent("geetest", State.CLOSED, State.OPEN)),
]


def emit(name: str, event: Any) -> None:
    for hook in HOOKS[name]:
        hook(event)


async def _answer(send: Any, status: int, body: bytes, content_type: str) -> None:
    headers = [(b"content-type", content_type.encode()), (b"x-pid", str(os.getpid()).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for name, event in STARTUP_BATCH:
                    emit(name, event)
                markers = Path(os.environ["CAPTCHA_GUARD_TEST_MARKERS"])
                (markers / f"started-{os.getpid()}").write_text("")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/metrics":
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        await _answer(send, 200, generate_latest(registry), CONTENT_TYPE_LATEST)
        return
    if scope["path"] == "/breaker" and scope["method"] == "POST":
        query = parse_qs(scope["query_string"].decode())
        emit("breaker", BreakerEvent("geetest", State(query["old"][0]), State(query["new"][0])))
        await _answer(send, 200, b"ok", "text/plain")
        return
    await _answer(send, 404, b"", "text/plain")
