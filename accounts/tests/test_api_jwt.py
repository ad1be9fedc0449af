"""JWT obtain / refresh (rotation + blacklist) / logout."""

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import AuditEvent
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

TOKEN = "/api/v1/auth/token/"
REFRESH = "/api/v1/auth/token/refresh/"
LOGOUT = "/api/v1/auth/logout/"


@pytest.fixture
def user(db):
    return UserFactory(username="ada")


def obtain(client=None, password=DEFAULT_PASSWORD):
    return (client or APIClient(REMOTE_ADDR="10.9.8.7")).post(
        TOKEN, {"username": "ada", "password": password}, format="json"
    )


def test_obtain_returns_a_working_pair_and_audits(user):
    response = obtain()
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert client.get("/api/v1/me/").json()["username"] == "ada"
    event = AuditEvent.objects.get(action="login.success")
    assert (event.actor, event.ip, event.details["method"]) == (user, "10.9.8.7", "jwt")


def test_obtain_with_wrong_password_is_401_and_audited(user):
    response = obtain(password="nope")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert AuditEvent.objects.filter(action="login.failure", ip="10.9.8.7", details__username="ada").count() == 1


def test_obtain_for_inactive_user_is_401(user):
    user.is_active = False
    user.save()
    assert obtain().status_code == 401


@pytest.mark.parametrize(
    "body", [{"username": "ada"}, {"password": "x"}, {"username": ["ada"], "password": "x"}, ["ada"], "x"]
)
def test_obtain_with_bad_body_is_400(user, body):
    response = APIClient().post(TOKEN, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_obtain_with_malformed_json_is_400(user):
    response = APIClient().post(TOKEN, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert not AuditEvent.objects.exists()


def test_refresh_rotates_and_blacklists_the_old_token(user):
    refresh = obtain().json()["refresh"]
    response = APIClient().post(REFRESH, {"refresh": refresh}, format="json")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh"}
    assert response.json()["refresh"] != refresh
    reused = APIClient().post(REFRESH, {"refresh": refresh}, format="json")
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "token_not_valid"


def test_refresh_with_garbage_is_401(db):
    assert APIClient().post(REFRESH, {"refresh": "garbage"}, format="json").status_code == 401


def test_refresh_for_deleted_user_is_401(user):
    refresh = str(RefreshToken.for_user(user))
    user.delete()
    response = APIClient().post(REFRESH, {"refresh": refresh}, format="json")
    assert response.status_code == 401


def test_refresh_after_password_change_is_401(user):
    refresh = str(RefreshToken.for_user(user))
    user.set_password("another-long-passphrase-9")
    user.save()
    response = APIClient().post(REFRESH, {"refresh": refresh}, format="json")
    assert response.status_code == 401
    assert "password" in response.json()["error"]["message"]


def test_refresh_with_an_access_token_is_401(user):
    access = obtain().json()["access"]
    assert APIClient().post(REFRESH, {"refresh": access}, format="json").status_code == 401


def test_logout_blacklists_the_refresh_token(user):
    refresh = obtain().json()["refresh"]
    response = APIClient(REMOTE_ADDR="10.0.0.1").post(LOGOUT, {"refresh": refresh}, format="json")
    assert response.status_code == 204
    assert BlacklistedToken.objects.count() == 1
    assert APIClient().post(REFRESH, {"refresh": refresh}, format="json").status_code == 401
    event = AuditEvent.objects.get(action="logout")
    assert (event.actor, event.ip) == (user, "10.0.0.1")


def test_logout_twice_is_401(user):
    refresh = obtain().json()["refresh"]
    APIClient().post(LOGOUT, {"refresh": refresh}, format="json")
    assert APIClient().post(LOGOUT, {"refresh": refresh}, format="json").status_code == 401
    assert AuditEvent.objects.filter(action="logout").count() == 1


def test_logout_without_token_or_session_is_400(db):
    response = APIClient().post(LOGOUT, {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["refresh"]


def test_logout_with_wrong_type_is_400(db):
    assert APIClient().post(LOGOUT, {"refresh": 42}, format="json").status_code == 400


def test_logout_ends_a_session(user):
    client = APIClient()
    client.login(username="ada", password=DEFAULT_PASSWORD)
    assert client.post(LOGOUT, {}, format="json").status_code == 204
    assert client.get("/api/v1/me/").status_code == 401
    assert AuditEvent.objects.filter(action="logout", actor=user, details__method="session").exists()
