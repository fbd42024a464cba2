from __future__ import annotations

from django.conf.urls.i18n import i18n_patterns
from django.urls import include, path
from rest_framework.routers import DefaultRouter
from rest_framework.urlpatterns import format_suffix_patterns

from tests.adapters.django_site import views

router = DefaultRouter()
router.register("api/comments", views.CommentViewSet, basename="comment")

urlpatterns = [
    path("login/", views.login),
    path("alogin/", views.alogin),
    path("strict/", views.strict),
    path("any/", views.any_method),
    path("ruled", views.ruled),
    path("feedback/", views.Feedback.as_view()),
    path("afeedback/", views.AsyncFeedback.as_view()),
    *format_suffix_patterns(
        [path("api/signup", views.Signup.as_view()), path("api/ping", views.ping)]
    ),
    path("", include(router.urls)),
    *i18n_patterns(path("contact/", views.contact)),
]
