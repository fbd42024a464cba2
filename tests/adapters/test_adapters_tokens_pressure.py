"""Private Access Tokens and proof of work under pressure through the framework adapters, with
each framework's own test client: the Django middleware and the Flask extension serve the
private-token path (``Gate.challenge`` answers REDEEM) and the proof-of-work challenge path.

The issuer's key directory is a real server on 127.0.0.1
(tests/private_tokens/test_private_tokens_doors.py's ``IssuerSite``); tokens are minted by
tests/privacy_pass_issuer.py. The FastAPI dependency serves neither path (it judges views; the
challenge paths are the doors' and these two adapters'), so it has no case here."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.http import HttpRequest, JsonResponse
from django.urls import path
from flask import Flask, g

from captcha_guard import Clearance, PrivateTokens, ProofOfWork, Rule, TokenIssuer
from captcha_guard._events import PowLevelEvent, VerdictEvent
from captcha_guard._privacy_pass._auth import parse_challenges
from captcha_guard._privacy_pass._wire import TokenChallenge, b64decode, b64encode
from captcha_guard.flask import CaptchaGuard as FlaskGuard
from tests.adapters.django_harness import django_site
from tests.adapters.django_site import INSTALLED_APPS
from tests.privacy_pass_issuer import Issuer, issue_token
from tests.private_tokens.test_private_tokens_doors import IssuerSite
from tests.providers.test_pow_pressure import BROWSER, DOOR_POLICY, solve
from tests.servers import serve_asgi

SECRET = "clearance-secret-for-adapter-tests-0123"
TOKEN_SECRET = "context-secret-for-adapter-tests-012345"
POW_SECRET = "pow-secret-for-adapter-tests-0123456789"
TOKEN_PATH = "/captcha-guard/private-token"
CHALLENGE_PATH = "/captcha-guard/challenge"


def _outcome(verdict: Any) -> str | None:
    return None if verdict is None else str(verdict.outcome.value)


# The Django site's URLconf (ROOT_URLCONF is this module): two views behind rules.
def _django_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"outcome": _outcome(getattr(request, "captcha", None))})


urlpatterns = [path("comments", _django_view), path("login", _django_view)]


def _fetched(directory: str) -> PrivateTokens:
    """Tokens of the issuer whose key directory is served at ``directory``."""
    issuers = [TokenIssuer("issuer.test", directory=directory)]
    return PrivateTokens(TOKEN_SECRET, issuers, origin="site.test", grease=0.0, clock=time.time)


def _token_keywords(tokens: PrivateTokens, events: list[Any]) -> dict[str, Any]:
    """The door keywords every adapter gets: /comments opts in to token clearances, /login
    allows clearance but not a token's."""
    return {
        "rules": [
            Rule("/comments", clearance=True, private_tokens=True),
            Rule("/login", clearance=True),
        ],
        "provider": ProofOfWork(POW_SECRET, max_number=50),
        "clearance": Clearance(SECRET, ttl=60),
        "private_tokens": tokens,
        "event_hooks": {"private_token": [events.append], "verdict": [events.append]},
    }


def _django_settings(guard: dict[str, Any]) -> dict[str, Any]:
    return {
        "DEBUG": False,
        "SECRET_KEY": "django-adapter-token-tests",
        "ALLOWED_HOSTS": ["*"],
        "ROOT_URLCONF": __name__,
        "INSTALLED_APPS": INSTALLED_APPS,
        "MIDDLEWARE": ["captcha_guard.django.CaptchaGuardMiddleware"],
        "DATABASES": {},
        "CAPTCHA_GUARD": guard,
    }


class Answer:
    """What a test reads of a response, whichever framework's test client made it."""

    def __init__(self, status: int, headers: dict[str, str], json: Any) -> None:
        self.status = status
        self.headers = headers
        self.json = json


# A door as the tests drive it: (method, path, headers, form) -> Answer, no cookie jar kept.
Send = Callable[[str, str, dict[str, str], dict[str, str] | None], Answer]


def _flask_send(app: Flask) -> Send:
    client = app.test_client(use_cookies=False)

    def send(method: str, where: str, headers: dict[str, str], form: dict[str, str] | None) -> Any:
        # Over HTTPS, as the Django client below: a clearance cookie is Secure (never over
        # plain HTTP to a public host), so there the token path is off.
        response = client.open(
            where, method=method, headers=headers, data=form, base_url="https://localhost"
        )
        found = {k.lower(): v for k, v in response.headers.items()}
        return Answer(response.status_code, found, response.get_json(silent=True))

    return send


