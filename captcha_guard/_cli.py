"""``captcha-guard check`` and ``captcha-guard explain``: a configuration file, seen before it
is deployed.

Exit codes of ``check``: 0 the file is sound (notes do not count); 1 it has errors (it would
not load, or a probe proved a secret wrong); 3 it loads but has warnings (each warning counts
as an error unless its code is given to ``--allow``, so a CI job fails on a test key in a
production file without anyone reading the output). ``explain``: 0 a rule matches, 4 none
does (the request reaches the app untouched), 1 the file has errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from ._privacy_pass._tokens import DEFAULT_PATH as DEFAULT_TOKEN_PATH
from .config import Config, ConfigError, load

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_WARNINGS = 3
EXIT_NO_MATCH = 4


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = commands.add_parser(
        "check",
        help="check a configuration file (exit 0 ok, 1 errors, 3 warnings)",
        description="Load a configuration file as CaptchaGuard.from_file would and report "
        "its errors and warnings. Exit 0: sound; 1: errors; 3: warnings only (see --allow).",
    )
    check.add_argument("file", help="the TOML file")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also prove each secret against the vendor's API with an invalid token, and "
        "read the shared Redis's maxmemory-policy (network access)",
    )
    check.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="CODE",
        help="a warning code not to count (test-key, unreachable-rule, fail-open-replay, "
        "fail-open-budget, no-rules, unused-provider, eviction, probe); repeatable",
    )
    explain = commands.add_parser(
        "explain",
        help="say which rule a request matches, and why",
        description="Which rule of the file a request with this method and path matches "
        "(first match wins), why, and which would match next. The path is the one the "
        "app routes (below its mount point). Exit 0: a rule matches; 4: none does.",
    )
    explain.add_argument("file", help="the TOML file")
    explain.add_argument("method", help="the request's method, as sent (POST)")
    explain.add_argument("path", help="the request's path (/login)")


def _loaded(path: str, out: TextIO) -> Config | None:
    try:
        return load(path)
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=out)
        count = len(error.problems)
        print(f"{path}: {count} error{'s' if count != 1 else ''}", file=out)
        return None


def check(path: str, *, probe: bool, allow: Sequence[str], out: TextIO = sys.stdout) -> int:
    config = _loaded(path, out)
    if config is None:
        return EXIT_ERRORS
    errors = 0
    warnings = 0
    allowed = set(allow)

    def warn(text: str, code: str) -> None:
        nonlocal warnings
        if code in allowed:
            print(f"allowed: {text} [{code}]", file=out)
        else:
            warnings += 1
            print(f"warning: {text} [{code}]", file=out)

    for warning in config.warnings:
        warn(str(warning), warning.code)
    if probe:
        from ._probe import probe as run_probe

        for finding in run_probe(config):
            text = f"{path}: {finding.subject}: {finding.message}"
            if finding.level == "error":
                errors += 1
                print(f"error: {text}", file=out)
            elif finding.level == "warning":
                warn(text, finding.code or "probe")
            else:
                print(f"{finding.level}: {text}", file=out)
    else:
        if config.state is not None:
            print(
                f"note: {path}: state: maxmemory-policy not checked (check --probe connects "
                "to Redis and reads it; it must be noeviction)",
                file=out,
            )
        remote = [n for n, s in config.providers.items() if s.provider.remote]
        if remote:
            print(
                f"note: {path}: secrets of {', '.join(remote)} not proven (check --probe)",
                file=out,
            )
    summary = (
        f"{path}: {len(config.providers)} provider{'s' if len(config.providers) != 1 else ''}, "
        f"{len(config.rules)} rule{'s' if len(config.rules) != 1 else ''} "
        f"({config.environment}): {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
    print(summary, file=out)
    if errors:
        return EXIT_ERRORS
    return EXIT_WARNINGS if warnings else EXIT_OK


def explain(path: str, method: str, request_path: str, *, out: TextIO = sys.stdout) -> int:
    from .config._checks import rule_reasons

    config = _loaded(path, out)
    if config is None:
        return EXIT_ERRORS
    print(f"{method} {request_path}", file=out)
    matched: list[int] = []
    for spec in config.rules:
        where = f"{path}:{spec.line}" if spec.line else path
        ok, why = rule_reasons(spec.rule, method, request_path)
        label = f"rules[{spec.index + 1}] {spec.label} ({where})"
        if ok and not matched:
            provider = config.providers[spec.provider]
            fail_open = "no" if spec.rule.fail_open is False else "yes"
            print(f"  matches: {label}: {why}", file=out)
            print(
                f"    provider {spec.provider} ({provider.type}), fail open: {fail_open}"
                + (", clearance: yes" if spec.options.get("clearance") else "")
                + (", private tokens: yes" if spec.options.get("private_tokens") else ""),
                file=out,
            )
        elif ok:
            print(f"  would match next: {label}: {why}", file=out)
        else:
            print(f"  no: {label}: {why}", file=out)
        if ok:
            matched.append(spec.index)
    if matched:
        return EXIT_OK
    tokens = config.private_tokens
    token_path = tokens.options.get("path", DEFAULT_TOKEN_PATH) if tokens is not None else None
    if method == "GET" and request_path == token_path:
        print("  no rule matches: served as the private-token path", file=out)
        return EXIT_NO_MATCH
    for name, provider_spec in config.providers.items():
        challenge = provider_spec.provider.challenge_path
        if challenge is not None and method == "GET" and request_path == challenge:
            print(f"  no rule matches: served by {name}'s challenge endpoint", file=out)
            return EXIT_NO_MATCH
    print("  no rule matches: the request reaches the app untouched", file=out)
    return EXIT_NO_MATCH
