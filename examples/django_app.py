"""Django as a single-file project under WSGI, with GeeTest v4 on its signup API.

Settings, from environment variables:
    DJANGO_SECRET_KEY     Django's own SECRET_KEY                                 required
    GEETEST_CAPTCHA_ID    your captcha id (GeeTest console)                       required
    GEETEST_CAPTCHA_KEY   its private key; never sent to the browser              required
    GEETEST_ENDPOINT      the /validate URL; default: GeeTest's (mainland China)  optional

Run:  python examples/django_app.py runserver

The gate wraps Django's WSGI application, so it runs before any Django middleware; a view
finds the verdict in ``request.META["captcha_guard.verdict"]``.
"""

from __future__ import annotations

import json
import os
import sys

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ["DJANGO_SECRET_KEY"],
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    WSGI_APPLICATION=f"{__name__}.application",
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
)

from django.core.wsgi import get_wsgi_application  # noqa: E402  (needs the settings above)
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

from captcha_guard import GeeTest, Rule, WSGICaptchaGuard  # noqa: E402


@csrf_exempt  # a JSON API authenticated by the captcha, not by a session cookie
@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    verdict = request.META["captcha_guard.verdict"]
    data = json.loads(request.body)
    return JsonResponse({"user": data.get("user"), "captcha": verdict.outcome.value})


urlpatterns = [path("api/signup", signup)]

application = WSGICaptchaGuard(
    get_wsgi_application(),
    rules=[Rule("/api/signup")],
    provider=GeeTest(
        os.environ["GEETEST_CAPTCHA_ID"],
        os.environ["GEETEST_CAPTCHA_KEY"],
        endpoint=os.environ.get("GEETEST_ENDPOINT"),
    ),
)

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
