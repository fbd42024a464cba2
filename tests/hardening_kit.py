"""Shared pieces of the hardening suites (fallback, faults, bypass, fuzz, load)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class FakeClock:
    """A clock that moves only when a test moves it."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Echo:
    """An ASGI app that answers 200 with a JSON report of what it received: the verdict's
    outcome and the body, so a test sees exactly what reached the app."""

    seen: list[bytes] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        self.seen.append(body)
        verdict = scope.get("state", {}).get("captcha")
        report = {
            "outcome": verdict.outcome.value if verdict else None,
            "reason": verdict.reason if verdict else None,
            "body": body.decode("latin-1"),
        }
        payload = json.dumps(report).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})
