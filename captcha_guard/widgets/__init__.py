"""The page side: each provider's widget as a snippet of HTML, for templates.

    from captcha_guard.widgets import widget
    html = widget(provider)                              # inside the <form>
    html = widget(provider, mode="fetch", nonce=nonce)   # the form is sent with fetch()

A snippet is the widget's element, a small inline script and the vendor's script tag; it puts
the fields the gate reads into the form, and it resets the widget after any answer that is not
2xx (a token is spent once the server sent it to the vendor, even when the app then answers 422
or a CSRF 403), after a network error, and when the browser shows the page again from its
back-forward cache. Pure Python: no template engine is imported. ``jinja_global`` makes a Jinja
global of it; ``captcha_guard/django/templatetags/captcha_guard.py`` a Django template tag.

Adding a provider's widget is one ``WidgetSpec`` entry in ``_table.py``'s ``WIDGETS`` (or a function
choosing one by the provider's settings, as Friendly Captcha's v1 and v2 do).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ._render import Mode, Snippet, spec_for, widget
from ._spec import ProviderLike, WidgetEntry, WidgetSpec
from ._table import ALTCHA_SCRIPT, NO_WIDGET, WIDGETS


def jinja_global(
    provider: ProviderLike | None = None,
    *,
    providers: Mapping[str, ProviderLike] | None = None,
) -> Callable[..., Snippet]:
    """A function for ``env.globals["captcha_widget"]``: ``{{ captcha_widget() }}`` renders the
    default ``provider``'s widget, ``{{ captcha_widget("turnstile", mode="fetch",
    nonce=csp_nonce) }}`` a named one of ``providers`` (the door's keywords), and a provider
    object may be given in place of a name. No Jinja import: the snippet's ``__html__`` keeps
    autoescaping off it."""
    named = dict(providers or {})

    def captcha_widget(which: ProviderLike | str | None = None, **keywords: object) -> Snippet:
        chosen = resolve(which, provider, named)
        return widget(chosen, **keywords)  # type: ignore[arg-type]

    return captcha_widget


def resolve(
    which: ProviderLike | str | None,
    default: ProviderLike | None,
    named: Mapping[str, ProviderLike],
) -> ProviderLike:
    """The provider a template asked for: a name of ``named``, an object, or the default."""
    if which is None:
        if default is None:
            raise LookupError("captcha_widget: no default provider configured; name one")
        return default
    if isinstance(which, str):
        try:
            return named[which]
        except KeyError:
            known = ", ".join(sorted(named)) or "none"
            raise LookupError(
                f"captcha_widget: no provider named {which!r} (known: {known})"
            ) from None
    return which


__all__ = [
    "ALTCHA_SCRIPT",
    "NO_WIDGET",
    "WIDGETS",
    "Mode",
    "Snippet",
    "WidgetEntry",
    "WidgetSpec",
    "jinja_global",
    "resolve",
    "spec_for",
    "widget",
]
