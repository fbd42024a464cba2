"""``captcha-guard check`` and ``captcha-guard explain``: a configuration file, seen before it
is deployed.

Exit codes of ``check``: 0 the file is sound (notes do not count); 1 it has errors (it would
not load, or a probe proved a secret wrong); 3 it loads but has warnings (each warning counts
as an error unless its code is given to ``--allow``, so a CI job fails on a test key in a
production file without anyone reading the output). ``explain`` asks the gate's own routing
decision, as the doors do: 0 a rule matches, 4 none does (the request reaches the app
untouched), 5 the door refuses the request itself (400 ``bad_path``), 1 the file has errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from ._privacy_pass._tokens import DEFAULT_PATH as DEFAULT_TOKEN_PATH
from .config import Config, ConfigError, build_door, load

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_WARNINGS = 3
EXIT_NO_MATCH = 4
EXIT_REFUSED = 5


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
        "fail-open-budget, no-rules, unused-provider, plain-http, eviction, probe); "
        "repeatable",
    )
    explain = commands.add_parser(
        "explain",
        help="say which rule a request matches, and why",
        description="Which rule of the file a request with this method and path matches "
        "(first match wins), why, and which would match next: the doors' own routing "
        "decision. The path is percent-decoded, as the server hands it to the app. "
        "Exit 0: a rule matches; 4: none does; 5: the door refuses the request (bad_path).",
    )
    explain.add_argument("file", help="the TOML file")
    explain.add_argument("method", help="the request's method, as sent (POST)")
    explain.add_argument("path", help="the request's path (/login)")
    explain.add_argument(
        "--root-path",
        default="",
        metavar="PREFIX",
        help="the ASGI root_path the server gives (its --root-path); the path then includes it",
    )


def _loaded(path: str, out: TextIO, *, build: bool = False) -> Config | None:
    """The file as ``from_file`` loads it (``build``: and builds a door from it), or None
    after printing every error."""
    try:
        config = load(path)
        if build:
            from .wsgi import WSGICaptchaGuard

            # The WSGI door checks exactly what the ASGI one does (one FrontDoor), and has
            # a synchronous close for what it built (a Redis client: nothing is connected).
            build_door(WSGICaptchaGuard, _no_app, config, {}).close()
        return config
    except ConfigError as error:
        for problem in error.problems:
            print(f"error: {problem}", file=out)
        count = len(error.problems)
        print(f"{path}: {count} error{'s' if count != 1 else ''}", file=out)
        return None


def _no_app(environ: object, start_response: object) -> list[bytes]:
    return []


def check(path: str, *, probe: bool, allow: Sequence[str], out: TextIO = sys.stdout) -> int:
    config = _loaded(path, out, build=True)
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


def explain(
    path: str, method: str, request_path: str, *, root_path: str = "", out: TextIO = sys.stdout
) -> int:
    """What the doors would do with ``method request_path``: the gate's own routing decision
    (``Gate.route``), never a second matcher, and each rule's view of the request."""
    from ._flow import Gate
    from ._responses import Denial
    from ._routing import RuleTable, route_path

    config = _loaded(path, out)
    if config is None:
        return EXIT_ERRORS
    providers = {name: spec.provider for name, spec in config.providers.items()}
    gate = Gate([spec.rule for spec in config.rules], providers=providers)
    decision = gate.route(method, request_path, root_path)
    where = f" (below root_path {_shown(root_path)})" if root_path else ""
    print(f"{_shown(method)} {_shown(request_path)}{where}", file=out)
    if isinstance(decision, Denial):
        print(
            f"  refused: the door answers {decision.status} {decision.error} "
            f"({decision.reason}) without calling the app",
            file=out,
        )
        return EXIT_REFUSED
    chosen = None if decision is None else decision.rule
    upper = method.upper()
    for spec in config.rules:
        where = f"{path}:{spec.line}" if spec.line else path
        label = f"rules[{spec.index + 1}] {spec.label} ({where})"
        rule = spec.rule
        covers = RuleTable([(rule, True)]).match(method, request_path, root_path) is True
        allowed = ", ".join(sorted(rule.methods))
        if upper not in rule.methods:
            why = f"method {upper} is not one of {allowed}"
        elif covers:
            why = f"method {upper} is one of {allowed} and the path matches {rule.regex.pattern}"
        else:
            why = f"the path does not match {rule.regex.pattern}"
        if rule is chosen:
            provider = config.providers[spec.provider]
            fail_open = "no" if rule.fail_open is False else "yes"
            print(f"  matches: {label}: {why}", file=out)
            print(
                f"    provider {spec.provider} ({provider.type}), fail open: {fail_open}"
                + (", clearance: yes" if spec.options.get("clearance") else "")
                + (", private tokens: yes" if spec.options.get("private_tokens") else ""),
                file=out,
            )
        elif covers and chosen is not None:
            print(f"  would match next: {label}: {why}", file=out)
        else:
            print(f"  no: {label}: {why}", file=out)
    if chosen is not None:
        return EXIT_OK
    tokens = config.private_tokens
    token_path = tokens.options.get("path", DEFAULT_TOKEN_PATH) if tokens is not None else None
    below = route_path(request_path, root_path) if root_path else request_path
    if method == "GET" and below == token_path:
        print("  no rule matches: served as the private-token path", file=out)
        return EXIT_NO_MATCH
    challenger = gate.challenger(method, request_path, root_path)
    if challenger is not None:
        name = next(n for n, s in config.providers.items() if s.provider is challenger)
        print(f"  no rule matches: served by {name}'s challenge endpoint", file=out)
        return EXIT_NO_MATCH
    print("  no rule matches: the request reaches the app untouched", file=out)
    return EXIT_NO_MATCH


def _shown(text: str) -> str:
    """``text`` for a terminal: control characters escaped, never sent raw."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
