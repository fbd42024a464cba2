"""Django's settings and app registry are one per process, and other test modules configure
them too: ``django_site(...)`` swaps in this project's settings for a module of tests and puts
the previous ones back, announcing each setting as ``override_settings`` does so that Django's
caches (URLconf, template engines, DRF's settings) follow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from captcha_guard.testing import GeeTestEmulator
from tests.adapters.adapter_kit import Served, emulator_env


@contextmanager
def django_site(values: dict[str, Any]) -> Iterator[None]:
    import django
    import django.test.signals  # connects the receivers that reset Django's caches
    from django.apps import apps
    from django.conf import settings
    from django.core.signals import setting_changed
    from django.urls import clear_url_caches, set_urlconf
    from django.utils.functional import empty

    saved = settings._wrapped
    settings._wrapped = empty
    settings.configure(**values)
    swapped_apps = apps.ready
    if swapped_apps:
        apps.set_installed_apps(values["INSTALLED_APPS"])
    else:
        django.setup()

    def announce(enter: bool) -> None:
        set_urlconf(None)
        clear_url_caches()
        for name in values:
            if name == "DATABASES":  # no database is used; its receiver only warns
                continue
            try:
                value = getattr(settings, name, None)
            except Exception:  # the settings put back may not have it (nor be configured)
                value = None
            # Robust: once the settings are put back unconfigured, a receiver that reads
            # them fails, and the caches it would reset are rebuilt on next use anyway.
            setting_changed.send_robust(
                sender=type(settings), setting=name, value=value, enter=enter
            )

    announce(True)
    try:
        yield
    finally:
        if swapped_apps:
            apps.unset_installed_apps()
        settings._wrapped = saved
        announce(False)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    """The test project (tests/adapters/django_site) in front of a GeeTest emulator, for one
    module."""
    from tests.adapters.django_site import site_settings

    emulator = GeeTestEmulator()
    with emulator.serve() as server:
        endpoint = server.endpoint("/validate")
        with django_site(site_settings(endpoint, emulator.captcha_id, emulator.captcha_key)):
            yield emulator, endpoint


def gunicorn_env(served: Served) -> dict[str, str]:
    """What the test project reads in a gunicorn process of its own."""
    return {**emulator_env(served), "DJANGO_SETTINGS_MODULE": "tests.adapters.django_site.settings"}
