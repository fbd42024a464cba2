"""What the two front doors are made of besides the Gate: one constructor for both, so an
option added to one is an option of the other."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Generic, TypeVar

from .fallback import FallbackBudget
from .fields import ParseLimits
from .gate import DEFAULT_MAX_BODY_SIZE, Gate
from .providers.base import Provider
from .replay import ReplayStore
from .rules import Rule

AppT = TypeVar("AppT")
ClientT = TypeVar("ClientT")
RejectT = TypeVar("RejectT")


class FrontDoor(Generic[AppT, ClientT, RejectT]):
    """The app, the gate, the reject handler and the pooled HTTP client (made on first use
    unless one is given; then it is the caller's to close)."""

    def __init__(
        self,
        app: AppT,
        rules: Iterable[Rule] = (),
        provider: Provider | None = None,
        providers: Mapping[str, Provider] | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        on_reject: RejectT | None = None,
        http_client: ClientT | None = None,
        *,
        replay_store: ReplayStore | None = None,
        fallback_limit: int | FallbackBudget | None = None,
        parse_limits: ParseLimits | None = None,
    ) -> None:
        self.app = app
        self.gate = Gate(
            rules,
            provider,
            providers,
            max_body_size,
            replay_store=replay_store,
            fallback_limit=fallback_limit,
            parse_limits=parse_limits,
        )
        self.on_reject = on_reject
        self._client = http_client
        self._owns_client = http_client is None
        # Guards making and closing the client where threads share it (WSGI).
        self._client_lock = threading.Lock()
