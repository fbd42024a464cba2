"""The widget snippets' markup: one case per provider in ``CASES`` (a new provider's widget
adds its case here), the escaping of everything a site passes in, the Jinja global through a
real Jinja environment and the Django tag through a minimal Django template engine. What the
snippets do in a browser is tests/page/test_widgets_browser.py."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jinja2
import pytest

from captcha_guard import (
    AliyunCaptcha,
    Cap,
    DeepKnow,
    FriendlyCaptcha,
    GeeTest,
    HCaptcha,
    ProofOfWork,
    ReCaptcha,
    TencentCaptcha,
    Turnstile,
)
from captcha_guard.widgets import ALTCHA_SCRIPT, NO_WIDGET, WIDGETS, jinja_global, widget

POW_SECRET = "widget-markup-secret-0123456789abcdef"


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[], Any]
    script: str  # the vendor script's URL, as the snippet renders it
    sitekey: str
    fields: tuple[str, ...]
    hidden: tuple[str, ...]  # the hidden inputs the snippet adds itself
    nomodule: str = ""  # the vendor's nomodule twin of its module script, if it has one
    label: str = ""  # the test id, where one provider has several widgets

    @property
    def id(self) -> str:
        return self.label or self.name


FRIENDLY_SDK = "https://cdn.jsdelivr.net/npm/@friendlycaptcha/sdk@1.0.2/"
FRIENDLY_V1 = "https://cdn.jsdelivr.net/npm/friendly-challenge@0.9.20/"


def tencent(**keywords: Any) -> TencentCaptcha:
    return TencentCaptcha(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        captcha_app_id=keywords.pop("captcha_app_id", 190000000),
        app_secret_key="app-secret-key",
        **keywords,
    )


CASES = [
    Case(
        "geetest",
        lambda: GeeTest("647f5ed2ed8acb4be36784e01556bb71", "key"),
        "https://static.geetest.com/v4/gt4.js",
        "647f5ed2ed8acb4be36784e01556bb71",
        ("lot_number", "captcha_output", "pass_token", "gen_time"),
        ("lot_number", "captcha_output", "pass_token", "gen_time"),
    ),
    Case(
        "aliyun",
        lambda: AliyunCaptcha("LTAI5tKey", "secret", scene_id="sc3ne1d", prefix="no8xfe"),
        "https://o.alicdn.com/captcha-frontend/aliyunCaptcha/AliyunCaptcha.js",
        "no8xfe",
        ("captchaVerifyParam",),
        ("captchaVerifyParam",),
    ),
    Case(
        "recaptcha",
        lambda: ReCaptcha("secret", sitekey="6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI"),
        "https://www.google.com/recaptcha/api.js?onload=captchaGuardOnload_recaptcha&amp;render=explicit",
        "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI",
        ("g-recaptcha-response",),
        (),
    ),
    Case(
        "hcaptcha",
        lambda: HCaptcha("secret", sitekey="10000000-ffff-ffff-ffff-000000000001"),
        "https://js.hcaptcha.com/1/api.js?onload=captchaGuardOnload_hcaptcha&amp;render=explicit",
        "10000000-ffff-ffff-ffff-000000000001",
        ("h-captcha-response",),
        (),
    ),
    Case(
        "turnstile",
        lambda: Turnstile("secret", sitekey="1x00000000000000000000AA"),
        "https://challenges.cloudflare.com/turnstile/v0/api.js"
        "?onload=captchaGuardOnload_turnstile&amp;render=explicit",
        "1x00000000000000000000AA",
        ("cf-turnstile-response",),
        (),
    ),
    Case(
        "proof_of_work",
        lambda: ProofOfWork(POW_SECRET),
        ALTCHA_SCRIPT,
        "/captcha-guard/challenge",
        ("altcha",),
        (),
    ),
    Case(
        "tencent",
        tencent,
        "https://turing.captcha.qcloud.com/TCaptcha.js",
        "190000000",
        ("ticket", "randstr"),
        ("ticket", "randstr"),
    ),
    Case(
        "friendly-captcha",
        lambda: FriendlyCaptcha("api-key", sitekey="FCMGEMUD2KTDSQ5H"),
        FRIENDLY_SDK + "site.min.js",
        "FCMGEMUD2KTDSQ5H",
        ("frc-captcha-response",),
        (),
        nomodule=FRIENDLY_SDK + "site.compat.min.js",
    ),
    Case(
        "friendly-captcha",
        lambda: FriendlyCaptcha("secret", sitekey="FCMGEMUD2KTDSQ5H", version=1),
        FRIENDLY_V1 + "widget.module.min.js",
        "FCMGEMUD2KTDSQ5H",
        ("frc-captcha-solution",),
        (),
        nomodule=FRIENDLY_V1 + "widget.min.js",
        label="friendly-captcha-v1",
    ),
    Case(
        "cap",
        lambda: Cap("d9256640cb53", "secret", endpoint="https://cap.example.com/"),
        "https://cdn.jsdelivr.net/npm/cap-widget@0.1.57",
        "d9256640cb53",
        ("cap-token",),
        (),
    ),
]


def config_of(snippet: str) -> dict[str, Any]:
    """The JSON options the registration script hands the runtime."""
    found = re.search(
        r"window\.captchaGuard\.add\(document\.getElementById\(\"[^\"]+\"\), ({.*?}), function",
        snippet,
    )
    assert found is not None, snippet[-600:]
    return dict(json.loads(found.group(1)))


def test_every_provider_with_a_widget_has_a_case() -> None:
    assert {case.name for case in CASES} == set(WIDGETS)
    assert set(NO_WIDGET) == {"deepknow"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_snippet_markup(case: Case) -> None:
    provider = case.make()
    snippet = widget(provider)
    box = f"captcha-guard-{case.name.replace('_', '-')}"
    assert snippet.startswith(
        f'<div class="captcha-guard" id="{box}" data-captcha-guard="{case.name}"'
    )
    assert f'id="{box}-box"' in snippet
    # The element first, then the registration (and the onload global), then the vendor.
    assert snippet.split("\n<script", 1)[0].endswith("</div>")
    assert snippet.rstrip().endswith("></script>")
    assert f'<script src="{case.script}"' in snippet
    if case.nomodule:  # the twin right after the module script, for browsers without modules
        assert snippet.rstrip().endswith(
            f'<script nomodule src="{case.nomodule}" async defer></script>'
        )
        assert 'type="module"' in snippet.split(f'<script src="{case.script}"', 1)[1]
    assert snippet.index("window.captchaGuard.add(") < snippet.index(f'<script src="{case.script}"')
    config = config_of(snippet)
    assert config["sitekey"] == case.sitekey
    assert tuple(config["fields"]) == case.fields
    assert config["mode"] == "form"
    hidden = tuple(
        re.findall(r'<input type="hidden" name="([^"]+)" data-captcha-guard-field', snippet)
    )
    assert hidden == case.hidden
    assert "nonce=" not in snippet


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_nonce_lands_on_every_script_and_fetch_mode_is_passed_on(case: Case) -> None:
    snippet = widget(case.make(), mode="fetch", nonce='n0nce"><script>')
    tags = re.findall(r"<script[^>]*>", snippet)
    assert len(tags) == (3 if case.nomodule else 2)
    for tag in tags:
        assert 'nonce="n0nce&quot;&gt;&lt;script&gt;"' in tag
    assert config_of(snippet)["mode"] == "fetch"
    assert 'data-captcha-guard-mode="fetch"' in snippet


def test_values_cannot_break_out_of_the_markup_or_the_script() -> None:
    hostile = 'k"></div><script>alert(1)</script>\u2028'
    snippet = widget(
        Turnstile("secret", sitekey="ok"),
        sitekey=hostile,
        options={"theme": "</script><script>alert(2)</script>"},
    )
    assert "<script>alert" not in snippet
    assert snippet.count("</script>") == 2
    config = config_of(snippet)
    assert config["sitekey"] == hostile
    assert config["vendor"] == {"theme": "</script><script>alert(2)</script>"}
    pow_snippet = widget(ProofOfWork(POW_SECRET, challenge_path='/c"><b>'))
    assert 'challenge="/c&quot;&gt;&lt;b&gt;"' in pow_snippet


def test_options_script_element_id_and_include_script() -> None:
    provider = HCaptcha("secret", sitekey="10000000-ffff-ffff-ffff-000000000001")
    snippet = widget(
        provider,
        script="https://mirror.example/hcaptcha.js?onload={onload}",
        element_id="signup-captcha",
        options={"theme": "dark"},
    )
    assert (
        '<script src="https://mirror.example/hcaptcha.js?onload=captchaGuardOnload_hcaptcha"'
        in snippet
    )
    assert 'id="signup-captcha"' in snippet and 'id="signup-captcha-box"' in snippet
    assert config_of(snippet)["vendor"] == {"theme": "dark"}
    second = widget(provider, element_id="second", include_script=False)
    assert "<script src=" not in second
    assert "window.captchaGuard.add(" in second
    with pytest.raises(ValueError, match="element_id"):
        widget(provider, element_id='x" onload="y')
    with pytest.raises(ValueError, match="mode"):
        widget(provider, mode="ajax")  # type: ignore[arg-type]


def test_new_vendors_elements_carry_what_their_scripts_read() -> None:
    """Friendly Captcha's and Cap's scripts render from the element's attributes alone."""
    friendly = widget(FriendlyCaptcha("api-key", sitekey="FCMGEMUD2KTDSQ5H"))
    assert (
        '<div class="frc-captcha captcha-guard-box" id="captcha-guard-friendly-captcha-box"'
        ' data-sitekey="FCMGEMUD2KTDSQ5H" data-api-endpoint="global"></div>'
    ) in friendly
    eu = FriendlyCaptcha(
        "api-key",
        sitekey="FCMGEMUD2KTDSQ5H",
        endpoint="https://eu.frcapi.com/api/v2/captcha/siteverify",
    )
    assert 'data-api-endpoint="eu"' in widget(eu)
    v1 = widget(FriendlyCaptcha("secret", sitekey="FCMGEMUD2KTDSQ5H", version=1))
    assert "data-api-endpoint" not in v1 and 'data-sitekey="FCMGEMUD2KTDSQ5H"' in v1
    # A replaced script (a self-hosted copy) is one file: no CDN twin beside it.
    mirrored = widget(FriendlyCaptcha("api-key", sitekey="k"), script="/static/site.min.js")
    assert "nomodule" not in mirrored and "cdn.jsdelivr.net" not in mirrored
    cap = widget(Cap("d9256640cb53", "secret", endpoint="https://cap.example.com/?x=1"))
    assert (
        '<cap-widget class="captcha-guard-box" id="captcha-guard-cap-box"'
        ' data-cap-api-endpoint="https://cap.example.com/d9256640cb53/"></cap-widget>'
    ) in cap
    # Tencent's CaptchaAppId is the site key, given as a string of digits or an integer.
    assert config_of(widget(tencent(captcha_app_id="2046626881")))["sitekey"] == "2046626881"