def _django_send() -> Send:
    from django.test import Client

    def send(method: str, where: str, headers: dict[str, str], form: dict[str, str] | None) -> Any:
        client = Client()  # a fresh jar: only the headers given carry a cookie
        call = client.get if method == "GET" else client.post
        # Over HTTPS: on plain HTTP to a public host ("testserver") no clearance cookie can
        # be set, so the token path is off there, as it should be.
        response = call(where, form or {}, headers=headers, secure=True)
        found = {k.lower(): v for k, v in response.headers.items()}
        if "set-cookie" not in found and response.cookies:  # set by add_headers
            found["set-cookie"] = next(iter(response.cookies.values())).OutputString()
        try:
            document = response.json()
        except ValueError:
            document = None
        return Answer(response.status_code, found, document)

    return send


def _flask_tokens_app(directory: str, events: list[Any]) -> Flask:
    app = Flask(__name__)
    FlaskGuard(app, **_token_keywords(_fetched(directory), events))

    @app.post("/comments")
    def comments() -> dict[str, Any]:
        return {"outcome": _outcome(g.captcha)}

    @app.post("/login")
    def login() -> dict[str, Any]:
        return {"outcome": _outcome(g.captcha)}

    return app


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture(scope="module")
def directory(issuer: Issuer) -> Iterator[str]:
    with serve_asgi(IssuerSite(issuer)) as url:
        yield url + "/.well-known/private-token-issuer-directory"


@pytest.fixture(scope="module")
def django_events(directory: str) -> Iterator[list[Any]]:
    """The Django project of this module, for its tests; its events."""
    events: list[Any] = []
    with django_site(_django_settings(_token_keywords(_fetched(directory), events))):
        yield events


@pytest.fixture(params=["django", "flask"])
def door(request: pytest.FixtureRequest, directory: str) -> Iterator[tuple[Send, list[Any]]]:
    if request.param == "django":
        events = request.getfixturevalue("django_events")
        events.clear()
        yield _django_send(), events
    else:
        events = []
        yield _flask_send(_flask_tokens_app(directory, events)), events


def _challenge(send: Send, issuer: Issuer) -> bytes:
    answer = send("GET", TOKEN_PATH, {}, None)
    assert answer.status == 401
    assert answer.headers["cache-control"] == "no-store"
    parsed = parse_challenges(answer.headers["www-authenticate"]) or []
    (params,) = [p for scheme, p in parsed if scheme == "PrivateToken"]
    assert b64decode(params["token-key"]) == issuer.spki
    raw = b64decode(params["challenge"])
    assert raw is not None
    return raw


def _token(send: Send, issuer: Issuer) -> str:
    minted, _, _ = issue_token(issuer, _challenge(send, issuer))
    return f'PrivateToken token="{b64encode(minted)}"'


def _cookie(answer: Answer) -> dict[str, str]:
    name, _, rest = answer.headers["set-cookie"].partition("=")
    return {"cookie": f"{name}={rest.split(';', 1)[0]}"}


def test_a_token_clears_only_the_opted_in_view(
    door: tuple[Send, list[Any]], issuer: Issuer
) -> None:
    send, events = door
    challenge = TokenChallenge.decode(_challenge(send, issuer))
    assert challenge is not None
    assert (challenge.issuer_name, challenge.origin_info) == (b"issuer.test", b"site.test")

    redeemed = send("GET", TOKEN_PATH, {"authorization": _token(send, issuer)}, None)
    assert redeemed.status == 200 and redeemed.json == {"cleared": True}
    assert redeemed.headers["cache-control"] == "no-store"
    assert "HttpOnly" in redeemed.headers["set-cookie"]
    cookie = _cookie(redeemed)

    passed = send("POST", "/comments", cookie, {})
    assert passed.status == 200 and passed.json == {"outcome": "passed"}
    verdicts = [e for e in events if isinstance(e, VerdictEvent)]
    assert verdicts[-1].provider == "private_token" and verdicts[-1].code == "clearance"
    # A view that allows clearance but did not opt in to tokens still asks for its captcha,
    # and so does the opted-in view without the cookie.
    assert send("POST", "/login", cookie, {}).status == 403
    assert send("POST", "/comments", {}, {}).status == 403


def test_a_token_is_spent_once(door: tuple[Send, list[Any]], issuer: Issuer) -> None:
    send, _ = door
    authorization = _token(send, issuer)
    assert send("GET", TOKEN_PATH, {"authorization": authorization}, None).status == 200
    again = send("GET", TOKEN_PATH, {"authorization": authorization}, None)
    assert again.status == 403
    assert again.json == {"cleared": False, "error": "private_token_replayed"}
    assert "set-cookie" not in again.headers


