"""Clearance with state=: the uses cap and revocation hold across workers sharing one real
redis-server (two doors, two RedisStates, one prefix: two workers of one site)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from captcha_guard import CaptchaGuard, Clearance, ProofOfWork, Rule, WSGICaptchaGuard
from captcha_guard.redis import RedisState
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.helpers import solve_pow as solve
from tests.redis_server import RedisServer
from tests.servers import serve_asgi, serve_wsgi

POW_SECRET = "pow-secret-for-shared-clearance-0123"


def _worker(door: str, server: RedisServer, prefix: str) -> tuple[Any, Clearance, RedisState]:
    clearance = Clearance(
        "shared-clearance-secret-0123456789ab", ttl=60, max_uses=2, recheck=0, secure=False
    )
    state = RedisState.from_url(f"unix://{server.socket}", prefix=prefix)
    kind, app = (CaptchaGuard, echo_asgi) if door == "asgi" else (WSGICaptchaGuard, echo_wsgi)
    guard = kind(
        app,
        rules=[Rule("/comments", clearance=True)],
        provider=ProofOfWork(POW_SECRET, max_number=50),
        clearance=clearance,
        state=state,
    )
    return guard, clearance, state


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
def test_uses_and_revocation_are_shared_by_every_worker(
    shared_redis: RedisServer, door: str
) -> None:
    prefix = "c" + uuid.uuid4().hex[:10]
    serve: Any = serve_asgi if door == "asgi" else serve_wsgi
    (one, clearance_one, _), (two, _, state_two) = (
        _worker(door, shared_redis, prefix) for _ in "12"
    )
    with serve(one) as first, serve(two) as second:

        def post(url: str, **options: Any) -> httpx.Response:
            return httpx.post(url + "/comments", **options, verify=TLS)

        challenge = httpx.get(first + "/captcha-guard/challenge", verify=TLS).json()
        earned = post(first, data={"altcha": solve(challenge)})
        assert earned.status_code == 200
        name, _, rest = earned.headers["set-cookie"].partition("=")
        cookie = {"cookie": f"{name}={rest.split(';', 1)[0]}"}
        # max_uses=2, counted in Redis: one use on each worker, then none on either.
        assert post(second, data={}, headers=cookie).status_code == 200
        assert post(first, data={}, headers=cookie).status_code == 200
        assert post(second, data={}, headers=cookie).status_code == 403
        # A fresh clearance, revoked from the other worker's state, is refused everywhere.
        challenge = httpx.get(second + "/captcha-guard/challenge", verify=TLS).json()
        again = post(second, data={"altcha": solve(challenge)})
        name, _, rest = again.headers["set-cookie"].partition("=")
        cookie = {"cookie": f"{name}={rest.split(';', 1)[0]}"}
        assert post(first, data={}, headers=cookie).status_code == 200
        clearance_one.revoke_all(state_two.for_wsgi())
        assert post(first, data={}, headers=cookie).status_code == 403
        assert post(second, data={}, headers=cookie).status_code == 403
