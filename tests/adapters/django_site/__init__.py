"""A Django project protected by captcha_guard.django, for tests/adapters/test_django_adapter.py: in
this process (``site_settings``) and under gunicorn (``tests.adapters.django_site.settings``)."""

from __future__ import annotations

from typing import Any

from tests.adapters.adapter_apps import providers

INSTALLED_APPS = ["rest_framework", "captcha_guard.django"]


def site_settings(endpoint: str, captcha_id: str, captcha_key: str) -> dict[str, Any]:
    from captcha_guard import Rule

    return {
        "DEBUG": False,
        "SECRET_KEY": "django-adapter-tests",
        "ALLOWED_HOSTS": ["*"],
        "ROOT_URLCONF": "tests.adapters.django_site.urls",
        "INSTALLED_APPS": INSTALLED_APPS,
        "MIDDLEWARE": [
            "django.middleware.common.CommonMiddleware",
            "django.middleware.locale.LocaleMiddleware",
            "captcha_guard.django.CaptchaGuardMiddleware",
        ],
        "TEMPLATES": [
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
        "DATABASES": {},
        "USE_I18N": True,
        "LANGUAGE_CODE": "en",
        "LANGUAGES": [("en", "English"), ("fr", "French")],
        "APPEND_SLASH": True,
        "REST_FRAMEWORK": {
            "DEFAULT_AUTHENTICATION_CLASSES": [],
            "DEFAULT_PERMISSION_CLASSES": [],
            "UNAUTHENTICATED_USER": None,
        },
        "CAPTCHA_GUARD": {
            "rules": [Rule("/ruled")],
            **providers(endpoint, captcha_id, captcha_key),
        },
    }
