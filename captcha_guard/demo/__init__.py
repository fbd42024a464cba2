"""The offline demo: ``python -m captcha_guard demo`` serves a sign-in page protected by the
self-hosted proof-of-work captcha, on this machine only, with no vendor account."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
