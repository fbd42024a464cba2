"""The gate's own refusal page: its language from Accept-Language (q-values honoured), its way
back (a same-site Referer only, never an off-site link), both doors, ``on_reject`` answers
keeping ``cache-control: no-store``, JSON unchanged, and the page in headless Chromium (a real
form refused and the link followed back; every translation rendered, screenshots in
artifacts/)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from html import escape
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from captcha_guard import CaptchaGuard, Denial, GeeTest, Rule, WSGICaptchaGuard
from captcha_guard._page import negotiate, page, way_back
from captcha_guard._responses import render
from captcha_guard._translations import MESSAGES, TEXTS
from tests import ROOT, TLS
from tests.browser import Browser, chromium
from tests.helpers import RecordingApp, body_receive, call, http_scope
from tests.servers import serve_asgi, serve_wsgi

ARTIFACTS = ROOT / "artifacts"
LANGUAGES = ("en", "zh-Hans", "zh-Hant", "es", "fr", "de", "ja", "pt")
REJECTED = Denial(403, "captcha_rejected", "missing lot_number")


def _provider() -> GeeTest:
    # Never called: every request here is refused for its shape, before any network call.
    return GeeTest("647f5ed2ed8acb4be36784e01556bb71", "k", endpoint="http://127.0.0.1:9/")


# ---------------------------------------------------------------- language


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("", "en"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", "fr"),
        ("en;q=0.5, ja", "ja"),
        ("de;q=0.3, es;q=0.31", "es"),
        ("ko, de;q=0.1", "de"),  # no Korean: the next range with a translation
        ("ko", "en"),
        ("ko, *;q=0.1", "en"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK,zh;q=0.9", "zh-Hant"),
        ("zh-Hant-HK", "zh-Hant"),
        ("zh-hant", "zh-Hant"),
        ("zh-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh-Hans-SG", "zh-Hans"),
        ("zh-Latn", "zh-Hans"),  # RFC 4647 lookup: zh-Latn falls back to zh
        ("pt-BR", "pt"),
        ("PT-pt", "pt"),
        ("de;q=0, es", "es"),  # q=0: "not acceptable"
        ("ja;q=abc, fr", "fr"),  # an unreadable q counts as 0
        ("es;q=1.5", "en"),  # out of range: ignored
        ("ja;level=1;q=0.9, fr;q=0.8", "ja"),
        (" , ;q=1, de ", "de"),
        ("x" * 5000 + ", de", "en"),  # read only so far
        (",".join(["ko"] * 100) + ",de", "en"),  # and only so many ranges
    ],
)
def test_negotiate(header: str, language: str) -> None:
    assert negotiate(header) == language


def test_every_language_translates_every_message() -> None:
    assert set(TEXTS) == set(MESSAGES) == set(LANGUAGES)
    for language in LANGUAGES:
        assert set(MESSAGES[language]) == set(MESSAGES["en"]), language
        assert set(TEXTS[language]) == {"back", "detail"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_page_in_each_language(language: str) -> None:
    html = page(403, "captcha_rejected", "<b>missing</b>", language=language, back="/form?a=1&b=2")
    title, message = MESSAGES[language]["captcha_rejected"]
    assert f'<html lang="{language}">' in html
    assert f"<h1>{escape(title)}</h1>" in html and escape(message) in html
    assert '<a href="/form?a=1&amp;b=2" id="captcha-guard-back">' in html
    assert TEXTS[language]["back"] in html
    assert "&lt;b&gt;missing&lt;/b&gt;" in html and "<b>" not in html
    assert "<title>403 Forbidden</title>" in html


def test_codes_without_a_message_read_as_their_family() -> None:
    assert escape(MESSAGES["de"]["bad_request"][0]) in page(400, "bad_path", "x", language="de")
    assert MESSAGES["ja"]["captcha_unavailable"][0] in page(503, "new_code", "x", language="ja")
    assert escape(MESSAGES["es"]["captcha_rejected"][0]) in page(403, "other", "x", language="es")
    too_many = page(413, "too_many_fields", "x", language="fr")
    assert escape(MESSAGES["fr"]["body_too_large"][0]) in too_many
    assert "Go back" not in page(403, "captcha_rejected", "x")  # no referer, no link


# ---------------------------------------------------------------- the way back


@pytest.mark.parametrize(
    ("referer", "scheme", "host", "back"),
    [
        ("http://shop.test/signup?step=2", "http", "shop.test", "/signup?step=2"),
        ("http://shop.test", "http", "shop.test", "/"),
        ("http://SHOP.test:80/a#frag", "http", "shop.test", "/a"),
        ("https://shop.test/a", "https", "shop.test:443", "/a"),
        # Behind a proxy that ends TLS the door sees http: default ports, same host.
        ("https://shop.test/a", "http", "shop.test", "/a"),
        ("http://127.0.0.1:8000/form", "http", "127.0.0.1:8000", "/form"),
        ("http://127.0.0.1:8001/form", "http", "127.0.0.1:8000", None),
        ("http://evil.test/form", "http", "shop.test", None),
        ("http://shop.test.evil.test/form", "http", "shop.test", None),
        ("http://user:pw@shop.test/form", "http", "shop.test", None),
        ("http://shop.test//evil.test/x", "http", "shop.test", None),
        ("http://shop.test/\\evil.test", "http", "shop.test", None),
        ("http://shop.test/a\nb", "http", "shop.test", None),
        ("javascript:alert(1)//shop.test", "http", "shop.test", None),
        ("ftp://shop.test/a", "http", "shop.test", None),
        ("/relative", "http", "shop.test", None),
        ("http://shop.test:99999/a", "http", "shop.test", None),
        ("http://[::1/a", "http", "shop.test", None),
        ("http://shop.test/a", "http", "", None),
        ("", "http", "shop.test", None),
        ("http://shop.test/" + "a" * 3000, "http", "shop.test", None),
    ],
)
def test_way_back(referer: str, scheme: str, host: str, back: str | None) -> None:
    assert way_back(referer, scheme=scheme, host=host) == back


def test_render_reads_the_request_headers() -> None:
    headers = {"accept-language": "fr", "referer": "http://shop.test/form", "host": "shop.test"}
    names, body = render(REJECTED, as_json=False, request_headers=headers)
    html = body.decode()
    assert escape(MESSAGES["fr"]["captcha_rejected"][0]) in html
    assert 'href="/form"' in html
    assert dict(names)["cache-control"] == "no-store"
    assert dict(names)["vary"] == "accept-language, referer"
    # JSON is unchanged, whatever the language.
    names, body = render(REJECTED, as_json=True, request_headers=headers)
    assert json.loads(body) == {"error": "captcha_rejected", "reason": "missing lot_number"}
    assert "vary" not in dict(names)


# ---------------------------------------------------------------- through the doors


@pytest.mark.asyncio
async def test_asgi_door_translates_and_links_back() -> None:
    guard = CaptchaGuard(RecordingApp(), rules=[Rule("/login")], provider=_provider())
    headers = [
        (b"host", b"shop.test"),
        (b"accept-language", b"es-MX, es;q=0.9"),
        (b"referer", b"http://shop.test/login?next=%2F"),
        (b"content-type", b"application/x-www-form-urlencoded"),
    ]
    sent = await call(guard, http_scope(headers=headers), body_receive(b"a=1"))
    assert sent.status == 403
    html = sent.body.decode()
    assert '<html lang="es">' in html
    assert MESSAGES["es"]["captcha_rejected"][0] in html
    assert 'href="/login?next=%2F"' in html
    assert "missing lot_number" in html
    assert sent.headers["cache-control"] == "no-store"


def _wsgi_call(app: Any, environ: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, dict(headers)

    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], body


def _environ(**extra: str) -> dict[str, Any]:
    body = b"a=1"
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/login",
        "SERVER_NAME": "shop.test",
        "SERVER_PORT": "80",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        **extra,
    }


def _wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"app"]


def test_wsgi_door_translates_and_links_back() -> None:
    guard = WSGICaptchaGuard(_wsgi_app, rules=[Rule("/login")], provider=_provider())
    # No Host header: SERVER_NAME and SERVER_PORT stand in, as PEP 3333 says.
    environ = _environ(HTTP_ACCEPT_LANGUAGE="zh-TW", HTTP_REFERER="http://shop.test:80/login")
    status, _, body = _wsgi_call(guard, environ)
    assert status.startswith("403")
    html = body.decode()
    assert '<html lang="zh-Hant">' in html and MESSAGES["zh-Hant"]["captcha_rejected"][0] in html
    assert 'href="/login"' in html
    environ = _environ(HTTP_HOST="shop.test", HTTP_REFERER="http://evil.test/login")
    _, _, body = _wsgi_call(guard, environ)
    assert "captcha-guard-back" not in body.decode()
    _, _, body = _wsgi_call(guard, _environ(HTTP_ACCEPT="application/json"))
    assert json.loads(body) == {"error": "captcha_rejected", "reason": "missing lot_number"}


@pytest.mark.asyncio
async def test_asgi_on_reject_answers_keep_no_store() -> None:
    def on_reject(denial: Denial, scope: Any) -> Response:
        return PlainTextResponse(
            "custom", status_code=denial.status, headers={"cache-control": "public, max-age=600"}
        )

    guard = CaptchaGuard(
        RecordingApp(), rules=[Rule("/login")], provider=_provider(), on_reject=on_reject
    )
    sent = await call(guard, http_scope(), body_receive(b"{}"))
    assert (sent.status, sent.body) == (403, b"custom")
    raw = sent.messages[0]["headers"]
    assert [v for k, v in raw if k.lower() == b"cache-control"] == [b"no-store"]


def test_wsgi_on_reject_answers_keep_no_store() -> None:
    def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response(
            "403 Forbidden", [("Cache-Control", "max-age=600"), ("content-type", "text/plain")]
        )
        return [b"custom"]

    guard = WSGICaptchaGuard(
        _wsgi_app, rules=[Rule("/login")], provider=_provider(), on_reject=lambda d, e: answer
    )
    status, headers, body = _wsgi_call(guard, _environ())
    assert (status[:3], body) == ("403", b"custom")
    assert headers == {"content-type": "text/plain", "cache-control": "no-store"}


@pytest.mark.slow
def test_on_reject_no_store_on_real_servers() -> None:
    def on_reject(denial: Denial, scope: Any) -> Response:
        return PlainTextResponse(
            "custom", status_code=denial.status, headers={"cache-control": "max-age=60"}
        )

    def wsgi_reject(denial: Denial, environ: Any) -> Callable[..., Iterable[bytes]]:
        def answer(environ: Any, start_response: Callable[..., Any]) -> Iterable[bytes]:
            start_response("403 Forbidden", [("cache-control", "max-age=60")])
            return [b"custom"]

        return answer

    asgi = CaptchaGuard(
        RecordingApp(), rules=[Rule("/login")], provider=_provider(), on_reject=on_reject
    )
    wsgi = WSGICaptchaGuard(
        _wsgi_app, rules=[Rule("/login")], provider=_provider(), on_reject=wsgi_reject
    )
    with serve_asgi(asgi) as asgi_url, serve_wsgi(wsgi) as wsgi_url:
        for url in (asgi_url, wsgi_url):
            answer = httpx.post(url + "/login", data={"a": "1"}, verify=TLS)
            assert answer.status_code == 403
            assert answer.headers.get_list("cache-control") == ["no-store"]


# ---------------------------------------------------------------- in Chromium

FORM = """<!doctype html><html><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in</h1><form method="post" action="/login">
<input name="user" value="ada"><button type="submit">Sign in</button></form></body></html>"""


def _site() -> CaptchaGuard:
    async def form(request: Request) -> Response:
        return HTMLResponse(FORM)

    async def login(request: Request) -> Response:  # never reached without a captcha
        return HTMLResponse("signed in")

    app = Starlette(routes=[Route("/form", form), Route("/login", login, methods=["POST"])])
    return CaptchaGuard(app, rules=[Rule("/login")], provider=_provider())


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    with serve_asgi(_site()) as url:
        yield url


REFUSED = """return location.pathname === "/login" && document.readyState === "complete"
  && {lang: document.documentElement.lang, title: document.querySelector("h1").innerText,
      back: document.getElementById("captcha-guard-back")?.getAttribute("href") ?? null}"""


def _refuse_and_go_back(browser: Browser, url: str) -> dict[str, Any]:
    browser.get(url + "/form")
    browser.click("form button")
    refused: dict[str, Any] = browser.wait_for(REFUSED, what="the refusal page")
    return refused


@pytest.mark.slow
def test_chromium_form_refused_then_the_link_leads_back(site_url: str) -> None:
    with chromium() as browser:
        refused = _refuse_and_go_back(browser, site_url)
        assert refused == {
            "lang": "en",
            "title": MESSAGES["en"]["captcha_rejected"][0],
            "back": "/form",
        }
        browser.screenshot(ARTIFACTS / "refusal-en.png")
        for language in LANGUAGES:
            # The same refusal asked for in each language (fetch may set Accept-Language), then
            # shown as the page, to see every translation rendered.
            shown = browser.run(
                """return fetch("/login", {method: "POST", body: new URLSearchParams({a: "1"}),
                  headers: {"Accept-Language": arguments[0]}}).then(r => r.text()).then(t => {
                  document.open(); document.write(t); document.close();
                  return {lang: document.documentElement.lang,
                          title: document.querySelector("h1").innerText,
                          back: document.getElementById("captcha-guard-back").getAttribute("href")};
                })""",
                {"zh-Hans": "zh-CN", "zh-Hant": "zh-TW"}.get(language, language),
            )
            assert shown == {
                "lang": language,
                "title": MESSAGES[language]["captcha_rejected"][0],
                "back": "/login",  # this refusal came from the refusal page itself
            }
            browser.screenshot(ARTIFACTS / f"refusal-{language}.png")
        browser.click("#captcha-guard-back")
        browser.wait_for("return location.pathname === '/login'", what="the way back")


@pytest.mark.slow
def test_chromium_sends_its_own_language(site_url: str) -> None:
    with chromium(accept_languages="zh-TW,zh,en") as browser:
        refused = _refuse_and_go_back(browser, site_url)
        assert refused["lang"] == "zh-Hant"
        assert refused["title"] == MESSAGES["zh-Hant"]["captcha_rejected"][0]
        browser.screenshot(ARTIFACTS / "refusal-browser-zh-TW.png")
        browser.click("#captcha-guard-back")
        browser.wait_for(
            "return location.pathname === '/form' && document.querySelector('h1').innerText",
            what="the form again",
        )
