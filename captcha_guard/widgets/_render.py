"""Rendering one widget snippet: the element, the registration script and the vendor's script.

The output is three pieces, in this order, so that it works wherever it is pasted: the element
(which the vendor renders into), an inline script that defines the runtime once and registers
this widget (and the vendor's ``onload`` callback, which must exist before the vendor's script
runs), then the vendor's script tag. Every value is escaped for where it lands: HTML attributes
with ``html.escape``, the script's JSON with ``<``, ``>``, ``&`` and the line separators as
``\\u`` escapes so no value can close the ``<script>`` element.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from typing import Literal

from ._runtime import RUNTIME
from ._spec import ProviderLike, WidgetSpec
from ._table import NO_WIDGET, WIDGETS

Mode = Literal["form", "fetch"]
_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")


class Snippet(str):
    """HTML that is safe as it is: Jinja and Django see ``__html__`` and do not escape it."""

    __slots__ = ()

    def __html__(self) -> str:
        return str(self)


def spec_for(provider: ProviderLike) -> WidgetSpec:
    name = getattr(provider, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"widget: not a captcha_guard provider: {provider!r}")
    if name in NO_WIDGET:
        raise LookupError(f"widget: {NO_WIDGET[name]}")
    try:
        entry = WIDGETS[name]
    except KeyError:
        raise LookupError(
            f"widget: no page widget is known for provider {name!r}"
            " (add its WidgetSpec to captcha_guard/widgets/_table.py)"
        ) from None
    return entry if isinstance(entry, WidgetSpec) else entry(provider)


def widget(
    provider: ProviderLike,
    *,
    mode: Mode = "form",
    nonce: str | None = None,
    sitekey: str | None = None,
    script: str | None = None,
    element_id: str | None = None,
    include_script: bool = True,
    options: Mapping[str, object] | None = None,
) -> Snippet:
    """The HTML snippet of ``provider``'s widget.

    ``mode="form"``: put it inside the ``<form>``; the fields post with it. ``mode="fetch"``:
    the enclosing form is sent with ``fetch()`` instead, the answer is dispatched on the form
    as a ``captcha-guard:answer`` event (``event.detail.response``), and the widget is reset
    when it is not 2xx. Either way ``window.captchaGuard`` offers ``fetch(url, init, el)``,
    ``fields(el)`` (the captcha fields as an object, for a JSON body), ``header(el)`` (the
    same for the ``X-Captcha`` header) and ``reset(el)``.

    ``nonce`` is the page's CSP nonce, set on both script tags. ``sitekey`` overrides the
    provider's (``sitekey=``, GeeTest's ``captcha_id``, Alibaba Cloud's ``prefix``).
    ``script`` replaces the vendor's script URL (a self-hosted ALTCHA bundle, a mirror);
    ``include_script=False`` leaves the tag out for a second widget of the same vendor on one
    page. ``element_id`` names the element (default ``captcha-guard-<provider>``).
    ``options`` go to the vendor's render call as they are (a theme, a language, a size).
    Raises ``LookupError`` for a provider without a page widget (DeepKnow), ``ValueError``
    for one without the site key its widget needs.
    """
    spec = spec_for(provider)
    if mode not in ("form", "fetch"):
        raise ValueError("widget: mode must be 'form' or 'fetch'")
    name: str = provider.name
    box_id = element_id if element_id is not None else f"captcha-guard-{name.replace('_', '-')}"
    if not _ID.fullmatch(box_id):
        raise ValueError("widget: element_id must be a letter then letters, digits, - or _")
    params = {k: v for k, v in spec.params(provider).items()}
    if sitekey is not None:
        params["sitekey"] = sitekey
    if not params.get("sitekey"):
        raise ValueError(
            f"widget: {type(provider).__name__} needs {spec.sitekey_keyword}= for its widget"
            " (or give widget(sitekey=...))"
        )
    onload = f"captchaGuardOnload_{name}" if spec.onload else ""
    fields = list(spec.fields(provider))
    config = {
        **{k: v for k, v in params.items() if v is not None},
        "provider": name,
        "mode": mode,
        "fields": fields,
        "onload": onload,
        "vendor": dict(options or {}),
    }
    ready = f"function () {{ return !!window.captchaGuard.vendorReady[{_js(onload)}]; }}"
    if not spec.onload:
        ready = f"function () {{ return {spec.ready}; }}"
    escaped = {k: html.escape(v or "", quote=True) for k, v in params.items()}
    inner = spec.element.format(id=box_id, **escaped)
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(n, quote=True)}"'
        f' data-captcha-guard-field="{html.escape(n, quote=True)}" value="">'
        for n in spec.hidden(provider)
    )
    nonce_attr = f' nonce="{html.escape(nonce, quote=True)}"' if nonce else ""
    registration = (
        f"<script{nonce_attr}>{RUNTIME}"
        f"window.captchaGuard.add(document.getElementById({_js(box_id)}), {_js(config)},"
        f" {ready}, {spec.setup or 'function () {}'}, {spec.mount}, {spec.reset});</script>"
    )
    parts = [
        f'<div class="captcha-guard" id="{box_id}" data-captcha-guard="{html.escape(name)}"'
        f' data-captcha-guard-mode="{mode}">{inner}{hidden}</div>',
        registration,
    ]
    if include_script:
        url = (spec.script if script is None else script).replace("{onload}", onload)
        parts.append(
            f'<script src="{html.escape(url, quote=True)}" {spec.script_attributes}'
            f"{nonce_attr}></script>"
        )
        if spec.nomodule_script and script is None:
            parts.append(
                f'<script nomodule src="{html.escape(spec.nomodule_script, quote=True)}"'
                f" async defer{nonce_attr}></script>"
            )
    return Snippet("\n".join(parts))


def _js(value: object) -> str:
    """``value`` as JSON that cannot end the script element it is written into."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


__all__ = ["Mode", "Snippet", "spec_for", "widget"]
