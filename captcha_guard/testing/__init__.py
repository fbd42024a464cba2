"""Test doubles for ``captcha_guard`` users: provider emulators that judge like the vendors,
usable in-process (``emulator.transport()``) or as a real server (``emulator.serve()``), and
helpers that mint the client fields a solved widget would send.

    emulator = GeeTestEmulator()
    with emulator.serve() as server:
        guard = CaptchaGuard(app, rules=[Rule("/login")],
                             provider=GeeTest(emulator.captcha_id, emulator.captcha_key,
                                              endpoint=server.endpoint("/validate")))
        fields = emulator.issue()   # what the browser would post
"""

from ._aliyun import AliyunCaptchaEmulator
from ._cap import CapEmulator
from ._deepknow import DeepKnowEmulator
from ._emulator import Emulator, EmulatorServer, Outage
from ._friendly import FriendlyCaptchaEmulator
from ._geetest import GeeTestEmulator
from ._siteverify import (
    HCaptchaEmulator,
    ReCaptchaEmulator,
    SiteverifyEmulator,
    TurnstileEmulator,
)
from ._tencent import TencentCaptchaEmulator

__all__ = [
    "AliyunCaptchaEmulator",
    "CapEmulator",
    "DeepKnowEmulator",
    "Emulator",
    "EmulatorServer",
    "FriendlyCaptchaEmulator",
    "GeeTestEmulator",
    "HCaptchaEmulator",
    "Outage",
    "ReCaptchaEmulator",
    "SiteverifyEmulator",
    "TencentCaptchaEmulator",
    "TurnstileEmulator",
]
