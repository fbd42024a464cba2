"""The login view: a form on GET, a sign-in on POST, which the captcha protects."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from captcha_guard.django import captcha_required

#: A stand-in for the site's users (a real site calls django.contrib.auth.authenticate).
USERS = {"ada": "lovelace"}


@captcha_required  # POST is judged; GET renders the form with request.captcha None
def login(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "login.html")
    user = request.POST.get("username", "")
    if USERS.get(user) != request.POST.get("password"):
        return render(request, "login.html", {"error": "wrong name or password"}, status=401)
    # request.captcha.outcome: "passed", or "fallback" while GeeTest cannot be reached
    return HttpResponse(f"welcome {user} ({request.captcha.outcome.value})")
