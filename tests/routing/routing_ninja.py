"""The django-ninja URLconf of the routing differential (tests/routing/routing_apps.py): the same
views, routed by Django's resolver from ninja's own path syntax, typed by pydantic."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import path
from ninja import NinjaAPI

from tests.routing.routing_apps import _answer, _django_verdict

api = NinjaAPI(urls_namespace="routing")


@api.post("/login")
def login(request: HttpRequest) -> Any:
    return _answer("login", _django_verdict(request))


@api.post("/posts/{id}/comments")
def comments(request: HttpRequest, id: int) -> Any:
    return _answer("comments", _django_verdict(request))


@api.post("/reports/{name}")
def reports(request: HttpRequest, name: str) -> Any:
    return _answer("reports", _django_verdict(request))


@api.post("/users/{name}/follow")
def follow(request: HttpRequest, name: str) -> Any:
    return _answer("follow", _django_verdict(request))


urlpatterns = [path("", api.urls)]
