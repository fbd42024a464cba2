"""The door behind the Django adapter, built once from ``settings.CAPTCHA_GUARD`` (a dict of
the door's keywords, or the path of a TOML file) and built again when a test changes it."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from django.core.signals import setting_changed

from .._route import Route
from ..wsgi import WSGICaptchaGuard

SETTING = "CAPTCHA_GUARD"


class DjangoGuard(WSGICaptchaGuard):
    """The door's configuration, state and clients, driven from inside Django: the
    middleware and the decorator judge with it; there is no app to wrap."""

    def __init__(self, app: Any = None, **keywords: Any) -> None:
        super().__init__(app, **keywords)
        #: The routes of decorated views, by view.
        self.view_routes: dict[Any, Route] = {}


_lock = threading.Lock()
_built: DjangoGuard | None = None


def build() -> DjangoGuard:
    """A fresh guard from the setting (raises what the door raises for a bad one)."""
    configured = getattr(settings, SETTING, None)
    if configured is None:
        configured = {}
    if isinstance(configured, (str, os.PathLike)):
        return DjangoGuard.from_file(cast(Any, None), configured)
    if not isinstance(configured, Mapping):
        raise TypeError(
            f"settings.{SETTING} must be a dict of captcha_guard's keywords or the path of a "
            f"TOML file, not {type(configured).__name__}"
        )
    return DjangoGuard(**dict(configured))


def guard() -> DjangoGuard:
    """The guard of this process, built on first use."""
    global _built
    found = _built
    if found is None:
        with _lock:
            if _built is None:
                _built = build()
            found = _built
    return found


def _reset(*, setting: str, **_: Any) -> None:
    global _built
    if setting == SETTING:
        with _lock:
            old, _built = _built, None
        if old is not None:
            old.close()


setting_changed.connect(_reset)

__all__ = ["SETTING", "DjangoGuard", "build", "guard"]
