"""A Django project whose login is protected by captcha_guard.django (GeeTest v4).

Settings, from environment variables:
    DJANGO_SECRET_KEY     Django's own SECRET_KEY                                 required
    GEETEST_CAPTCHA_ID    your captcha id (GeeTest console)                       required
    GEETEST_CAPTCHA_KEY   its private key; never sent to the browser              required
    GEETEST_ENDPOINT      the /validate URL; default: GeeTest's (mainland China)  optional

Run:  cd examples/django_project && python manage.py runserver
Check: python manage.py check   (the checks of ``captcha-guard check``)

Everything captcha_guard needs is the block marked below: the app, the middleware, and
CAPTCHA_GUARD; then ``@captcha_required`` on the view (site_app/views.py).
"""

import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "site_app.urls"
WSGI_APPLICATION = "site_app.wsgi.application"
INSTALLED_APPS = ["site_app"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DATABASES: dict[str, dict[str, str]] = {}

# captcha_guard: the whole setup.
from captcha_guard import GeeTest  # noqa: E402

INSTALLED_APPS += ["captcha_guard.django"]
MIDDLEWARE += ["captcha_guard.django.CaptchaGuardMiddleware"]
CAPTCHA_GUARD = {
    "provider": GeeTest(
        os.environ["GEETEST_CAPTCHA_ID"],
        os.environ["GEETEST_CAPTCHA_KEY"],
        endpoint=os.environ.get("GEETEST_ENDPOINT"),
    ),
}
