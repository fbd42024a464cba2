"""The Django REST framework URLconf of the routing differential (tests/routing/routing_apps.py):
the same views as the Django app, with format suffixes (``format_suffix_patterns``) and a
``DefaultRouter`` ViewSet whose ``@action`` is ``/accounts/login/`` (and ``.json`` twins)."""

from __future__ import annotations

from typing import Any

from django.urls import include, path, re_path
from rest_framework import viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.urlpatterns import format_suffix_patterns

from tests.routing.routing_apps import _answer, _django_verdict


def _view(name: str) -> Any:
    @api_view(["POST"])
    def endpoint(request: Any, format: str | None = None, **kwargs: Any) -> Response:
        return Response(_answer(name, _django_verdict(request._request)))

    return endpoint


class Accounts(viewsets.ViewSet):
    @action(detail=False, methods=["post"])
    def login(self, request: Any, format: str | None = None) -> Response:
        return Response(_answer("accounts-login", _django_verdict(request._request)))


router = DefaultRouter()
router.register("accounts", Accounts, basename="accounts")

urlpatterns = [
    *format_suffix_patterns(
        [
            path("login", _view("login")),
            path("posts/<int:id>/comments", _view("comments")),
            re_path(r"^reports/(?P<name>[^/]+)$", _view("reports")),
            path("users/<str:name>/follow", _view("follow")),
        ]
    ),
    path("", include(router.urls)),
]
