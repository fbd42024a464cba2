"""DJANGO_SETTINGS_MODULE for a server in a process of its own: the emulator from the
environment (ADAPTER_ENDPOINT, ADAPTER_CAPTCHA_ID, ADAPTER_CAPTCHA_KEY)."""

import os

from tests.adapters.django_site import site_settings

globals().update(
    site_settings(
        os.environ["ADAPTER_ENDPOINT"],
        os.environ["ADAPTER_CAPTCHA_ID"],
        os.environ["ADAPTER_CAPTCHA_KEY"],
    )
)
