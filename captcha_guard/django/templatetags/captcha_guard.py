"""``{% load captcha_guard %}``: the widget snippet as a Django template tag.

    {% captcha_widget %}                                  the default provider's widget
    {% captcha_widget "turnstile" mode="fetch" %}         a named one of CAPTCHA_GUARD's providers
    {% captcha_widget provider nonce=request.csp_nonce %} a provider object from the context

The providers are those of ``settings.CAPTCHA_GUARD`` (the door's keywords as a dict, or the
path of a TOML file), so the page renders the widget of exactly the provider that will judge
it. The CSP nonce, when not given, is the context's ``csp_nonce`` (Django's ``csp`` context
processor) or ``request.csp_nonce`` (Django's and django-csp's middleware). Any keyword of
``captcha_guard.widgets.widget`` may be given.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from django import template
from django.conf import settings
from django.utils.safestring import SafeString, mark_safe

from captcha_guard.widgets import resolve, widget

register = template.Library()


def captcha_widget(context: template.Context, which: Any = None, **keywords: Any) -> SafeString:
    default, named = _configured()
    if "nonce" not in keywords:
        nonce = context.get("csp_nonce")
        if nonce is None:
            nonce = getattr(context.get("request"), "csp_nonce", None)
        keywords["nonce"] = None if nonce is None else str(nonce)
    # Every value in the snippet was escaped where it lands (widgets._render).
    return mark_safe(widget(resolve(which, default, named), **keywords))


# Registered by a call, not as a decorator: Django's decorators are untyped for mypy.
register.simple_tag(takes_context=True)(captcha_widget)


def _configured() -> tuple[Any, Mapping[str, Any]]:
    """The default provider and the named ones of ``settings.CAPTCHA_GUARD``."""
    setting = getattr(settings, "CAPTCHA_GUARD", None)
    if setting is None:
        return None, {}
    if isinstance(setting, Mapping):
        return setting.get("provider"), dict(setting.get("providers") or {})
    return _from_file(str(setting))


@lru_cache(maxsize=4)
def _from_file(path: str) -> tuple[Any, Mapping[str, Any]]:
    from captcha_guard.config import load

    config = load(path)
    named = {name: spec.provider for name, spec in config.providers.items()}
    default = named.get(config.default_provider) if config.default_provider else None
    return default, named
