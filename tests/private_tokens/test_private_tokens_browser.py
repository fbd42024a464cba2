"""Private Access Tokens in headless Chromium, through the real CaptchaGuard.

Chromium is no Privacy Pass client: the page's script (the one docs/private-access-tokens.md
shows) gets the 401 challenge, reads ``{"cleared": false}`` and would show its captcha. Then
the page plays a Privacy Pass client's part: it hands the challenge to the test, which mints a
token with the blind RSA test issuer, and sends it back in ``Authorization: PrivateToken``.
The browser keeps the clearance cookie (HttpOnly, out of the script's reach) and the next
post to the opted-in rule passes on it alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from captcha_guard import CaptchaGuard, Clearance, PrivateTokens, ProofOfWork, Rule, TokenIssuer
from captcha_guard._privacy_pass._auth import parse_challenges
from captcha_guard._privacy_pass._wire import b64decode, b64encode
from tests.apps import echo_asgi
from tests.browser import Browser, chromium
from tests.privacy_pass_issuer import Issuer, issue_token
from tests.servers import serve_asgi

PAGE = b"<!doctype html><title>tokens</title><h1>tokens</h1>"
# The page script of docs/private-access-tokens.md, reporting instead of showing a captcha.
ASK = """
return (async () => {
  const r = await fetch("/captcha-guard/private-token", {credentials: "same-origin"});
  return [r.status, (await r.json()).cleared, r.headers.get("www-authenticate")];
})();
"""
REDEEM = """
const [token] = arguments;
return (async () => {
  const r = await fetch("/captcha-guard/private-token", {
    credentials: "same-origin", headers: {authorization: `PrivateToken token="${token}"`}});
  return [r.status, (await r.json()).cleared];
})();
"""
POST = """
const [path] = arguments;
return (async () => {
  const r = await fetch(path, {method: "POST", headers: {accept: "application/json"},
    body: new URLSearchParams({})});
  return [r.status, (await r.json()).outcome || null];
})();
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as session:
        yield session


def test_a_browser_without_tokens_falls_back_and_one_with_a_token_is_cleared(
    browser: Browser,
) -> None:
    issuer = Issuer()

    async def site(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": PAGE})
            return
        await echo_asgi(scope, receive, send)

    guard = CaptchaGuard(
        site,
        rules=[Rule("/comments", clearance=True, private_tokens=True), Rule("/login")],
        provider=ProofOfWork("pow-secret-for-token-browser-0123456", max_number=50),
        clearance=Clearance("clearance-secret-for-token-browser-0123", ttl=900, secure=False),
        private_tokens=PrivateTokens(
            "context-secret-for-token-browser-01234",
            [TokenIssuer("issuer.test", keys=[issuer.spki], fetch=False)],
            origin="127.0.0.1",
            grease=0.0,
        ),
    )
    with serve_asgi(guard) as url:
        browser.get(url + "/")
        browser.delete_cookies()
        status, cleared, header = browser.run(ASK)
        assert (status, cleared) == (401, False)  # Chromium does not answer: the captcha
        assert browser.run(POST, "/comments") == [403, None]
        (params,) = [p for s, p in parse_challenges(header) or [] if s == "PrivateToken"]
        challenge = b64decode(params["challenge"])
        assert challenge is not None
        token, _, _ = issue_token(issuer, challenge)
        assert browser.run(REDEEM, b64encode(token)) == [200, True]
        assert browser.run("return document.cookie;") == ""  # HttpOnly
        assert browser.run(POST, "/comments") == [200, "passed"]  # the cookie alone
        assert browser.run(POST, "/login") == [403, None]  # not opted in: its captcha
        assert browser.run(REDEEM, b64encode(token)) == [403, False]  # spent
        held = [c for c in browser.cookies() if c["name"].startswith("cg_clearance-")]
        assert len(held) == 1 and held[0]["httpOnly"] is True
