"""Clearance hardening (issue 15 section 5) through both doors on real servers: a clearance
stands for the provider that earned it, the Secure decision never reads Host, a sibling's
cookie full of commas hides nothing, and clearances have events and a metric of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from werkzeug.middleware.proxy_fix import ProxyFix

from captcha_guard import CircuitBreaker, Clearance, GeeTest, ProofOfWork, Rule
from captcha_guard._events import ClearanceEvent, StoreErrorEvent, VerdictEvent
from captcha_guard.asgi import CaptchaGuard
from captcha_guard.prometheus import event_hooks as prometheus_hooks
from captcha_guard.redis import RedisState
from captcha_guard.testing import GeeTestEmulator
from captcha_guard.wsgi import WSGICaptchaGuard
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.helpers import solve_pow as solve
from tests.redis_server import RedisServer
from tests.servers import serve_asgi, serve_wsgi

SECRET = "clearance-hardening-secret-0123456789"
POW_SECRET = "pow-secret-for-clearance-hardening-01"

Serve = Callable[..., AbstractContextManager[str]]
DOORS = ["asgi", "wsgi"]


@contextmanager
def site(door: str, *, behind_proxy: bool = False, **options: Any) -> Iterator[httpx.Client]:
    """A door on a real server. ``behind_proxy``: the server trusts X-Forwarded-Proto from
    127.0.0.1 as docs/clearance.md says to configure it (uvicorn --proxy-headers, ProxyFix)."""
    if door == "asgi":
        guard: Any = CaptchaGuard(echo_asgi, **options)
        config = {"proxy_headers": behind_proxy, "forwarded_allow_ips": "127.0.0.1"}
        server = serve_asgi(guard, **config)
    else:
        guard = WSGICaptchaGuard(echo_wsgi, **options)
        server = serve_wsgi(ProxyFix(guard, x_proto=1) if behind_proxy else guard)
    with server as url, httpx.Client(base_url=url, verify=TLS) as client:
        yield client


def post(client: httpx.Client, path: str, cookie: str | None = None, **options: Any) -> Any:
    """A post carrying exactly the cookie given (never the client's jar)."""
    client.cookies.clear()
    headers = dict(options.pop("headers", {}))
    if cookie is not None:
        headers["cookie"] = cookie
    try:
        return client.post(path, headers=headers, **options)
    finally:
        client.cookies.clear()


def pow_fields(client: httpx.Client) -> dict[str, str]:
    return {"altcha": solve(client.get("/captcha-guard/challenge").json())}


def cookie_of(response: httpx.Response) -> str:
    return str(response.headers["set-cookie"]).split(";", 1)[0]


def pow_provider() -> ProofOfWork:
    return ProofOfWork(POW_SECRET, max_number=50)


def geetest(emulator: GeeTestEmulator, endpoint: str) -> GeeTest:
    return GeeTest(
        emulator.captcha_id,
        emulator.captcha_key,
        endpoint=endpoint,
        timeout=0.5,
        breaker=CircuitBreaker(failure_threshold=100),
    )


# -- 1. a clearance stands for the provider that earned it ---------------------------------------


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("setting", [True, "talk"])
def test_a_cheap_clearance_does_not_clear_a_geetest_route_of_another_app(
    door: str, setting: bool | str
) -> None:
    # Two apps share the clearance secret (one parent domain, one config): the same rule
    # pattern, or the same scope name, on a proof-of-work app and a GeeTest app.
    emulator = GeeTestEmulator()
    with emulator.serve() as upstream:
        strong = geetest(emulator, upstream.endpoint("/validate"))
        rule = Rule("/comments", clearance=setting)
        with (
            site(door, rules=[rule], provider=pow_provider(),
                 clearance=Clearance(SECRET, secure=True)) as cheap,
            site(door, rules=[rule], provider=strong,
                 clearance=Clearance(SECRET, secure=True)) as dear,
        ):  # fmt: skip
            earned = post(cheap, "/comments", data=pow_fields(cheap))
            assert earned.status_code == 200
            cookie = cookie_of(earned)
            assert post(cheap, "/comments", cookie, data={}).status_code == 200
            assert post(dear, "/comments", cookie, data={}).status_code == 403
            # The GeeTest app's own clearance clears it, and not the cheap one's route either.
            own = cookie_of(post(dear, "/comments", data=emulator.issue()))
            assert post(dear, "/comments", own, data={}).status_code == 200
            assert post(cheap, "/comments", own, data={}).status_code == 403


@pytest.mark.parametrize("door", [CaptchaGuard, WSGICaptchaGuard])
def test_one_named_scope_spanning_providers_is_refused_at_construction(door: Any) -> None:
    strong = GeeTest("0" * 32, "1" * 32, endpoint="https://gcaptcha4.geetest.com/validate")
    app = echo_asgi if door is CaptchaGuard else echo_wsgi
    with pytest.raises(ValueError, match="'talk' spans rules judged by different providers"):
        door(
            app,
            rules=[Rule("/replies", clearance="talk"), Rule("/threads", clearance="talk",
                                                            provider="geetest")],
            provider=pow_provider(),
            providers={"geetest": strong},
            clearance=Clearance(SECRET),
        )  # fmt: skip
    # One provider per name is fine, and so are two providers on rules of their own.
    door(
        app,
        rules=[
            Rule("/replies", clearance="talk", provider="geetest"),
            Rule("/threads", clearance="talk", provider="geetest"),
            Rule("/comments", clearance=True),
            Rule("/posts", clearance="cheap"),
        ],
        provider=pow_provider(),
        providers={"geetest": strong},
        clearance=Clearance(SECRET),
    )


# -- 2. Secure and __Host- from the scheme, never from Host ------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_behind_a_proxy_that_rewrites_host_the_cookie_is_never_plain(door: str) -> None:
    options: dict[str, Any] = {
        "rules": [Rule("/comments", clearance=True)],
        "provider": pow_provider(),
        "clearance": Clearance(SECRET),
    }
    with site(door, behind_proxy=True, **options) as client:
        # nginx's default Host is the upstream's ($proxy_host): 127.0.0.1. Without the scheme
        # from the proxy, this HTTPS site's request looks like plain HTTP: no cookie at all.
        bare = post(client, "/comments", data=pow_fields(client), headers={"host": "127.0.0.1"})
        assert bare.status_code == 200 and "set-cookie" not in bare.headers
        # With X-Forwarded-Proto trusted from the proxy, the cookie is __Host- and Secure.
        https = {"host": "127.0.0.1:8000", "x-forwarded-proto": "https"}
        told = post(client, "/comments", data=pow_fields(client), headers=https)
        header = told.headers["set-cookie"]
        assert header.startswith("__Host-cg_clearance-") and header.endswith("; Secure")
        assert post(client, "/comments", cookie_of(told), data={}, headers=https).status_code == 200
    options["clearance"] = Clearance(SECRET, secure=True)
    with site(door, **options) as client:  # a TLS proxy the server is not told about
        header = post(client, "/comments", data=pow_fields(client)).headers["set-cookie"]
        assert header.startswith("__Host-") and header.endswith("; Secure")


# -- 3. cookies split on ";" only ----------------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_a_siblings_comma_laden_cookie_beside_a_real_clearance(door: str) -> None:
    options = {
        "rules": [Rule("/comments", clearance=True)],
        "provider": pow_provider(),
        "clearance": Clearance(SECRET, secure=True),
    }
    with site(door, **options) as client:
        real = cookie_of(post(client, "/comments", data=pow_fields(client)))
        name = real.split("=", 1)[0]
        # Set by shop.example.com for Domain=example.com, under our name or any other.
        sibling = f"{name}=" + ",".join(f"{name}=x{i}" for i in range(12))
        prefs = "prefs=" + ",".join(f"k{i}=v" for i in range(12))
        for jar in (f"{sibling}; {real}", f"{prefs}; {sibling}; {real}"):
            assert post(client, "/comments", jar, data={}).status_code == 200, jar


# -- 4. events and a metric of their own ---------------------------------------------------------


@pytest.mark.parametrize("door", DOORS)
def test_clearances_have_their_own_events_and_metric(door: str) -> None:
    verdicts: list[VerdictEvent] = []
    clearances: list[ClearanceEvent] = []
    registry = CollectorRegistry()
    hooks = prometheus_hooks(registry)
    hooks["verdict"] = [*hooks["verdict"], verdicts.append]
    hooks["clearance"] = [*hooks["clearance"], clearances.append]
    clearance = Clearance(SECRET, secure=True, max_uses=1, recheck=0)
    options = {
        "rules": [Rule("/comments", clearance=True)],
        "provider": pow_provider(),
        "clearance": clearance,
        "event_hooks": hooks,
    }
    with site(door, **options) as client:
        first = cookie_of(post(client, "/comments", data=pow_fields(client)))
        assert [v.code for v in verdicts] == ["ok"]
        assert post(client, "/comments", first, data={}).status_code == 200
        assert verdicts[-1].code == "clearance" and verdicts[-1].outcome.value == "passed"
        assert post(client, "/comments", first, data={}).status_code == 403  # used up
        name, value = first.split("=", 1)
        forged = f"{name}={value[:-2]}{'A' if value[-2] != 'A' else 'B'}{value[-1]}"
        assert post(client, "/comments", forged, data={}).status_code == 403
        second = cookie_of(post(client, "/comments", data=pow_fields(client)))
        clearance.revoke_all()
        assert post(client, "/comments", second, data={}).status_code == 403
        assert post(client, "/comments", data={}).status_code == 403  # no cookie: no event
    results = [c.result for c in clearances]
    assert results == ["issued", "cleared", "exhausted", "invalid", "issued", "revoked"]
    assert {(c.provider, c.rule) for c in clearances} == {("proof_of_work", "/comments")}
    assert all(value not in repr(c) for c in clearances)
    for result, count in {"issued": 2, "cleared": 1, "exhausted": 1, "revoked": 1}.items():
        sample = registry.get_sample_value("captcha_guard_clearances_total", {"result": result})
        assert sample == count, result


@pytest.mark.parametrize("door", DOORS)
def test_a_clearance_store_error_is_labelled_clearance(door: str, own_redis: RedisServer) -> None:
    errors: list[StoreErrorEvent] = []
    clearances: list[ClearanceEvent] = []
    registry = CollectorRegistry()
    hooks = prometheus_hooks(registry)
    hooks["store_error"] = [*hooks["store_error"], errors.append]
    hooks["clearance"] = [clearances.append]
    options = {
        "rules": [Rule("/comments", clearance=True)],
        "provider": pow_provider(),
        # recheck long: the generation stays cached, so only the use count meets the outage.
        "clearance": Clearance(SECRET, secure=True, max_uses=5, recheck=3600),
        "state": RedisState.from_url(own_redis.url),
        "event_hooks": hooks,
    }
    with site(door, **options) as client:
        cookie = cookie_of(post(client, "/comments", data=pow_fields(client)))
        assert post(client, "/comments", cookie, data={}).status_code == 200
        own_redis.kill()
        assert post(client, "/comments", cookie, data={}).status_code == 403  # ignored
    assert [e.store for e in errors] == ["clearance"]
    assert [c.result for c in clearances] == ["issued", "cleared", "unavailable"]
    assert registry.get_sample_value("captcha_guard_store_errors_total", {"store": "clearance"})
    assert not registry.get_sample_value(
        "captcha_guard_store_errors_total", {"store": "fallback_budget"}
    )


def test_repeated_cookie_fields_are_joined_with_semicolons() -> None:
    # HTTP/2 sends one cookie per field (RFC 9113 8.2.3) and ASGI servers pass them on as
    # they came: joined with "; ", the real clearance after a sibling's comma-laden one clears.
    options = {
        "rules": [Rule("/comments", clearance=True)],
        "provider": pow_provider(),
        "clearance": Clearance(SECRET, secure=True),
    }
    with site("asgi", **options) as client:
        real = cookie_of(post(client, "/comments", data=pow_fields(client)))
        name = real.split("=", 1)[0]
        fields = [("cookie", f"{name}=a,b,c"), ("cookie", "prefs=x,y"), ("cookie", real)]
        client.cookies.clear()
        assert client.post("/comments", headers=fields, data={}).status_code == 200
