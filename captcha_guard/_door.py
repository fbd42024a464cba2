"""What the two front doors share besides the flow: one constructor, so an option added to
one is an option of the other, and the hooks runner."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Generic, Literal, TypeVar

from ._clearance import Clearance
from ._client_ip import ClientAddress, ClientIPOption
from ._effects import EventHook
from ._events import StoreErrorEvent
from ._failover import bind_state
from ._fallback import FallbackLimitOption
from ._fields import ParseLimits
from ._flow import DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_SIZE, Gate
from ._privacy_pass import PrivateTokens
from ._routing import app_prefixes
from ._rules import Rule
from .providers._base import Provider

AppT = TypeVar("AppT")
RejectT = TypeVar("RejectT")
DoorT = TypeVar("DoorT", bound="FrontDoor[Any, Any]")

logger = logging.getLogger("captcha_guard")


class FrontDoor(Generic[AppT, RejectT]):
    """The app, the gate, the reject handler, and the HTTP client given (or None: the door
    makes its own on first use and closes it; a given one is the caller's to close)."""

    door: ClassVar[Literal["asgi", "wsgi"]]

    def __init__(
        self,
        app: AppT,
        *,
        rules: Iterable[Rule] = (),
        provider: Provider | None = None,
        providers: Mapping[str, Provider] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        on_reject: RejectT | None = None,
        http_client: Any = None,
        fallback_limit: FallbackLimitOption = None,
        event_hooks: Mapping[str, Iterable[EventHook]] | None = None,
        client_ip: ClientIPOption = None,
        state: Any = None,
        parse_limits: ParseLimits | None = None,
        clearance: Clearance | None = None,
        private_tokens: PrivateTokens | None = None,
    ) -> None:
        self.app = app
        self.client_address = ClientAddress(client_ip)
        self.gate = Gate(
            rules,
            provider,
            providers,
            max_body_size=max_body_size,
            body_timeout=body_timeout,
            fallback_limit=fallback_limit,
            event_hooks=event_hooks,
            prefixes=app_prefixes(app),
            parse_limits=parse_limits,
            clearance=clearance,
            private_tokens=private_tokens,
        )
        #: Where the flow's state operations are performed: every door has a backend.
        self.state = bind_state(state, door=self.door, on_error=self._store_error)
        local: Any = getattr(self.state, "local", self.state)
        for route in self.gate.routes:  # the in-process state keeps breaker.state true
            if route.provider.remote:  # a local provider's breaker is never asked
                local.bind_breaker(route.provider_name, route.provider.breaker)
        self.gate.abandon = self.state.abandon
        if clearance is not None:
            clearance.bind_state(self.state)
        self.on_reject = on_reject
        self.http_client = http_client

    @classmethod
    def from_file(
        cls: type[DoorT], app: AppT, path: str | os.PathLike[str], **overrides: Any
    ) -> DoorT:
        """This door configured by a TOML file (README: "Configuration file"); keyword
        arguments override what the file sets. A bad file raises ``ConfigError``."""
        from .config import door_from_file

        return door_from_file(cls, app, path, overrides)

    def _store_error(self, event: StoreErrorEvent) -> None:
        for hook in self.gate.hooks.get("store_error", ()):
            try:
                outcome = hook(event)
                if inspect.isawaitable(outcome):
                    _schedule(outcome)
            except Exception as exc:
                run_hook_errors(hook, exc)


def _schedule(awaitable: Any) -> None:
    """An async hook called from inside a state operation: run it on the loop, unawaited."""
    import asyncio

    try:
        asyncio.get_running_loop().create_task(_quietly(awaitable))
    except RuntimeError:  # no loop (WSGI): nothing would run it
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        logger.error("captcha_guard: an async event hook cannot run under WSGI")


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception as exc:
        logger.error("captcha_guard event hook failed: %s", type(exc).__name__)


def run_hook_errors(hook: EventHook, exc: Exception) -> None:
    """A hook that raises is the site's bug, not the request's: logged, never re-raised."""
    logger.error("captcha_guard event hook %r failed: %s", hook, type(exc).__name__)


__all__ = ["FrontDoor", "run_hook_errors"]
