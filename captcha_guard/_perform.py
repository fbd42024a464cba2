"""Performing a flow's effects: the one loop every driver runs, sync and async.

The front doors and the framework adapters differ in how they read a body and what they do
with the decision; what they do with a provider call, a state operation or an event is the
same, so it is written once here. A state operation that raises is thrown back into the flow,
which decides what a failed operation means. If the driver is cancelled while an effect is
out, the flow is closed, so a breaker permit goes back counting nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Protocol, TypeVar

from ._door import run_hook_errors
from ._effects import BodyProblem, CallProblem, Effect, Emit, ProviderCall, ReadBody
from ._state import StateOp
from .providers._wire import ProviderResponse

#: What a flow returns: a ``Decision`` for ``gate.decide``, a ``Reply`` for ``gate.redeem``.
T = TypeVar("T")


class SyncSender(Protocol):
    def send(self, call: ProviderCall) -> ProviderResponse | CallProblem: ...


class AsyncSender(Protocol):
    async def send(self, call: ProviderCall) -> ProviderResponse | CallProblem: ...


def run_flow(
    flow: Generator[Effect, Any, T],
    state: Any,
    sender: Callable[[], SyncSender],
    read_body: Callable[[ReadBody], bytes | BodyProblem],
) -> T:
    """Drive ``flow`` to its decision with blocking I/O (the WSGI door, Flask, sync Django)."""
    result: Any = None
    error: Exception | None = None
    try:
        while True:
            if error is None:
                effect = flow.send(result)
            else:
                effect, error = flow.throw(error), None
            if type(effect) is StateOp:
                try:
                    result = state.run(effect)
                except Exception as exc:  # the flow decides what a failed operation means
                    error = exc
            elif type(effect) is ProviderCall:
                result = sender().send(effect)
            elif type(effect) is ReadBody:
                result = read_body(effect)
            elif type(effect) is Emit:
                emit(effect)
                result = None
            else:  # pragma: no cover - the flow yields nothing else
                raise TypeError(f"unknown effect {effect!r}")
    except StopIteration as stop:
        value: T = stop.value
        return value
    except BaseException:
        flow.close()
        raise


async def arun_flow(
    flow: Generator[Effect, Any, T],
    state: Any,
    sender: Callable[[], AsyncSender],
    read_body: Callable[[ReadBody], Awaitable[bytes | BodyProblem]],
) -> T:
    """Drive ``flow`` to its decision on an event loop (the ASGI door, FastAPI, async Django)."""
    result: Any = None
    error: Exception | None = None
    try:
        while True:
            if error is None:
                effect = flow.send(result)
            else:
                effect, error = flow.throw(error), None
            if type(effect) is StateOp:
                try:
                    result = await state.arun(effect)
                except Exception as exc:  # the flow decides what a failed operation means
                    error = exc
            elif type(effect) is ProviderCall:
                result = await sender().send(effect)
            elif type(effect) is ReadBody:
                result = await read_body(effect)
            elif type(effect) is Emit:
                await aemit(effect)
                result = None
            else:  # pragma: no cover - the flow yields nothing else
                raise TypeError(f"unknown effect {effect!r}")
    except StopIteration as stop:
        value: T = stop.value
        return value
    except BaseException:
        flow.close()  # a cancelled call hands its breaker permit back, counting nothing
        raise


def emit(effect: Emit) -> None:
    """Call the hooks with no loop to run an async one: such a hook is the site's bug."""
    for hook in effect.hooks:
        try:
            outcome = hook(effect.event)
            if inspect.isawaitable(outcome):
                close = getattr(outcome, "close", None)
                if close is not None:
                    close()
                raise TypeError("an async event hook cannot run under WSGI")
        except Exception as exc:
            run_hook_errors(hook, exc)


async def aemit(effect: Emit) -> None:
    for hook in effect.hooks:
        try:
            outcome = hook(effect.event)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            run_hook_errors(hook, exc)


__all__ = ["AsyncSender", "SyncSender", "T", "aemit", "arun_flow", "emit", "run_flow"]
