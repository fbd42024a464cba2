"""THE TABLE: one ``WidgetSpec`` per provider name (``Provider.name``). Adding a provider's
widget is adding one entry here (and its test case in tests/page/test_widgets.py's ``CASES``).

Each entry follows the vendor's own documentation of its client-side API: the script URL, how
to render explicitly into a given element, the callback that hands over the token, and the
call that gives the widget a fresh challenge (``reset``). That last one is why this table
exists: a token is spent as soon as the server has sent it to the vendor, even when the app
then answers 422 or a CSRF 403, so the page must ask for a new one after any non-2xx answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from ._spec import ProviderLike, WidgetEntry, WidgetSpec

# ---------------------------------------------------------------- the siteverify family
# reCAPTCHA, hCaptcha and Turnstile share one client API: ``?onload=...&render=explicit``,
# ``render(container, {sitekey, callback, "expired-callback"})`` returning a widget id, and
# ``reset(widgetId)``. Only the global's name differs.


def _siteverify(script: str, api: str) -> WidgetSpec:
    return WidgetSpec(
        script=script,
        onload=True,
        element='<div class="captcha-guard-box" id="{id}-box"></div>',
        params=_sitekey_and_field,
        fields=lambda provider: (provider.field,),
        hidden=_renamed_field,
        mount=(
            "function (box, o, x) {"
            f" x.vendor = {api}.render(box, Object.assign({{sitekey: o.sitekey,"
            " callback: function (t) { x.put(o.field, t); },"
            " 'expired-callback': function () { x.put(o.field, ''); }}, o.vendor)); }"
        ),
        reset=f"function (box, o, x) {{ if (x.vendor !== undefined) {api}.reset(x.vendor); }}",
    )


def _sitekey_and_field(provider: ProviderLike) -> Mapping[str, str | None]:
    return {"sitekey": getattr(provider, "sitekey", None), "field": provider.field}


def _renamed_field(provider: ProviderLike) -> Sequence[str]:
    # The vendor's widget posts its token under its own fixed name; a provider configured to
    # read another (``field=``) gets a hidden input of that name, filled by the callback.
    return (provider.field,) if provider.field != type(provider).default_field else ()


# ---------------------------------------------------------------- GeeTest v4

_GEETEST_FIELDS = ("lot_number", "captcha_output", "pass_token", "gen_time")

GEETEST = WidgetSpec(
    script="https://static.geetest.com/v4/gt4.js",
    script_attributes="defer",
    ready="typeof window.initGeetest4 === 'function'",
    element='<div class="captcha-guard-box" id="{id}-box"></div>',
    params=lambda provider: {"sitekey": provider.captcha_id},
    fields=lambda provider: _GEETEST_FIELDS,
    hidden=lambda provider: _GEETEST_FIELDS,
    sitekey_keyword="captcha_id",
    mount=(
        "function (box, o, x) {"
        " window.initGeetest4(Object.assign({captchaId: o.sitekey, product: 'float'}, o.vendor),"
        " function (c) { x.vendor = c; c.appendTo(box);"
        " c.onSuccess(function () { var r = c.getValidate();"
        " o.fields.forEach(function (n) { x.put(n, r[n]); }); }); }); }"
    ),
    reset="function (box, o, x) { if (x.vendor) x.vendor.reset(); }",
)

# ---------------------------------------------------------------- Alibaba Cloud CAPTCHA 2.0

ALIYUN = WidgetSpec(
    script="https://o.alicdn.com/captcha-frontend/aliyunCaptcha/AliyunCaptcha.js",
    script_attributes="defer",
    # The SDK reads its region and the account's prefix from this global when it loads.
    setup=(
        "function (box, o, x) { window.AliyunCaptchaConfig = {region: o.region,"
        " prefix: o.sitekey}; }"
    ),
    ready="typeof window.initAliyunCaptcha === 'function'",
    element='<div class="captcha-guard-box" id="{id}-box"></div>',
    params=lambda provider: {
        "sitekey": getattr(provider, "prefix", None),
        "scene": provider.scene_id,
        "region": provider.region,
        "field": provider.field,
    },
    fields=lambda provider: (provider.field,),
    hidden=lambda provider: (provider.field,),
    sitekey_keyword="prefix",
    mount=(
        "function (box, o, x) {"
        " var form = box.closest('form'),"
        " button = form && form.querySelector('[type=submit], button:not([type])');"
        " if (button && !button.id) button.id = box.id + '-button';"
        " window.initAliyunCaptcha(Object.assign({SceneId: o.scene, mode: 'embed',"
        " element: '#' + box.id, button: '#' + (button ? button.id : box.id),"
        " success: function (p) { x.put(o.field, p); }, fail: function () {},"
        " getInstance: function (i) { x.vendor = i; }}, o.vendor)); }"
    ),
    reset="function (box, o, x) { if (x.vendor && x.vendor.refresh) x.vendor.refresh(); }",
)

# ---------------------------------------------------------------- ProofOfWork (ALTCHA)
# The ALTCHA widget is a custom element that fetches our challenge itself and posts its
# solution in a form field; 3.x reads ``challenge=``, 2.x ``challengeurl=``, so both are set.

ALTCHA_SCRIPT = "https://cdn.jsdelivr.net/npm/altcha@3/dist/main/altcha.min.js"

PROOF_OF_WORK = WidgetSpec(
    script=ALTCHA_SCRIPT,
    script_attributes='type="module"',
    ready="!!(window.customElements && window.customElements.get('altcha-widget'))",
    element=(
        '<altcha-widget class="captcha-guard-box" id="{id}-box" challenge="{challenge}"'
        ' challengeurl="{challenge}" name="{field}"></altcha-widget>'
    ),
    params=lambda provider: {
        # Nothing to keep secret or register: the challenge path is the whole "site key".
        "sitekey": provider.challenge_path,
        "challenge": provider.challenge_path,
        "field": provider.field,
    },
    fields=lambda provider: (provider.field,),
    sitekey_keyword="challenge_path",
    mount=(
        "function (box, o, x) {"
        " Object.keys(o.vendor).forEach(function (k) { box.setAttribute(k, o.vendor[k]); });"
        " box.addEventListener('statechange', function (e) { var d = e.detail || {};"
        " x.put(o.field, d.state === 'verified' && d.payload ? d.payload : ''); }); }"
    ),
    reset="function (box, o, x) { if (typeof box.reset === 'function') box.reset(); }",
)

# ---------------------------------------------------------------- Tencent Cloud Captcha
# ``new TencentCaptcha(CaptchaAppId, callback, options)`` is a pop-up with no element of its
# own; ``show()`` opens it and the callback gets ``{ret, ticket, randstr}`` (ret 0: solved; 2:
# closed by the user). A ``trerror_`` disaster ticket also comes with ret 0 and is posted like
# any other: the gate, not the page, decides what it is worth. An instance is not reusable
# after its ticket is spent, so a reset destroys it and shows a new one.

_TENCENT_FIELDS = ("ticket", "randstr")

TENCENT = WidgetSpec(
    script="https://turing.captcha.qcloud.com/TCaptcha.js",
    script_attributes="defer",
    ready="typeof window.TencentCaptcha === 'function'",
    element='<div class="captcha-guard-box" id="{id}-box"></div>',
    params=lambda provider: {"sitekey": str(provider.captcha_app_id)},
    fields=lambda provider: _TENCENT_FIELDS,
    hidden=lambda provider: _TENCENT_FIELDS,
    sitekey_keyword="captcha_app_id",
    mount=(
        "function (box, o, x) {"
        " x.vendor = new window.TencentCaptcha(o.sitekey, function (r) {"
        " var ok = r && r.ret === 0 && r.ticket;"
        " o.fields.forEach(function (n) { x.put(n, ok ? r[n] : ''); }); }, o.vendor);"
        " x.vendor.show(); }"
    ),
    reset=(
        "function (box, o, x) { if (x.vendor && x.vendor.destroy) x.vendor.destroy();"
        " x.mountFn(box, o, x); }"
    ),
)

# ---------------------------------------------------------------- Friendly Captcha
# Both versions' site scripts render every ``.frc-captcha`` element on their own and put the
# token in a hidden input inside it (v2 ``frc-captcha-response``, v1 ``frc-captcha-solution``),
# so there is nothing to mount but a listener that keeps the runtime's copy of the token.

FRIENDLY_SDK = "https://cdn.jsdelivr.net/npm/@friendlycaptcha/sdk@1.0.2/"
FRIENDLY_V1 = "https://cdn.jsdelivr.net/npm/friendly-challenge@0.9.20/"


def _friendly_params(provider: ProviderLike) -> Mapping[str, str | None]:
    # An EU plan's widget must talk to the EU API too (data-api-endpoint="eu").
    eu = (urlsplit(provider.endpoint).hostname or "").startswith("eu.")
    return {
        "sitekey": provider.sitekey,
        "field": provider.field,
        "api": "eu" if eu else "global",
    }


def _friendly_spec(
    base: str, module: str, nomodule: str, attributes: str, *, mount: str, reset: str
) -> WidgetSpec:
    """One Friendly Captcha version: its module script and ``nomodule`` twin under ``base``,
    the ``.frc-captcha`` element with ``attributes``."""
    return WidgetSpec(
        script=base + module,
        nomodule_script=base + nomodule,
        script_attributes='type="module" async defer',
        element=(
            '<div class="frc-captcha captcha-guard-box" id="{id}-box" data-sitekey="{sitekey}"'
            f"{attributes}></div>"
        ),
        params=_friendly_params,
        fields=lambda provider: (provider.field,),
        mount=mount,
        reset=reset,
    )


FRIENDLY_CAPTCHA_V2 = _friendly_spec(
    FRIENDLY_SDK,
    "site.min.js",
    "site.compat.min.js",
    ' data-api-endpoint="{api}"',
    mount=(
        "function (box, o, x) {"
        " box.addEventListener('frc:widget.complete', function (e) {"
        " x.put(o.field, e.detail.response); });"
        " box.addEventListener('frc:widget.expire', function () { x.put(o.field, ''); }); }"
    ),
    reset=(
        "function (box, o, x) { if (!window.frcaptcha) return;"
        " window.frcaptcha.getAllWidgets().forEach(function (w) {"
        " if (w.getElement() === box) w.reset(); }); }"
    ),
)

FRIENDLY_CAPTCHA_V1 = _friendly_spec(
    FRIENDLY_V1,
    "widget.module.min.js",
    "widget.min.js",
    "",
    mount="function (box, o, x) {}",
    # v1 offers only the page's last auto-rendered widget: one v1 widget per page.
    reset=(
        "function (box, o, x) { var f = window.friendlyChallenge;"
        " if (f && f.autoWidget) f.autoWidget.reset(); }"
    ),
)


def _friendly(provider: ProviderLike) -> WidgetSpec:
    return FRIENDLY_CAPTCHA_V1 if provider.version == 1 else FRIENDLY_CAPTCHA_V2


# ---------------------------------------------------------------- Cap
# ``<cap-widget>`` is a custom element pointed at the instance's ``/<site-key>/`` API; inside a
# form it adds the hidden ``cap-token`` input itself and fires ``solve`` with the token.

CAP_SCRIPT = "https://cdn.jsdelivr.net/npm/cap-widget@0.1.57"

CAP = WidgetSpec(
    script=CAP_SCRIPT,
    script_attributes='type="module"',
    ready="!!(window.customElements && window.customElements.get('cap-widget'))",
    element=(
        '<cap-widget class="captcha-guard-box" id="{id}-box"'
        ' data-cap-api-endpoint="{api}"></cap-widget>'
    ),
    params=lambda provider: {
        "sitekey": provider.site_key,
        "api": f"{provider.instance}/{provider.site_key}/",
    },
    fields=lambda provider: ("cap-token",),
    sitekey_keyword="site_key",
    mount=(
        "function (box, o, x) {"
        " box.addEventListener('solve', function (e) { x.put(o.fields[0], e.detail.token); });"
        " box.addEventListener('reset', function () { x.put(o.fields[0], ''); }); }"
    ),
    reset="function (box, o, x) { if (typeof box.reset === 'function') box.reset(); }",
)

# ---------------------------------------------------------------- the table

WIDGETS: dict[str, WidgetEntry] = {
    "geetest": GEETEST,
    "aliyun": ALIYUN,
    "recaptcha": _siteverify(
        "https://www.google.com/recaptcha/api.js?onload={onload}&render=explicit", "grecaptcha"
    ),
    "hcaptcha": _siteverify(
        "https://js.hcaptcha.com/1/api.js?onload={onload}&render=explicit", "hcaptcha"
    ),
    "turnstile": _siteverify(
        "https://challenges.cloudflare.com/turnstile/v0/api.js?onload={onload}&render=explicit",
        "turnstile",
    ),
    "proof_of_work": PROOF_OF_WORK,
    "tencent": TENCENT,
    "friendly-captcha": _friendly,
    "cap": CAP,
    # New providers' widgets go here, one entry each.
}

#: Providers without a page widget, and why: ``widget()`` says so instead of a bare KeyError.
NO_WIDGET: dict[str, str] = {
    "deepknow": (
        "DeepKnow has no page widget: its session_id comes from GeeTest's DeepKnow client SDK"
        " (web, iOS, Android), which the site integrates with the vendor's own instructions"
    ),
}

__all__ = ["ALTCHA_SCRIPT", "NO_WIDGET", "WIDGETS"]
