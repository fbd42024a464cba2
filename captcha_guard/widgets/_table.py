"""THE TABLE: one ``WidgetSpec`` per provider name (``Provider.name``). Adding a provider's
widget is adding one entry here (and its test case in tests/test_widgets.py's ``CASES``).

Each entry follows the vendor's own documentation of its client-side API: the script URL, how
to render explicitly into a given element, the callback that hands over the token, and the
call that gives the widget a fresh challenge (``reset``). That last one is why this table
exists: a token is spent as soon as the server has sent it to the vendor, even when the app
then answers 422 or a CSRF 403, so the page must ask for a new one after any non-2xx answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._spec import ProviderLike, WidgetSpec

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

# ---------------------------------------------------------------- the table

WIDGETS: dict[str, WidgetSpec] = {
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
    # New providers' widgets go here, one entry each (Tencent, Friendly Captcha, Cap, ...).
}

#: Providers without a page widget, and why: ``widget()`` says so instead of a bare KeyError.
NO_WIDGET: dict[str, str] = {
    "deepknow": (
        "DeepKnow has no page widget: its session_id comes from GeeTest's DeepKnow client SDK"
        " (web, iOS, Android), which the site integrates with the vendor's own instructions"
    ),
}

__all__ = ["ALTCHA_SCRIPT", "NO_WIDGET", "WIDGETS"]
