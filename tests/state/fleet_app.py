"""A guarded site for the fleet tests (tests/state/test_fleet.py), configured by environment
variables so that every worker of ``uvicorn --workers N`` / ``gunicorn -w N`` builds the same:

    FLEET_REDIS     the Redis URL (``unix:///.../redis.sock``); unset: no shared state
    FLEET_PREFIX    the RedisState key prefix
    FLEET_ENDPOINT  the Turnstile emulator's siteverify URL
    FLEET_THRESHOLD failure_threshold of the Turnstile breaker (default 3)
    FLEET_RESET     its reset_timeout in seconds (default 1.5)
    FLEET_REDIS_TIMEOUT  RedisState's timeout in seconds (default REDIS_TIMEOUT, 0.2)

Routes: ``POST /login`` (Turnstile, fail open), ``POST /pow`` (proof of work), ``GET
/captcha-guard/challenge`` (a PoW challenge), ``GET /status`` (this worker's pid and whether
its shared state is in an outage, after one operation on it). Every answer, denials too
(``{"pid", "outcome": null, "error"}``), carries the pid of the worker that gave it, so a
test sees which workers answered.

    uvicorn --workers 2 --uds PATH tests.state.fleet_app:asgi_app
    gunicorn -w 2 --bind unix:PATH tests.state.fleet_app:wsgi_app
    gunicorn -w 2 -k uvicorn.workers.UvicornWorker --bind unix:PATH tests.state.fleet_app:asgi_app
"""

from __future__ import annotations

import json
import os
from typing import Any

from captcha_guard import (
    CaptchaGuard,
    CircuitBreaker,
    ProofOfWork,
    Rule,
    Turnstile,
    WSGICaptchaGuard,
)
from captcha_guard._state import StateOp

#: Shared by every worker (and both simulated hosts): a solution is valid on any of them.
POW_SECRET = "fleet-test-secret-0123456789abcdef"
POW_MAX_NUMBER = 1000
TURNSTILE_SECRET = "0x4AAAAAAAEmulatedTurnstileSecret000"
PROVIDER_TIMEOUT = 0.3
REDIS_TIMEOUT = 0.2


def _settings() -> dict[str, Any]:
    return {
        "redis": os.environ.get("FLEET_REDIS"),
        "prefix": os.environ.get("FLEET_PREFIX", "fleet"),
        "endpoint": os.environ.get("FLEET_ENDPOINT", "http://127.0.0.1:9/siteverify"),
        "threshold": int(os.environ.get("FLEET_THRESHOLD", "3")),
        "reset": float(os.environ.get("FLEET_RESET", "1.5")),
        "redis_timeout": float(os.environ.get("FLEET_REDIS_TIMEOUT", str(REDIS_TIMEOUT))),
    }


def _doors_kwargs(
    overrides: dict[str, Any], door_kwargs: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    settings = {**_settings(), **overrides}
    turnstile = Turnstile(
        TURNSTILE_SECRET,
        endpoint=settings["endpoint"],
        timeout=PROVIDER_TIMEOUT,
        breaker=CircuitBreaker(settings["threshold"], settings["reset"]),
    )
    pow_ = ProofOfWork(POW_SECRET, max_number=POW_MAX_NUMBER, escalation=())
    state = None
    if settings["redis"]:
        from captcha_guard.redis import RedisState

        state = RedisState.from_url(
            settings["redis"], prefix=settings["prefix"], timeout=settings["redis_timeout"]
        )
    kwargs = {
        "rules": [Rule("/login"), Rule("/pow", provider="pow")],
        "provider": turnstile,
        "providers": {"pow": pow_},
        "state": state,
        **(door_kwargs or {}),
    }
    return kwargs, settings


def _denied(denial: Any) -> bytes:
    return _answer(None, error=denial.error)


def _asgi_reject(denial: Any, scope: Any) -> Any:
    async def reply(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": denial.status, "headers": headers})
        await send({"type": "http.response.body", "body": _denied(denial)})

    return reply


def _wsgi_reject(denial: Any, environ: Any) -> Any:
    def reply(environ: Any, start_response: Any) -> list[bytes]:
        body = _denied(denial)
        headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
        start_response(f"{denial.status} Denied", headers)
        return [body]

    return reply


def _answer(outcome: str | None, **extra: Any) -> bytes:
    return json.dumps({"pid": os.getpid(), "outcome": outcome, **extra}).encode()


def _status_op(settings: dict[str, Any]) -> StateOp:
    return StateOp("breaker_state", ("turnstile", settings["threshold"], settings["reset"]))


def build_asgi(door_kwargs: dict[str, Any] | None = None, **overrides: Any) -> CaptchaGuard:
    """The ASGI site; keyword arguments override the environment's settings, ``door_kwargs``
    the door's arguments."""
    kwargs, settings = _doors_kwargs(overrides, door_kwargs)
    door: CaptchaGuard

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
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
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        if scope["path"] == "/status":
            state = door.state
            if state is not None:
                await state.arun(_status_op(settings))
            body = _answer(None, outage=bool(getattr(state, "outage", False)))
        else:
            verdict = scope.get("state", {}).get("captcha")
            body = _answer(verdict.outcome.value if verdict is not None else None)
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    door = CaptchaGuard(inner, on_reject=_asgi_reject, **kwargs)
    return door


def build_wsgi(door_kwargs: dict[str, Any] | None = None, **overrides: Any) -> WSGICaptchaGuard:
    """The WSGI site; keyword arguments override the environment's settings, ``door_kwargs``
    the door's arguments."""
    kwargs, settings = _doors_kwargs(overrides, door_kwargs)
    door: WSGICaptchaGuard

    def inner(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)
        if environ.get("PATH_INFO") == "/status":
            state = door.state
            if state is not None:
                state.run(_status_op(settings))
            body = _answer(None, outage=bool(getattr(state, "outage", False)))
        else:
            verdict = environ.get("captcha_guard.verdict")
            body = _answer(verdict.outcome.value if verdict is not None else None)
        start_response(
            "200 OK", [("content-type", "application/json"), ("content-length", str(len(body)))]
        )
        return [body]

    door = WSGICaptchaGuard(inner, on_reject=_wsgi_reject, **kwargs)
    return door


def __getattr__(name: str) -> Any:
    # Built on first access, so a server importing ``wsgi_app`` builds only that door.
    if name == "asgi_app":
        app: Any = build_asgi()
    elif name == "wsgi_app":
        app = build_wsgi()
    else:
        raise AttributeError(name)
    globals()[name] = app
    return app
