"""``CaptchaGuardMiddleware``: ``rules=`` matched by path, as the doors match them, and the
proof-of-work challenges served, before Django resolves the URL. Sync and async."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from .._effects import Pass, Redeem
from .._request import from_environ
from .._responses import Denial
from .._route import Route
from ..wsgi import _route_path
from ._core import guard
from ._judge import adecide, aredeem, decide, earlier_verdict, redeem
from ._respond import add_headers, challenge, refusal


class CaptchaGuardMiddleware:
    """Put it in ``MIDDLEWARE``; it reads ``settings.CAPTCHA_GUARD``. Every request leaves it
    with ``request.captcha``: the verdict of a request a rule (or a door in front) judged,
    else None."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        step = self._before(request)
        if isinstance(step, HttpResponseBase):
            return step
        if isinstance(step, Redeem):
            return challenge(redeem(guard(), request))
        if step is None:
            return self.get_response(request)
        decision = decide(guard(), step, request)
        if type(decision) is not Pass:
            return refusal(request, decision.denial, guard().on_reject)  # type: ignore[union-attr]
        request.captcha = decision.verdict
        return _adding(self.get_response(request), decision)

    async def _acall(self, request: HttpRequest) -> Any:
        step = self._before(request)
        if isinstance(step, HttpResponseBase):
            return step
        if isinstance(step, Redeem):
            return challenge(await aredeem(guard(), request))
        get_response: Callable[[HttpRequest], Awaitable[Any]] = self.get_response
        if step is None:
            return await get_response(request)
        decision = await adecide(guard(), step, request)
        if type(decision) is not Pass:
            return refusal(request, decision.denial, guard().on_reject)  # type: ignore[union-attr]
        request.captcha = decision.verdict
        return _adding(await get_response(request), decision)

    def _before(self, request: HttpRequest) -> Route | HttpResponseBase | Redeem | None:
        """The route to judge, an answer given now, or None to go on unjudged."""
        earlier = earlier_verdict(request)
        request.captcha = earlier
        if earlier is not None:
            return None
        core = guard()
        method = request.method or "GET"
        path = _route_path(request.META.get("PATH_INFO", "")) or request.path_info
        found = core.gate.route(method, path)
        if found is None:
            if path not in core.gate.challenge_paths:
                return None
            # The sender too, as the doors pass it: proof of work prices a challenge by its
            # network and the policy's signals.
            sender = from_environ(request.META, path, core.client_address.wsgi)
            reply = core.gate.challenge(method, path, sender)
            if reply is None or isinstance(reply, Redeem):
                return reply  # None: go on; REDEEM: the private-token path, sync or async
            return challenge(reply)
        if isinstance(found, Denial):
            return refusal(request, found, core.on_reject)
        return found


def _adding(response: Any, decision: Pass) -> Any:
    if decision.headers:
        add_headers(response, decision.headers)
    return response


__all__ = ["CaptchaGuardMiddleware"]
