"""``captcha-guard check --probe`` and the config file for Tencent Cloud Captcha, Friendly
Captcha and Cap, against their emulators served for real."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from captcha_guard import Cap, FriendlyCaptcha, TencentCaptcha
from captcha_guard.config import load
from captcha_guard.testing import CapEmulator, FriendlyCaptchaEmulator, TencentCaptchaEmulator
from tests.config.test_cli import ROOT, Run, probe, write

TENCENT = """
[providers.tencent]
secret_id = "{secret_id}"
secret_key = "env:SECRET_KEY"
captcha_app_id = {app_id}
app_secret_key = "env:APP_SECRET_KEY"
endpoint = "{endpoint}"
[[rules]]
pattern = "/a"
fail_open = false
"""


def test_probe_tencent_tells_the_four_keys_apart(tmp_path: Path) -> None:
    emulator = TencentCaptchaEmulator()

    def run(**changes: str | int) -> Run:
        values: dict[str, str | int] = {
            "secret_id": emulator.secret_id,
            "app_id": emulator.captcha_app_id,
            "endpoint": upstream.endpoint("/"),
            "SECRET_KEY": emulator.secret_key,
            "APP_SECRET_KEY": emulator.app_secret_key,
            **changes,
        }
        text = TENCENT.format(**values)
        env = {k: str(v) for k, v in values.items() if k.isupper()}
        return probe(tmp_path, text, env)

    with emulator.serve() as upstream:
        good = run()
        wrong_key = run(SECRET_KEY="NotTheSecretKey")
        wrong_app = run(app_id=190000001)
        wrong_app_key = run(APP_SECRET_KEY="NotTheAppSecretKey")
        swapped = run(APP_SECRET_KEY=emulator.secret_key)  # the CAM key where the app's goes
    assert good.code == 0, good.out
    assert "CAM key accepted" in good.out and "not promise" in good.out
    assert wrong_key.code == 1 and "AuthFailure.SignatureFailure" in wrong_key.out
    assert wrong_app.code == 1 and "captcha_app_id refused (CaptchaCode 16)" in wrong_app.out
    assert "190000001" in wrong_app.out
    assert wrong_app_key.code == 1
    assert "app_secret_key refused (CaptchaCode 100)" in wrong_app_key.out
    assert swapped.code == 1 and "not the CAM SecretKey" in swapped.out
    everything = good.out + wrong_key.out + wrong_app.out + wrong_app_key.out + swapped.out
    assert emulator.secret_key not in everything
    assert emulator.app_secret_key not in everything


def test_probe_friendly_captcha(tmp_path: Path) -> None:
    emulator = FriendlyCaptchaEmulator()
    config = """
[providers.frc]
type = "friendly_captcha"
api_key = "env:API_KEY"
endpoint = "{endpoint}"
{sitekey}
[[rules]]
pattern = "/a"
fail_open = false
"""
    with emulator.serve() as upstream:
        endpoint = upstream.endpoint("/api/v2/captcha/siteverify")

        def run(key: str, sitekey: str = "") -> Run:
            return probe(
                tmp_path, config.format(endpoint=endpoint, sitekey=sitekey), {"API_KEY": key}
            )

        good = run(emulator.api_key, f'sitekey = "{emulator.sitekey}"')
        wrong = run("NOTTHEKEY")
        foreign = run(emulator.api_key, 'sitekey = "FCMNOTOURS"')
    assert good.code == 0 and "API key and sitekey accepted" in good.out, good.out
    assert wrong.code == 1 and "auth_invalid" in wrong.out
    assert foreign.code == 1 and "sitekey_invalid" in foreign.out


def test_probe_cap(tmp_path: Path) -> None:
    emulator = CapEmulator()
    config = """
[providers.cap]
site_key = "{site_key}"
secret = "env:SECRET"
endpoint = "{endpoint}"
[[rules]]
pattern = "/a"
fail_open = false
"""
    with emulator.serve() as upstream:

        def run(site_key: str, secret: str) -> Run:
            text = config.format(site_key=site_key, endpoint=upstream.url)
            return probe(tmp_path, text, {"SECRET": secret})

        good = run(emulator.site_key, emulator.secret)
        wrong = run(emulator.site_key, "not-the-secret")
        unknown = run("n0b0dy", emulator.secret)
    assert good.code == 0 and "site key and secret accepted" in good.out, good.out
    assert wrong.code == 1 and "Invalid site key or secret (HTTP 403)" in wrong.out
    assert unknown.code == 1 and "Invalid site key or secret (HTTP 404)" in unknown.out


def test_the_config_file_builds_the_three(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environment = "test"
        provider = "tencent"
        [providers.tencent]
        secret_id = "AKIDexample"
        secret_key = "env:TC_KEY"
        captcha_app_id = "env:TC_APP"
        app_secret_key = "env:TC_APP_KEY"
        region = "intl"
        refuse_evil = false
        [providers.frc]
        type = "friendly_captcha"
        api_key = "env:FRC_KEY"
        version = 1
        [providers.cap]
        site_key = "d9256640cb53"
        secret = "env:CAP_SECRET"
        endpoint = "https://cap.example.com/"
        [[rules]]
        pattern = "/a"
        """,
    )
    env = {
        "TC_KEY": "k1",
        "TC_APP": "199999164",
        "TC_APP_KEY": "k2",
        "FRC_KEY": "k3",
        "CAP_SECRET": "k4",
    }
    config = load(path, environ=env)
    tencent = config.providers["tencent"].provider
    assert isinstance(tencent, TencentCaptcha)
    assert tencent.captcha_app_id == 199999164 and tencent.refuse_evil is False
    assert tencent.endpoint == "https://captcha.intl.tencentcloudapi.com/"
    friendly = config.providers["frc"].provider
    assert isinstance(friendly, FriendlyCaptcha) and friendly.version == 1
    cap = config.providers["cap"].provider
    assert isinstance(cap, Cap)
    assert cap.endpoint == "https://cap.example.com/d9256640cb53/siteverify"


def test_the_config_file_points_at_a_bad_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        environment = "test"
        [providers.tencent]
        secret_id = "AKIDexample"
        secret_key = "literal:k"
        captcha_app_id = "abc"
        app_secret_key = "literal:a"
        [providers.cap]
        site_key = "k"
        secret = "literal:s"
        [[rules]]
        pattern = "/a"
        provider = "tencent"
        """,
    )
    try:
        load(path, environ={})
    except ValueError as exc:
        text = str(exc)
    else:  # pragma: no cover - the file is wrong
        raise AssertionError("loaded")
    assert "providers.tencent.captcha_app_id" in text
    assert "providers.cap" in text and "endpoint" in text


@pytest.mark.parametrize("page", ["tencent.md", "friendly-captcha.md", "cap.md"])
def test_the_docs_pages_config_examples_load(tmp_path: Path, page: str) -> None:
    text = (ROOT / "docs" / "providers" / page).read_text(encoding="utf-8")
    (block,) = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    names = re.findall(r'"env:([A-Z_]+)"', block)
    path = write(tmp_path, 'environment = "test"\n' + block + '[[rules]]\npattern = "/a"\n')
    config = load(path, environ={name: "value-of-" + name.lower() for name in names})
    assert len(config.providers) == 1
