"""Django: the gate inside the project, judging the view Django's router chose.

    # settings.py
    INSTALLED_APPS += ["captcha_guard.django"]
    MIDDLEWARE += ["captcha_guard.django.CaptchaGuardMiddleware"]
    CAPTCHA_GUARD = {"provider": GeeTest(...), "rules": [Rule("/contact")]}  # or "captcha.toml"

    # views.py
    from captcha_guard.django import captcha_required

    @captcha_required                    # or @captcha_required(provider="x", fail_open=False)
    def login(request): ...              # the verdict is request.captcha

The middleware applies ``rules=`` by path and serves proof-of-work challenges; the decorator
protects a view (function, class-based, Django REST framework) wherever it is routed, and reads
the fields from Django's own parsed request. ``manage.py check`` runs ``captcha-guard check``'s
checks. A refusal is the gate's translated page (JSON for JSON clients), a site's own
``captcha_guard/rejected.html`` when it has one, or what
``on_reject(denial, request)`` returns.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CaptchaGuardMiddleware", "captcha_required", "guard"]


def __getattr__(name: str) -> Any:
    # Lazily: Django imports this package while it reads INSTALLED_APPS, before settings and
    # the app registry are ready for what the middleware and decorator import.
    if name == "CaptchaGuardMiddleware":
        from ._middleware import CaptchaGuardMiddleware

        return CaptchaGuardMiddleware
    if name == "captcha_required":
        from ._decorator import captcha_required

        return captcha_required
    if name == "guard":
        from ._core import guard

        return guard
    raise AttributeError(name)
