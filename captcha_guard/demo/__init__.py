"""The offline demo: ``python -m captcha_guard demo`` serves a sign-in page protected by the
self-hosted proof-of-work captcha and a comment form protected by GeeTest, whose vendor is
emulated on a loopback port (with outage controls and a live panel fed by the event hooks),
on this machine only, with no vendor account."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