def test_a_renamed_field_gets_a_hidden_input_the_callback_fills() -> None:
    snippet = widget(ReCaptcha("secret", sitekey="key", field="captcha"))
    assert '<input type="hidden" name="captcha" data-captcha-guard-field="captcha"' in snippet
    assert config_of(snippet)["fields"] == ["captcha"]


@pytest.mark.parametrize(
    ("provider", "keyword"),
    [
        (ReCaptcha("secret"), "sitekey="),
        (HCaptcha("secret"), "sitekey="),
        (Turnstile("secret"), "sitekey="),
        (AliyunCaptcha("LTAI5tKey", "secret", scene_id="sc3ne1d"), "prefix="),
        (FriendlyCaptcha("api-key"), "sitekey="),
        (FriendlyCaptcha("secret", version=1), "sitekey="),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_a_missing_site_key_is_named(provider: Any, keyword: str) -> None:
    with pytest.raises(ValueError, match=f"needs {keyword} for its widget"):
        widget(provider)
    assert "sitekey" in config_of(widget(provider, sitekey="given"))


def test_providers_without_a_widget_say_why() -> None:
    with pytest.raises(LookupError, match="DeepKnow has no page widget"):
        widget(DeepKnow("secret", scene="login", user_id="user"))
    with pytest.raises(TypeError, match="not a captcha_guard provider"):
        widget(object())


def test_constructors_keep_working_and_check_the_new_keywords() -> None:
    assert ReCaptcha("secret").sitekey is None
    assert Turnstile("secret", sitekey="k").sitekey == "k"
    assert AliyunCaptcha("LTAI5tKey", "secret").prefix is None
    with pytest.raises(ValueError, match="sitekey"):
        ReCaptcha("secret", sitekey=" ")
    with pytest.raises(ValueError, match="prefix"):
        AliyunCaptcha("LTAI5tKey", "secret", prefix="a b")


# ---------------------------------------------------------------- template engines


def test_jinja_global_with_autoescape() -> None:
    default = ProofOfWork(POW_SECRET)
    turnstile = Turnstile("secret", sitekey="1x00000000000000000000AA")
    env = jinja2.Environment(autoescape=True)
    env.globals["captcha_widget"] = jinja_global(default, providers={"turnstile": turnstile})
    page = env.from_string(
        "<form>{{ captcha_widget() }}</form>"
        '<form>{{ captcha_widget("turnstile", mode="fetch", nonce=nonce) }}</form>'
        "<form>{{ captcha_widget(other, element_id='third') }}</form>"
    ).render(nonce="abc", other=turnstile)
    assert page.count("<altcha-widget") == 1
    assert page.count('data-captcha-guard="turnstile"') == 2
    assert 'nonce="abc"' in page
    assert "&lt;" not in page  # not escaped a second time
    with pytest.raises(LookupError, match="no provider named 'nope' \\(known: turnstile\\)"):
        env.from_string("{{ captcha_widget('nope') }}").render()
    with pytest.raises(LookupError, match="no default provider"):
        jinja_global()()


@pytest.fixture
def django_templates() -> Iterator[Callable[[Any], Any]]:
    """A minimal Django template engine with the tag's library, under settings of this test's
    own: other modules configure Django for their process too, so the settings in place before
    (configured or not) are put back after."""
    from django.conf import settings
    from django.template import Engine
    from django.utils.functional import empty

    saved = settings._wrapped
    settings._wrapped = empty
    settings.configure()

    def build(captcha_guard: Any) -> Any:
        settings.CAPTCHA_GUARD = captcha_guard
        return Engine(
            libraries={"captcha_guard": "captcha_guard.django.templatetags.captcha_guard"},
            autoescape=True,
        )

    try:
        yield build
    finally:
        settings._wrapped = saved


def test_django_tag_renders_the_configured_providers(django_templates: Any) -> None:
    from django.template import Context

    default = GeeTest("647f5ed2ed8acb4be36784e01556bb71", "key")
    hcaptcha = HCaptcha("secret", sitekey="10000000-ffff-ffff-ffff-000000000001")
    engine = django_templates({"provider": default, "providers": {"hcaptcha": hcaptcha}})
    template = engine.from_string(
        "{% load captcha_guard %}<form>{% captcha_widget %}</form>"
        '<form>{% captcha_widget "hcaptcha" mode="fetch" element_id="h2" %}</form>'
    )
    page = template.render(Context({"csp_nonce": "from-context"}))
    assert 'data-captcha-guard="geetest"' in page
    assert 'data-captcha-guard="hcaptcha"' in page and 'id="h2"' in page
    assert page.count('nonce="from-context"') == 4
    assert "&lt;" not in page

    class Request:
        csp_nonce = "from-request"

    explicit = engine.from_string("{% load captcha_guard %}{% captcha_widget p nonce='n1' %}")
    assert 'nonce="n1"' in explicit.render(Context({"p": hcaptcha, "request": Request()}))
    implicit = engine.from_string("{% load captcha_guard %}{% captcha_widget p %}")
    assert 'nonce="from-request"' in implicit.render(Context({"p": hcaptcha, "request": Request()}))


def test_django_tag_reads_a_toml_file(django_templates: Any, tmp_path: Any) -> None:
    from django.template import Context

    path = tmp_path / "captcha.toml"
    path.write_text(
        'environment = "test"\nprovider = "turnstile"\n'
        '[providers.turnstile]\nsecret = "literal:1x0000000000000000000000000000000AA"\n'
        'sitekey = "1x00000000000000000000AA"\n'
        '[providers.pow]\ntype = "proof_of_work"\n'
        f'secret = "literal:{POW_SECRET}"\n'
        '[[rules]]\npattern = "/login"\n'
    )
    engine = django_templates(str(path))
    page = engine.from_string(
        '{% load captcha_guard %}{% captcha_widget %}{% captcha_widget "pow" %}'
    ).render(Context({}))
    assert "1x00000000000000000000AA" in page
    assert "<altcha-widget" in page
