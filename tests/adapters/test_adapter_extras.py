"""Each adapter needs its own framework and no other: a Flask site installs no Django, and the
reverse (pyproject's ``django``, ``flask`` and ``fastapi`` extras). Checked on what each module
imports, in a fresh interpreter each."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAMEWORKS = ("django", "flask", "fastapi", "starlette", "rest_framework")


def imported_by(module: str) -> set[str]:
    code = (
        f"import sys, {module}\n"
        f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(FRAMEWORKS)!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("captcha_guard", set()),
        ("captcha_guard.flask", {"flask"}),
        ("captcha_guard.django", set()),  # lazily: Django imports it while reading INSTALLED_APPS
        ("captcha_guard.django.apps", {"django"}),
        ("captcha_guard.fastapi", {"fastapi", "starlette"}),
    ],
)
def test_an_adapter_imports_its_framework_alone(module: str, allowed: set[str]) -> None:
    assert imported_by(module) <= allowed


def test_the_django_adapter_imports_no_rest_framework_until_the_site_does() -> None:
    code = (
        "import django; from django.conf import settings\n"
        "settings.configure(INSTALLED_APPS=['captcha_guard.django']); django.setup()\n"
        "from captcha_guard.django import captcha_required, CaptchaGuardMiddleware\n"
        "import sys; print('rest_framework' in sys.modules, 'flask' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
