"""Login, logout, team switcher and the styled error pages."""

from __future__ import annotations

import pytest

from accounts.tests.factories import DEFAULT_PASSWORD
from experiments.pages.context import SESSION_TEAM_KEY

pytestmark = pytest.mark.django_db


def test_login_page_renders_the_form(client):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content


def test_login_with_the_right_password_goes_to_the_experiments(client, viewer):
    response = client.post("/login/", {"username": viewer.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(viewer.pk)


def test_login_keeps_next(client, viewer):
    response = client.post("/login/", {"username": viewer.username, "password": DEFAULT_PASSWORD, "next": "/models/"})
    assert response["Location"] == "/models/"


def test_login_with_a_wrong_password_shows_an_error(client, viewer):
    response = client.post("/login/", {"username": viewer.username, "password": "wrong"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_throttled_login_is_a_form_error(client, viewer, settings):
    settings.LOGIN_THROTTLE = {**settings.LOGIN_THROTTLE, "FAILURES_PER_USERNAME": 2, "NAMESPACE": "pages-test"}
    for _ in range(2):
        client.post("/login/", {"username": viewer.username, "password": "wrong"})
    response = client.post("/login/", {"username": viewer.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 200
    assert b"Too many failed login attempts" in response.content
    assert "_auth_user_id" not in client.session


def test_signed_in_user_skips_the_login_page(client, viewer):
    client.force_login(viewer)
    response = client.get("/login/")
    assert response.status_code == 302


def test_pages_need_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_logout_is_post_only(client, viewer):
    client.force_login(viewer)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_header_lists_the_users_teams(client, viewer, team, other_team):
    client.force_login(viewer)
    response = client.get("/")
    assert f'<option value="{team.pk}"'.encode() in response.content
    assert f'<option value="{other_team.pk}"'.encode() not in response.content


def test_team_switch_remembers_a_team_of_the_user(client, viewer, team):
    client.force_login(viewer)
    response = client.post("/team/switch/", {"team": team.pk, "next": "/models/"})
    assert response.status_code == 302
    assert response["Location"] == "/models/"
    assert client.session[SESSION_TEAM_KEY] == team.pk


def test_team_switch_to_another_team_is_a_404(client, viewer, other_team):
    client.force_login(viewer)
    response = client.post("/team/switch/", {"team": other_team.pk})
    assert response.status_code == 404
    assert SESSION_TEAM_KEY not in client.session


def test_team_switch_to_all_teams_forgets_the_choice(client, viewer, team):
    client.force_login(viewer)
    client.post("/team/switch/", {"team": team.pk})
    client.post("/team/switch/", {"team": ""})
    assert SESSION_TEAM_KEY not in client.session


def test_team_switch_ignores_an_external_next(client, viewer, team):
    client.force_login(viewer)
    response = client.post("/team/switch/", {"team": team.pk, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_team_switch_with_a_malformed_team_changes_nothing(client, viewer):
    client.force_login(viewer)
    response = client.post("/team/switch/", {"team": "abc"})
    assert response.status_code == 302
    assert SESSION_TEAM_KEY not in client.session


def test_unknown_page_is_the_styled_404(client, viewer):
    client.force_login(viewer)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b"<h1>Not found</h1>" in response.content
    assert b"/static/css/app.css" in response.content


def test_unknown_api_url_stays_json(client, viewer):
    client.force_login(viewer)
    response = client.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
