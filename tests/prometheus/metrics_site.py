"""A protected site whose metrics come from the gate's own events, for
tests/prometheus/test_metrics_site.py: ``CaptchaGuard`` with ``ProofOfWork`` on ``/login`` and
``captcha_guard.prometheus``'s hooks, and ``/metrics`` serving what every worker counted
(prometheus_client's multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR`` set by the test). Answers
carry the worker's pid."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from captcha_guard import CaptchaGuard, ProofOfWork, Rule
from captcha_guard.prometheus import event_hooks


async def site(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    if scope["path"] == "/metrics":
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        body, kind = generate_latest(registry), CONTENT_TYPE_LATEST
    else:
        verdict = scope.get("state", {}).get("captcha")
        body, kind = (verdict.outcome.value if verdict else "none").encode(), "text/plain"
    headers = [(b"content-type", kind.encode()), (b"x-pid", str(os.getpid()).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = CaptchaGuard(
    site,
    rules=[Rule("/login")],
    provider=ProofOfWork(os.environ["METRICS_SITE_SECRET"], max_number=50),
    event_hooks=event_hooks(),
)
