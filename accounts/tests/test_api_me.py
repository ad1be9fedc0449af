"""/api/v1/me/ and /api/v1/me/password/."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import AuditEvent, Role, User
from accounts.tests.factories import DEFAULT_PASSWORD, MembershipFactory, UserFactory

ME = "/api/v1/me/"
PASSWORD = "/api/v1/me/password/"
NEW_PASSWORD = "a-much-longer-passphrase-42"


@pytest.fixture
def user(db):
    return UserFactory(username="ada")


def test_me_lists_teams_and_roles(user, client_for):
    membership = MembershipFactory(user=user, role=Role.EDITOR)
    body = client_for(user).get(ME).json()
    assert body["username"] == "ada"
    assert body["teams"] == [{"team_id": membership.team_id, "team": membership.team.name, "role": "editor"}]


def test_patch_me_changes_profile(user, client_for):
    response = client_for(user).patch(ME, {"first_name": "Ada", "email": "ada@lovelace.org"}, format="json")
    assert response.status_code == 200
    assert response.json()["first_name"] == "Ada"
    user.refresh_from_db()
    assert (user.first_name, user.email) == ("Ada", "ada@lovelace.org")


@pytest.mark.parametrize("body", [{"email": "not-an-email"}, {"first_name": 3}, {"first_name": "x" * 151}])
def test_patch_me_with_bad_input_is_400(user, client_for, body):
    response = client_for(user).patch(ME, body, format="json")
    assert response.status_code == 400
    user.refresh_from_db()
    assert user.email == "ada@example.com" and user.first_name == ""


def test_patch_me_ignores_privileged_fields(user, client_for):
    client_for(user).patch(ME, {"is_staff": True, "username": "root"}, format="json")
    user.refresh_from_db()
    assert (user.is_staff, user.username) == (False, "ada")


def test_password_change(user, client_for):
    response = client_for(user).post(
        PASSWORD, {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}, format="json"
    )
    assert response.status_code == 204
    assert User.objects.get(pk=user.pk).check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="password.change", actor=user).exists()


def test_password_change_keeps_the_session_and_kills_old_jwts(user):
    old_access = str(AccessToken.for_user(user))
    client = APIClient()
    client.login(username="ada", password=DEFAULT_PASSWORD)
    client.post(PASSWORD, {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD}, format="json")
    assert client.get(ME).status_code == 200
    jwt_client = APIClient()
    jwt_client.credentials(HTTP_AUTHORIZATION=f"Bearer {old_access}")
    assert jwt_client.get(ME).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"old_password": "wrong", "new_password": NEW_PASSWORD}, "old_password"),
        ({"old_password": DEFAULT_PASSWORD, "new_password": "short"}, "new_password"),
        ({"old_password": DEFAULT_PASSWORD, "new_password": "password123"}, "new_password"),
        ({"old_password": DEFAULT_PASSWORD, "new_password": "12345678901234"}, "new_password"),
        ({"old_password": DEFAULT_PASSWORD}, "new_password"),
        ({"old_password": DEFAULT_PASSWORD, "new_password": 12345678901}, "new_password"),
    ],
)
def test_password_change_rejects_bad_input(user, client_for, body, field):
    response = client_for(user).post(PASSWORD, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["details"]
    assert User.objects.get(pk=user.pk).check_password(DEFAULT_PASSWORD)
    assert not AuditEvent.objects.exists()