def test_a_forged_token_clears_nothing(door: tuple[Send, list[Any]], issuer: Issuer) -> None:
    send, _ = door
    minted, _, _ = issue_token(Issuer(), _challenge(send, issuer))  # a key nobody trusts
    forged = send(
        "GET", TOKEN_PATH, {"authorization": f'PrivateToken token="{b64encode(minted)}"'}, None
    )
    assert forged.status == 403 and "set-cookie" not in forged.headers


# Proof of work under pressure: tests/providers/test_pow_pressure.py's conversation, through an
# adapter.


def _pressure_keywords(events: list[PowLevelEvent]) -> dict[str, Any]:
    policy = type(DOOR_POLICY)(**{**DOOR_POLICY.__dict__, "signals": {"automation_user_agent": 1}})
    return {
        "rules": [Rule("/login")],
        "provider": ProofOfWork(POW_SECRET, max_number=50, pressure=policy, escalation=(8, 64)),
        "event_hooks": {"pow_level": [events.append]},
    }


def _conversation(send: Send, events: list[PowLevelEvent]) -> None:
    """Four solutions from one network: the fourth is over its limit of 3, so the next
    challenge for it is one level up, and a pow_level event says so."""
    browser = {"user-agent": BROWSER}
    for _ in range(4):
        challenge = send("GET", CHALLENGE_PATH, browser, None).json
        assert challenge["maxnumber"] == 50
        judged = send("POST", "/login", browser, {"altcha": solve(challenge)})
        assert judged.status == 200 and judged.json == {"outcome": "passed"}
    assert events == [PowLevelEvent("proof_of_work", "network", 0, 1)]
    assert send("GET", CHALLENGE_PATH, browser, None).json["maxnumber"] == 400
    robot = send("GET", CHALLENGE_PATH, {"user-agent": "curl/8.5"}, None).json
    assert robot["maxnumber"] == 3200


def test_pressure_raises_the_level_through_the_django_middleware(
    django_events: list[Any],
) -> None:
    from django.test import override_settings

    events: list[PowLevelEvent] = []
    with override_settings(CAPTCHA_GUARD=_pressure_keywords(events)):
        _conversation(_django_send(), events)


def test_pressure_raises_the_level_through_the_flask_extension() -> None:
    events: list[PowLevelEvent] = []
    app = Flask(__name__)
    FlaskGuard(app, **_pressure_keywords(events))

    @app.post("/login")
    def login() -> dict[str, Any]:
        return {"outcome": _outcome(g.captcha)}

    _conversation(_flask_send(app), events)


def test_fastapi_clears_an_opted_in_rule_on_a_token_but_serves_no_token_path(
    issuer: Issuer,
) -> None:
    """The FastAPI dependency judges views and serves no challenge path: the private-token
    path is not answered (a site serves it with the ASGI door). What it supports is a token
    on the protected request itself, for a rule that opted in, and the cookie that mints."""
    from fastapi import Depends, FastAPI
    from fastapi.testclient import TestClient

    from captcha_guard.fastapi import Captcha

    tokens = PrivateTokens(
        TOKEN_SECRET,
        [TokenIssuer("issuer.test", keys=[issuer.spki], fetch=False)],
        origin="site.test",
        grease=0.0,
    )
    captcha = Captcha(**_token_keywords(tokens, []))
    app = FastAPI()

    @app.post("/comments", dependencies=[Depends(captcha)])
    @app.post("/login", dependencies=[Depends(captcha)])
    async def view() -> dict[str, Any]:
        return {"view": "ran"}

    def token() -> str:
        header = tokens.challenge_header()  # what the door's token path would send
        assert header is not None
        (params,) = [p for s, p in parse_challenges(header) or [] if s == "PrivateToken"]
        challenge = b64decode(params["challenge"])
        assert challenge is not None
        return f'PrivateToken token="{b64encode(issue_token(issuer, challenge)[0])}"'

    with TestClient(app, base_url="https://testserver", cookies=None) as client:
        assert client.get(TOKEN_PATH).status_code == 404
        spent = token()
        inline = client.post("/comments", headers={"authorization": spent})
        assert inline.status_code == 200 and inline.json() == {"view": "ran"}
        name, _, rest = inline.headers["set-cookie"].partition("=")
        cookie = {"cookie": f"{name}={rest.split(';', 1)[0]}"}
        client.cookies.clear()
        assert client.post("/comments", headers=cookie).status_code == 200
        assert client.post("/login", headers=cookie).status_code == 403
        assert client.post("/login", headers={"authorization": token()}).status_code == 403
        client.cookies.clear()
        assert client.post("/comments", headers={"authorization": spent}).status_code == 403
    asyncio.run(captcha.aclose())
