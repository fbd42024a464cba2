"""``captcha-guard emulate VENDOR``: the subcommand's arguments, kept free of the testing kit's
imports (httpx) so that ``captcha-guard check`` runs on a site that installed none of it. The
emulator itself is ``captcha_guard.testing._standalone``."""

from __future__ import annotations

import argparse
import sys

#: The vendors ``captcha_guard.testing`` emulates (``_standalone.VENDORS``; a test keeps the
#: two in step).
VENDOR_NAMES = (
    "aliyun",
    "cap",
    "deepknow",
    "friendly_captcha",
    "geetest",
    "hcaptcha",
    "recaptcha",
    "tencent",
    "turnstile",
)


def add_emulate_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulate = commands.add_parser(
        "emulate",
        help="serve a vendor emulator for development (several workers can share it)",
        description="Serve one provider emulator on 127.0.0.1 and print a JSON line: its "
        "endpoint, its control endpoint (POST /issue mints a solved captcha's fields, POST "
        "/outage switches outage modes) and the credentials to configure. Runs until "
        "interrupted.",
    )
    emulate.add_argument("vendor", choices=VENDOR_NAMES, help="the vendor to emulate")
    emulate.add_argument(
        "--port", type=int, default=0, help="port of the verification API (0: a free one)"
    )
    emulate.add_argument(
        "--control-port", type=int, default=0, help="port of the control endpoint (0: free)"
    )
    emulate.add_argument(
        "--api-version",
        type=int,
        default=None,
        help="serve an older API of the vendor (friendly_captcha: 1; default: the current)",
    )


def run_emulate(args: argparse.Namespace) -> int:
    try:
        from .testing._standalone import emulate
    except ImportError as exc:  # httpx: captcha-guard[testing]
        print(f"emulate needs captcha-guard[testing]: {exc}", file=sys.stderr)
        return 2
    return emulate(args)


__all__ = ["VENDOR_NAMES", "add_emulate_command", "run_emulate"]
