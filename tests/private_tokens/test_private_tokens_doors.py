"""Private Access Tokens end to end through both doors on real servers.

The issuer is a real HTTP server on 127.0.0.1 serving its key directory (the vendor's side,
emulated); tokens come from tests/privacy_pass_issuer.py, a blind RSA issuer that reproduces
the RFC 9578 vectors. A token mints the clearance cookie in its own scope: it clears a rule
that opted in (``private_tokens=True``) and no other, never passes a rule by itself, and is
spent once, fleet-wide when the doors share ``state=``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captcha_guard import (
    CaptchaGuard,
    Clearance,
    PrivateTokens,
    ProofOfWork,
    Rule,
    TokenIssuer,
    WSGICaptchaGuard,
)
from captcha_guard._events import PrivateTokenEvent, VerdictEvent
from captcha_guard._privacy_pass._auth import parse_challenges
from captcha_guard._privacy_pass._tokens import TokenStatus
from captcha_guard._privacy_pass._wire import TokenChallenge, b64decode, b64encode
from captcha_guard.redis import RedisState
from tests import TLS
from tests.apps import echo_asgi, echo_wsgi
from tests.helpers import FakeClock, solve_pow
from tests.privacy_pass_issuer import Issuer, issue_token
from tests.redis_server import redis_server
from tests.servers import serve_asgi, serve_wsgi

SECRET = "clearance-secret-for-token-tests-0123456"
TOKEN_SECRET = "context-secret-for-token-tests-01234567"
POW_SECRET = "pow-secret-for-token-tests-0123456789"
PATH = "/captcha-guard/private-token"
_FUZZ_ISSUER = Issuer()

Door = Callable[..., Any]
DOORS: list[tuple[str, Door, Any, Callable[[Any], AbstractContextManager[str]]]] = [
    ("asgi", CaptchaGuard, echo_asgi, serve_asgi),
    ("wsgi", WSGICaptchaGuard, echo_wsgi, serve_wsgi),
]


class IssuerSite:
    """The issuer's directory, served by a real server; ``up`` False answers 503."""

    def __init__(self, issuer: Issuer) -> None:
        self.issuer = issuer
        self.hits = 0
        self.up = True
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        with self._lock:
            self.hits += 1
        if not self.up or scope["path"] != "/.well-known/private-token-issuer-directory":
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = json.dumps(self.issuer.directory()).encode()
        headers = [
            (b"content-type", b"application/private-token-issuer-directory"),
            (b"cache-control", b"max-age=3600"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def issuer_site(issuer: Issuer) -> Iterator[tuple[IssuerSite, str]]:
    site = IssuerSite(issuer)
    with serve_asgi(site) as url:
        yield site, url + "/.well-known/private-token-issuer-directory"


class Site:
    def __init__(self, client: httpx.Client, issuer: Issuer, events: list[Any]) -> None:
        self.client = client
        self.issuer = issuer
        self.events = events

    def challenge(self) -> bytes:
        answer = self.client.get(PATH)
        assert answer.status_code == 401, answer.text
        assert answer.headers["cache-control"] == "no-store"
        parsed = parse_challenges(answer.headers["www-authenticate"]) or []
        (params,) = [p for scheme, p in parsed if scheme == "PrivateToken"]
        assert b64decode(params["token-key"]) == self.issuer.spki
        assert 300 <= int(params["max-age"]) <= 600
        raw = b64decode(params["challenge"])
        assert raw is not None
        return raw

    def token(self, challenge: bytes | None = None) -> str:
        minted, _, _ = issue_token(self.issuer, challenge or self.challenge())
        return f'PrivateToken token="{b64encode(minted)}"'

    def post(self, path: str, **options: Any) -> httpx.Response:
        self.client.cookies.clear()
        try:
            return self.client.post(path, **options)
        finally:
            self.client.cookies.clear()

    def redeem(self, authorization: str) -> httpx.Response:
        self.client.cookies.clear()
        try:
            return self.client.get(PATH, headers={"authorization": authorization})
        finally:
            self.client.cookies.clear()


def _cookie(response: httpx.Response) -> dict[str, str]:
    name, _, rest = response.headers["set-cookie"].partition("=")
    return {"cookie": f"{name}={rest.split(';', 1)[0]}"}


def _guard(door: Door, app: Any, directory: str, events: list[Any], **options: Any) -> Any:
    tokens = PrivateTokens(
        TOKEN_SECRET,
        [TokenIssuer("issuer.test", directory=directory)],
        origin="site.test",
        grease=options.pop("grease", 0.0),
        random=options.pop("random", None),
        clock=options.pop("clock", time.time),
    )
    hooks: dict[str, list[Any]] = {"private_token": [events.append], "verdict": [events.append]}
    for name, listed in options.pop("hooks", {}).items():
        hooks[name] = [*hooks.get(name, []), *listed]
    return door(
        app,
        rules=[
            Rule("/comments", clearance=True, private_tokens=True),
            Rule("/login", clearance=True),
            Rule("/signup"),
        ],
        provider=ProofOfWork(POW_SECRET, max_number=50),
        clearance=Clearance(SECRET, ttl=60, secure=False),
        private_tokens=tokens,
        event_hooks=hooks,
        **options,
    )


@pytest.fixture(params=DOORS, ids=[d[0] for d in DOORS])
def site(
    request: pytest.FixtureRequest, issuer: Issuer, issuer_site: tuple[IssuerSite, str]
) -> Iterator[Site]:
    _, door, app, serve = request.param
    events: list[Any] = []
    guard = _guard(door, app, issuer_site[1], events)
    with serve(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
        yield Site(client, issuer, events)


def test_a_token_mints_a_clearance_that_clears_only_opted_in_rules(
    site: Site, issuer_site: tuple[IssuerSite, str]
) -> None:
    challenge = TokenChallenge.decode(site.challenge())
    assert challenge is not None
    assert (challenge.issuer_name, challenge.origin_info) == (b"issuer.test", b"site.test")
    assert issuer_site[0].hits == 1  # the door fetched the directory once, and cached it
    redeemed = site.redeem(site.token())
    assert redeemed.status_code == 200 and redeemed.json() == {"cleared": True}
    assert redeemed.headers["cache-control"] == "no-store"
    cookie = _cookie(redeemed)
    assert "HttpOnly" in redeemed.headers["set-cookie"]

    passed = site.post("/comments", data={}, headers=cookie)
    assert passed.status_code == 200 and passed.json()["outcome"] == "passed"
    verdicts = [e for e in site.events if isinstance(e, VerdictEvent)]
    # Let through by the clearance the token minted, not by a token or a captcha judged now.
    assert verdicts[-1].provider == "private_token" and verdicts[-1].code == "clearance"
    # The same cookie is no captcha for a rule that did not opt in, nor for one with no
    # clearance at all: they still ask for their captcha.
    assert site.post("/login", data={}, headers=cookie).status_code == 403
    assert site.post("/signup", data={}, headers=cookie).status_code == 403
    # Without the cookie the opted-in rule asks for its captcha too.
    assert site.post("/comments", data={}).status_code == 403
    # And the captcha still works there.
    solution = solve_pow(site.client.get("/captcha-guard/challenge").json())
    assert site.post("/comments", data={"altcha": solution}).status_code == 200
    assert issuer_site[0].hits == 1
    codes = [(e.action, e.code) for e in site.events if isinstance(e, PrivateTokenEvent)]
    assert ("directory", "ok") in codes and ("challenge", "sent") in codes
    assert ("redeem", "valid") in codes


def test_a_token_is_spent_once(site: Site) -> None:
    authorization = site.token()
    assert site.redeem(authorization).status_code == 200
    again = site.redeem(authorization)
    assert again.status_code == 403
    assert again.json() == {"cleared": False, "error": "private_token_replayed"}
    assert "set-cookie" not in again.headers
    # Inline on the protected request too: a spent token clears nothing.
    inline = site.post("/comments", data={}, headers={"authorization": authorization})
    assert inline.status_code == 403


def test_a_token_on_the_protected_request_itself(site: Site) -> None:
    answer = site.post("/comments", data={}, headers={"authorization": site.token()})
    assert answer.status_code == 200 and answer.json()["outcome"] == "passed"
    cookie = _cookie(answer)
    assert site.post("/comments", data={}, headers=cookie).status_code == 200
    # A rule that did not opt in ignores the token and asks for its captcha.
    assert site.post("/login", data={}, headers={"authorization": site.token()}).status_code == 403


@pytest.mark.parametrize(
    "forge",
    ["flip", "stranger", "other_origin", "garbage", "empty"],
)
def test_forged_tokens_clear_nothing(site: Site, forge: str) -> None:
    challenge = site.challenge()
    if forge == "flip":
        raw, _, _ = issue_token(site.issuer, challenge)
        authorization = f'PrivateToken token="{b64encode(raw[:-1] + bytes([raw[-1] ^ 1]))}"'
    elif forge == "stranger":
        raw, _, _ = issue_token(Issuer(), challenge)
        authorization = f'PrivateToken token="{b64encode(raw)}"'
    elif forge == "other_origin":
        parsed = TokenChallenge.decode(challenge)
        assert parsed is not None
        moved = TokenChallenge(2, parsed.issuer_name, parsed.redemption_context, b"evil.test")
        authorization = site.token(moved.encode())
    elif forge == "garbage":
        authorization = "PrivateToken token=" + "A" * 5000
    else:
        authorization = 'PrivateToken token=""'
    answer = site.redeem(authorization)
    assert answer.status_code == 403 and answer.json()["cleared"] is False
    assert "set-cookie" not in answer.headers
    inline = site.post("/comments", data={}, headers={"authorization": authorization})
    assert inline.status_code == 403


@pytest.mark.parametrize(("door", "app", "serve"), [d[1:] for d in DOORS], ids=["asgi", "wsgi"])
def test_grease_sometimes_does_not_challenge(
    door: Door, app: Any, serve: Any, issuer_site: tuple[IssuerSite, str]
) -> None:
    events: list[Any] = []
    guard = _guard(door, app, issuer_site[1], events, grease=0.5, random=lambda: 0.25)
    with serve(guard) as url:
        answer = httpx.get(url + PATH, verify=TLS)
    assert answer.status_code == 200 and answer.json() == {"cleared": False}
    assert "www-authenticate" not in answer.headers
    assert ("challenge", "greased") in [(e.action, e.code) for e in events]


@pytest.mark.parametrize(("door", "app", "serve"), [d[1:] for d in DOORS], ids=["asgi", "wsgi"])
def test_no_issuer_key_means_off_and_keys_are_kept_on_failure(
    door: Door,
    app: Any,
    serve: Any,
    issuer: Issuer,
    issuer_site: tuple[IssuerSite, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    site_state, directory = issuer_site
    site_state.up = False
    events: list[Any] = []
    guard = _guard(door, app, directory, events)
    with serve(guard) as url:
        off = httpx.get(url + PATH, verify=TLS)
        assert off.status_code == 200 and off.json() == {"cleared": False}
        assert "www-authenticate" not in off.headers
        assert ("directory", "failed") in [(e.action, e.code) for e in events]
        # The protected rules work as before: the captcha.
        assert httpx.post(url + "/comments", data={}, verify=TLS).status_code == 403
    site_state.up = True
    # Keys fetched once stay when the issuer later fails.
    events.clear()
    clock = FakeClock(1_800_000_000.0)
    guard = _guard(door, app, directory, events, clock=clock)
    with serve(guard) as url, caplog.at_level(logging.WARNING, "captcha_guard"):
        assert httpx.get(url + PATH, verify=TLS).status_code == 401
        hits = site_state.hits
        site_state.up = False
        clock.advance(3599)  # the directory said max-age=3600: still fresh, no fetch
        assert httpx.get(url + PATH, verify=TLS).status_code == 401 and site_state.hits == hits
        clock.advance(2)  # stale: refetched, fails, the keys stay
        assert httpx.get(url + PATH, verify=TLS).status_code == 401 and site_state.hits == hits + 1
        clock.advance(30)  # retried only after retry= (60 s)
        assert httpx.get(url + PATH, verify=TLS).status_code == 401 and site_state.hits == hits + 1
    codes = [(e.action, e.code) for e in events if isinstance(e, PrivateTokenEvent)]
    assert codes.count(("directory", "failed")) == 1
    lines = [r.getMessage() for r in caplog.records if "issuer" in r.getMessage()]
    assert lines == [  # the first guard (no key ever) and the second (its key kept)
        "private token issuer issuer.test: key directory not usable (status 503); 0 key(s) kept",
        "private token issuer issuer.test: key directory not usable (status 503); 1 key(s) kept",
    ]


@pytest.mark.parametrize("door", ["asgi", "wsgi"])
def test_nonces_are_shared_by_every_worker(
    door: str, issuer: Issuer, issuer_site: tuple[IssuerSite, str]
) -> None:
    kind, app = (CaptchaGuard, echo_asgi) if door == "asgi" else (WSGICaptchaGuard, echo_wsgi)
    serve: Any = serve_asgi if door == "asgi" else serve_wsgi
    prefix = "t" + uuid.uuid4().hex[:10]
    with redis_server() as server:
        guards = [
            _guard(
                kind,
                app,
                issuer_site[1],
                [],
                state=RedisState.from_url(f"unix://{server.socket}", prefix=prefix),
            )
            for _ in "12"
        ]
        with serve(guards[0]) as one, serve(guards[1]) as two, httpx.Client(verify=TLS) as client:
            site = Site(httpx.Client(base_url=one, verify=TLS), issuer, [])
            authorization = site.token()
            first = client.get(one + PATH, headers={"authorization": authorization})
            assert first.status_code == 200
            second = client.get(two + PATH, headers={"authorization": authorization})
            assert second.status_code == 403
            assert second.json()["error"] == "private_token_replayed"
            site.client.close()


@pytest.mark.parametrize(("door", "app", "serve"), [d[1:] for d in DOORS], ids=["asgi", "wsgi"])
def test_prometheus_counts_private_tokens(
    door: Door, app: Any, serve: Any, issuer: Issuer, issuer_site: tuple[IssuerSite, str]
) -> None:
    from prometheus_client import CollectorRegistry

    from captcha_guard.prometheus import event_hooks

    registry = CollectorRegistry()
    events: list[Any] = []
    guard = _guard(door, app, issuer_site[1], events, hooks=event_hooks(registry))
    with serve(guard) as url, httpx.Client(base_url=url, verify=TLS) as client:
        site = Site(client, issuer, events)
        authorization = site.token()
        assert site.redeem(authorization).status_code == 200
        assert site.redeem(authorization).status_code == 403

    def count(action: str, code: str) -> float | None:
        labels = {"action": action, "code": code}
        return registry.get_sample_value("captcha_guard_private_tokens_total", labels)

    assert count("directory", "ok") == 1.0
    assert count("challenge", "sent") == 1.0
    assert count("redeem", "valid") == 1.0
    assert count("redeem", "replayed") == 1.0


def test_nothing_a_token_carries_reaches_a_log_or_an_event(
    site: Site, issuer_site: tuple[IssuerSite, str], caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from tests.helpers import assert_logs_clean

    with caplog.at_level(logging.DEBUG):
        minted, _, _ = issue_token(site.issuer, site.challenge())
        encoded = b64encode(minted)
        site.redeem(f'PrivateToken token="{encoded}"')
        site.redeem(f'PrivateToken token="{encoded}"')
        site.post("/comments", data={}, headers={"authorization": "PrivateToken token=" + "B" * 40})
    nonce = b64encode(minted[2:34])
    assert_logs_clean(
        caplog.records, encoded, encoded[:60], nonce, nonce[:40], TOKEN_SECRET, SECRET
    )
    for event in site.events:
        assert encoded[:40] not in repr(event) and nonce[:40] not in repr(event)


@given(st.text(max_size=600))
@settings(max_examples=200, deadline=None)
def test_any_authorization_header_is_judged_without_raising(text: str) -> None:
    tokens = PrivateTokens(
        TOKEN_SECRET,
        [TokenIssuer("issuer.test", keys=[_FUZZ_ISSUER.spki], fetch=False)],
        origin="site.test",
    )
    assert tokens.check(text).status.value in {s.value for s in TokenStatus}
    assert tokens.check("PrivateToken token=" + text).status is not TokenStatus.VALID


def test_no_challenge_where_no_cookie_could_be_set(site: Site) -> None:
    """Plain HTTP to a public host name: a clearance cookie cannot be set there, so the
    device is not asked for a token, and a token sent anyway is not spent."""
    authorization = site.token()
    public = {"host": "site.test"}
    asked = site.client.get(PATH, headers=public)
    assert asked.status_code == 200 and "www-authenticate" not in asked.headers
    sent = site.client.get(PATH, headers={**public, "authorization": authorization})
    assert sent.json() == {"cleared": False} and "set-cookie" not in sent.headers
    assert site.redeem(authorization).json() == {"cleared": True}  # still unspent


def test_other_credentials_on_an_opted_in_rule_are_left_alone(
    site: Site, issuer_site: tuple[IssuerSite, str]
) -> None:
    answer = site.post("/comments", data={}, headers={"authorization": "Bearer abc.def"})
    assert answer.status_code == 403  # the captcha, as without any header
    assert issuer_site[0].hits == 0  # and no key fetch on its account
    assert not [e for e in site.events if isinstance(e, PrivateTokenEvent)]
