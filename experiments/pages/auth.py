"""Login, logout and the header's team switcher."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse, reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts.selectors import team_get
from experiments.pages.context import SESSION_TEAM_KEY
from experiments.pages.errors import page_errors
from experiments.pages.forms import LoginForm, TeamSwitchForm


class LoginView(auth_views.LoginView):
    """Django's login view with the site's template; signed-in users go straight on."""

    template_name = "registration/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    """POST-only logout (Django's), back to the login page."""

    next_page = reverse_lazy("pages:login")


@require_POST
@login_required
@page_errors
def team_switch(request: HttpRequest) -> HttpResponse:
    """Remember the chosen team in the session (a team the user is not in is a 404)."""
    form = TeamSwitchForm(request.POST)
    target = reverse("pages:experiment_list")
    if form.is_valid():
        team_id = form.cleaned_data["team"]
        if team_id:
            team_get(user=request.user, team_id=team_id)
            request.session[SESSION_TEAM_KEY] = team_id
        else:
            request.session.pop(SESSION_TEAM_KEY, None)
        next_url = form.cleaned_data["next"]
        if next_url and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = next_url
    return HttpResponseRedirect(target)
