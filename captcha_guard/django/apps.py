"""The Django app: ``INSTALLED_APPS += ["captcha_guard.django"]`` registers the checks that
``manage.py check`` runs and makes ``captcha_guard/rejected.html`` findable."""

from __future__ import annotations

from django.apps import AppConfig


class CaptchaGuardConfig(AppConfig):
    name = "captcha_guard.django"
    label = "captcha_guard"
    verbose_name = "captcha_guard"

    def ready(self) -> None:
        from django.core import checks

        from ._checks import check_settings

        checks.register(check_settings, checks.Tags.security)
