"""``captcha-guard`` (or ``python -m captcha_guard``): ``demo [--host 127.0.0.1] [--port 8000]``,
``check FILE [--probe] [--allow CODE]``, ``explain FILE METHOD PATH``, ``emulate VENDOR``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m captcha_guard")
    commands = root.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="serve the offline demo: a proof-of-work sign-in and an emulated vendor's outage",
        description="Serve the offline demo: a sign-in form behind CaptchaGuard and "
        "ProofOfWork, and a comment form behind an emulated GeeTest with outage controls and "
        "a live panel of the event hooks. Nothing is fetched from the internet; no vendor "
        "account is needed.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    demo.add_argument(
        "--port", type=int, default=8000, help="port to listen on; 0 picks a free one (8000)"
    )
    from ._cli import add_commands

    add_commands(commands)
    from ._emulate_cli import add_emulate_command

    add_emulate_command(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "demo":
        try:
            import uvicorn  # noqa: F401  (checked here to explain, not to use)
        except ImportError:
            print("The demo needs uvicorn: pip install 'captcha-guard[demo]'", file=sys.stderr)
            return 2
        from .demo import serve

        try:
            serve(args.host, args.port, announce=lambda line: print(line, flush=True))
        except OSError as exc:  # the port is taken, the address is not ours
            print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            pass
    elif args.command == "check":
        from ._cli import check

        return check(args.file, probe=args.probe, allow=args.allow)
    elif args.command == "emulate":
        from ._emulate_cli import run_emulate

        return run_emulate(args)
    elif args.command == "explain":
        from ._cli import explain

        return explain(args.file, args.method, args.path, root_path=args.root_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
