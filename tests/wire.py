"""Adapters between the providers' own wire types and httpx, for tests written against httpx,
and a tiny synchronous driver for the gate's sans-I/O flow.

Providers build a ``ProviderRequest`` and read a ``ProviderResponse``; tests that assert on
an ``httpx.Request`` (``.url``, ``.headers``, ``.read()``) or send through an emulator's
in-process transport go through ``as_httpx``, ``from_httpx`` and ``send_in_process``.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from captcha_guard._effects import Decision, Emit, Flow, ProviderCall, ReadBody
from captcha_guard._flow import Gate
from captcha_guard._memory import MemoryState
from captcha_guard._request import CAPTCHA_HEADER, ClientRequest
from captcha_guard._route import Route
from captcha_guard._state import StateOp
from captcha_guard.providers._wire import ProviderRequest, ProviderResponse
from captcha_guard.testing import Emulator


def as_httpx(request: ProviderRequest) -> httpx.Request:
    """The httpx request that sends ``request``: its headers as given, in order, plus the
    Host and Content-Length any client adds."""
    return httpx.Request(
        request.method, request.url, headers=list(request.headers), content=request.body
    )


def from_httpx(response: httpx.Response) -> ProviderResponse:
    """``response`` as a provider reads it: lower-case header names, the whole body."""
    body = response.read()
    return ProviderResponse(response.status_code, dict(response.headers.items()), body)


def send_in_process(emulator: Emulator, request: ProviderRequest) -> ProviderResponse:
    """``request`` sent to ``emulator`` through its in-process transport (no socket)."""
    with httpx.Client(transport=emulator.transport()) as client:
        return from_httpx(client.send(as_httpx(request)))


# The flow, driven without I/O.

#: What a ProviderCall is answered with: a response, a CallProblem (BUSY included), or a
#: function of the call's request that returns one of those.
Answer = Any


@dataclass
class FlowRun:
    """What one driven flow did: its decision, the effects it yielded, the events emitted."""

    decision: Decision | None = None
    effects: list[Any] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)

    @property
    def calls(self) -> list[ProviderCall]:
        return [e for e in self.effects if isinstance(e, ProviderCall)]


_STATES: weakref.WeakKeyDictionary[Gate, MemoryState] = weakref.WeakKeyDictionary()


def state_of(gate: Gate) -> MemoryState:
    """The in-process state a door would give ``gate``: one per gate, with the providers' own
    breakers bound, so ``provider.breaker.state`` tells the truth."""
    state = _STATES.get(gate)
    if state is None:
        state = _STATES[gate] = MemoryState()
        for route in gate.routes:
            if route.provider.remote:
                state.bind_breaker(route.provider_name, route.provider.breaker)
        gate.abandon = state.abandon
    return state


def drive(
    flow: Flow,
    *,
    body: Any = b"",
    answer: Answer = None,
    sent: Any = None,
    state: Any = None,
) -> FlowRun:
    """Run ``flow`` to its end: ``ReadBody`` gets ``body`` (bytes or a BodyProblem),
    ``ProviderCall`` gets ``answer`` (called with the ProviderCall when callable), ``Emit``
    calls its hooks and records the event, a ``StateOp`` runs on ``state`` (its exception
    thrown in). ``sent`` is sent first: None for a fresh flow, the answer to the effect it
    waits on for a flow resumed (after ``until_call``)."""
    run = FlowRun()
    error: Exception | None = None
    while True:
        try:
            effect = flow.send(sent) if error is None else flow.throw(error)
        except StopIteration as stop:
            run.decision = stop.value
            return run
        error = None
        run.effects.append(effect)
        if isinstance(effect, StateOp):
            if state is None:
                raise AssertionError(f"a state operation with no state to run it: {effect!r}")
            try:
                sent = state.run(effect)
            except Exception as exc:
                error = exc
        elif isinstance(effect, ReadBody):
            sent = body
        elif isinstance(effect, ProviderCall):
            if answer is None:
                raise AssertionError(f"unexpected provider call: {effect!r}")
            sent = answer(effect) if callable(answer) else answer
        elif isinstance(effect, Emit):
            run.events.append(effect.event)
            for hook in effect.hooks:
                hook(effect.event)
            sent = None
        else:  # pragma: no cover
            raise AssertionError(f"unknown effect {effect!r}")


def run_flow(
    gate: Gate,
    route: Route,
    request: ClientRequest,
    *,
    body: Any = b"",
    answer: Answer = None,
    state: Any = None,
) -> Decision:
    """The decision of ``gate`` on ``request`` (see ``drive``), its state ``state`` or else
    ``state_of(gate)``."""
    flow = gate.decide(route, request)
    state = state_of(gate) if state is None else state
    decision = drive(flow, body=body, answer=answer, state=state).decision
    assert decision is not None
    return decision


def until_call(flow: Flow, *, body: Any = b"", state: Any = None) -> ProviderCall | Decision:
    """Run ``flow`` up to its provider call and leave it there (the call is out); or, when
    it decides without one, its decision. Emitted events are dropped; state operations run
    on ``state``."""
    sent: Any = None
    while True:
        try:
            effect = flow.send(sent)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if isinstance(effect, ProviderCall):
            return effect
        if isinstance(effect, StateOp):
            sent = state.run(effect)
        else:
            sent = body if isinstance(effect, ReadBody) else None


def client_request(
    method: str = "POST",
    path: str = "/login",
    client_host: str | None = "127.0.0.1",
    headers: Mapping[str, str] | None = None,
    *,
    content_type: str = "",
    query: bytes = b"",
    header_value: str | None = None,
    content_length: str | None = None,
) -> ClientRequest:
    """A fresh request as a door builds it (the flow stores the body on it: never share one).
    ``header_value`` is the ``x-captcha`` header."""
    names = dict(headers or {})
    if content_type:
        names.setdefault("content-type", content_type)
    if header_value is not None:
        names[CAPTCHA_HEADER] = header_value
    return ClientRequest(
        method,
        path,
        client_host,
        names,
        raw={},
        content_type=content_type,
        content_length=content_length,
        query=query,
    )


__all__ = [
    "FlowRun",
    "as_httpx",
    "client_request",
    "drive",
    "from_httpx",
    "run_flow",
    "send_in_process",
    "until_call",
]
