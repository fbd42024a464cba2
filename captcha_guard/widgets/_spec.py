"""What the page needs to know of one vendor's widget: one ``WidgetSpec`` per provider name.

A spec is data, not code paths: the vendor's script URL, the element the widget lives in, and
four small JavaScript functions that the shared runtime (``_runtime.py``) calls at the right
moments. Each function receives ``(box, o, x)``: ``box`` the element the vendor renders into,
``o`` the options rendered from the provider (site key, field names, ``vendor`` options given
to ``widget(options=...)``), ``x`` the runtime's record of this widget, where ``x.put(name,
value)`` hands a field value to the page (a hidden input when the widget makes none itself) and
``x.vendor`` keeps whatever the vendor's API returned (a widget id, an instance).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The provider object (any ``captcha_guard.providers.Provider``): typed loosely so this module,
#: like the whole page side, imports nothing of the gate.
ProviderLike = Any


@dataclass(frozen=True)
class WidgetSpec:
    """One vendor's widget.

    ``script`` is the vendor's script URL; ``{onload}`` in it is replaced by the name of the
    global callback the runtime defines when ``onload`` is true (the vendors' explicit
    rendering: the script calls it once its API is ready). ``element`` is the HTML of the box
    the vendor renders into, a ``str.format`` template over ``params`` (values HTML-escaped)
    plus ``{id}`` (the box's id). ``params(provider)`` returns the texts the element and the
    JavaScript read, with ``"sitekey"`` the one a page cannot do without (a missing one is a
    ``ValueError`` naming the provider keyword to set). ``fields(provider)`` names the fields
    the gate reads; ``hidden(provider)`` those the runtime must put in hidden inputs because
    the vendor's widget writes none under that name.

    ``ready`` is a JavaScript expression, true once the vendor's API can be called (ignored
    when ``onload`` is true: the callback says so). ``setup`` runs once per page before the
    vendor's script loads (a global configuration object), ``mount`` renders the widget into
    the box, ``reset`` gives it a fresh challenge: ``function (box, o, x) {...}`` each.
    """

    script: str
    element: str
    params: Callable[[ProviderLike], Mapping[str, str | None]]
    fields: Callable[[ProviderLike], Sequence[str]]
    reset: str
    mount: str = "function (box, o, x) {}"
    ready: str = "true"
    setup: str = ""
    onload: bool = False
    hidden: Callable[[ProviderLike], Sequence[str]] = lambda provider: ()
    #: Attributes of the vendor's script tag (the vendors' own advice: ``async defer``).
    script_attributes: str = "async defer"
    #: The provider keyword that carries the site key, for the error a missing one raises.
    sitekey_keyword: str = "sitekey"
    #: The vendor's ``nomodule`` twin of a ``type="module"`` script, for browsers without ES
    #: modules (rendered after it, with the same nonce; left out when ``widget(script=...)``
    #: replaces the vendor's script, since a mirror or self-hosted copy is the site's choice).
    nomodule_script: str = ""


#: A ``WIDGETS`` entry: a spec, or a function choosing one by the provider's settings (a vendor
#: whose API versions load different scripts, as Friendly Captcha's v1 and v2 do).
WidgetEntry = WidgetSpec | Callable[[ProviderLike], WidgetSpec]


__all__ = ["ProviderLike", "WidgetEntry", "WidgetSpec"]
