"""Views that answer what they read: the view's name, the verdict, and the ``lot_number`` the
view itself found in Django's (or DRF's) parsed request."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views import View
from rest_framework import viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.views import APIView

from captcha_guard.django import captcha_required
from tests.adapters.adapter_apps import outcome


def _lot(request: HttpRequest) -> Any:
    if request.method == "POST" and "lot_number" in request.POST:
        return request.POST["lot_number"]
    if request.content_type == "application/json" and request.body:
        try:
            document = json.loads(request.body)
        except ValueError:
            return None
        if isinstance(document, dict):
            nested = document.get("captcha")
            return (nested if isinstance(nested, dict) else document).get("lot_number")
    return None


def seen(request: HttpRequest, view: str, **more: Any) -> JsonResponse:
    verdict = outcome(request.captcha)  # type: ignore[attr-defined]
    return JsonResponse({"view": view, "verdict": verdict, "lot_number": _lot(request), **more})


@captcha_required
def login(request: HttpRequest) -> JsonResponse:
    return seen(request, "login")


@captcha_required
async def alogin(request: HttpRequest) -> JsonResponse:
    return seen(request, "alogin")


@captcha_required(provider="strict", fail_open=False)
def strict(request: HttpRequest) -> JsonResponse:
    return seen(request, "strict")


@captcha_required(methods=["GET"])
def any_method(request: HttpRequest) -> JsonResponse:
    return seen(request, "any")


def ruled(request: HttpRequest) -> JsonResponse:
    return seen(request, "ruled")


@captcha_required
def contact(request: HttpRequest) -> JsonResponse:
    return seen(request, "contact")


@captcha_required
class Feedback(View):
    def post(self, request: HttpRequest) -> JsonResponse:
        return seen(request, "feedback")


@captcha_required
class AsyncFeedback(View):
    async def post(self, request: HttpRequest) -> JsonResponse:
        return seen(request, "afeedback")


def _drf(request: Any, view: str) -> Response:
    data = request.data
    lot = data.get("lot_number") if hasattr(data, "get") else None
    if lot is None and isinstance(data, dict) and isinstance(data.get("captcha"), dict):
        lot = data["captcha"].get("lot_number")
    return Response({"view": view, "verdict": outcome(request.captcha), "lot_number": lot})


@captcha_required
class Signup(APIView):
    def post(self, request: Any, format: str | None = None) -> Response:
        return _drf(request, "signup")


@captcha_required
class CommentViewSet(viewsets.ViewSet):
    def list(self, request: Any, format: str | None = None) -> Response:
        return Response({"view": "comments-list", "verdict": outcome(request.captcha)})

    def create(self, request: Any, format: str | None = None) -> Response:
        return _drf(request, "comments-create")


@captcha_required
@api_view(["POST"])
def ping(request: Any, format: str | None = None) -> Response:
    return _drf(request, "ping")
