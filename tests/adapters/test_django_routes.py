"""captcha_guard.django against Django's own router: every path Django maps to a protected
view is refused without a captcha, however it is spelled (DRF format suffixes, APPEND_SLASH,
i18n_patterns), under uvicorn (ASGI) and gunicorn (WSGI)."""

from __future__ import annotations

import json

from captcha_guard.testing import GeeTestEmulator
from tests.adapter_servers import raw, serve_gunicorn
from tests.adapters import adapter_kit, django_harness
from tests.adapters.django_harness import gunicorn_env
from tests.servers import serve_asgi

# The kit's fixtures, used by name.
emulator = adapter_kit.emulator
served = django_harness.served

PROTECTED = {
    "login",
    "alogin",
    "strict",
    "contact",
    "Feedback",
    "AsyncFeedback",
    "Signup",
    "CommentViewSet",
    "ping",
    "ruled",
}
SPELLINGS = [
    "/login/",
    "/login",
    "/LOGIN/",
    "//login/",
    "/%6Cogin/",
    "/login/;x",
    "/login/%2F",
    "/alogin/",
    "/feedback/",
    "/afeedback",
    "/api/signup",
    "/api/signup/",
    "/api/signup.json",
    "/api/signup.api",
    "/api/signup.JSON",
    "/api/ping",
    "/api/ping.json",
    "/api/comments/",
    "/api/comments",
    "/api/comments.json",
    "/api/comments.api",
    "/en/contact/",
    "/fr/contact/",
    "/contact/",
    "/EN/contact/",
    "/en/contact",
    "/ruled",
    "/ruled/",
]


def routed(path: str) -> str | None:
    """The protected view Django would run for ``path`` (in any of the site's languages)."""
    from urllib.parse import unquote

    from django.conf import settings
    from django.urls import Resolver404, resolve
    from django.utils import translation

    for language, _ in settings.LANGUAGES:
        with translation.override(language):
            try:
                match = resolve(unquote(path))
            except Resolver404:
                continue
        func = match.func
        owner = getattr(func, "view_class", None) or getattr(func, "cls", None)
        name = owner.__name__ if owner is not None else func.__name__
        return name if name in PROTECTED else None
    return None


def differential(url: str) -> set[str]:
    reached = set()
    for spelling in SPELLINGS:
        head = f"POST {spelling} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json"
        status, body = raw(url, head)
        if routed(spelling) is not None:
            if status == 406 and spelling.endswith(".api"):
                # DRF refuses the browsable API's format to a JSON client before the view:
                # no view ran and no captcha was judged.
                continue
            reached.add(spelling)
            assert status == 403, (spelling, status, body)
            assert json.loads(body)["error"] == "captcha_rejected", spelling
        assert b'"view"' not in body, (spelling, status, body)
    return reached


def test_every_path_django_routes_to_a_protected_view_is_refused_asgi(
    emulator: GeeTestEmulator,
) -> None:
    from django.core.asgi import get_asgi_application

    with serve_asgi(get_asgi_application()) as url:
        reached = differential(url)
    # The spellings a middleware in front would have to imitate Django and DRF to catch.
    assert {"/api/signup.json", "/api/comments.json", "/fr/contact/", "/%6Cogin/"} <= reached


def test_every_path_django_routes_to_a_protected_view_is_refused_wsgi(
    served: tuple[GeeTestEmulator, str],
) -> None:
    spec = "django.core.wsgi:get_wsgi_application()"
    with serve_gunicorn(spec, gunicorn_env(served)) as url:
        reached = differential(url)
    assert {"/api/signup.json", "/api/ping.json", "/en/contact/"} <= reached
