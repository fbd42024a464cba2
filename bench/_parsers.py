"""What bench/parse_limits.py and bench/parse_cost.py both time (the gate's collect and
Starlette's form parsers, each as a callable over one body) and how (CPU, best of N)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser

from captcha_guard._fields import BodyError, _cached_options, collect


def gate_parse(content_type: str, body: bytes, *, cold: bool = False) -> Callable[[], object]:
    """The gate's fields.collect (its error code when it refuses); ``cold``: without the cache
    of part headers."""

    def run() -> object:
        if cold:
            _cached_options.cache_clear()
        try:
            return collect(
                content_type=content_type, body=body, query_string=b"", header_value=None
            )
        except BodyError as exc:
            return exc.code

    return run


def starlette_form(content_type: str, body: bytes) -> Callable[[], object]:
    """Starlette's MultiPartParser or FormParser, as request.form() runs it, on one event loop
    kept for all runs (a new loop per run would be counted against Starlette)."""
    headers = Headers({"content-type": content_type})

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    async def form() -> object:
        parser: Any
        if content_type.startswith("multipart/"):
            parser = MultiPartParser(headers, stream())
        else:
            parser = FormParser(headers, stream())
        try:
            return await parser.parse()
        except MultiPartException as exc:
            return exc.message

    loop = asyncio.new_event_loop()
    return lambda: loop.run_until_complete(form())


def cpu(run: Callable[[], object], repeat: int, budget: float = float("inf")) -> float:
    """The least CPU time of ``repeat`` runs (fewer when one run costs over ``budget``)."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        run()
        times.append(time.process_time() - started)
        if times[-1] > budget:
            break
    return min(times)


__all__ = ["cpu", "gate_parse", "starlette_form"]
