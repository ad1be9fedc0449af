"""Self-registration is off unless ALLOW_SIGNUP is set."""

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from accounts.tests.factories import UserFactory

SIGNUP = "/api/v1/auth/signup/"
GOOD = {"username": "newcomer", "password": "a-much-longer-passphrase-42", "email": "n@example.com"}


def test_signup_is_off_by_default(db):
    response = APIClient().post(SIGNUP, GOOD, format="json")
    assert response.status_code == 404
    assert not User.objects.filter(username="newcomer").exists()


@pytest.fixture
def signup_on(settings):
    settings.ALLOW_SIGNUP = True


def test_signup_creates_a_user_when_enabled(db, signup_on):
    response = APIClient().post(SIGNUP, GOOD, format="json")
    assert response.status_code == 201
    assert response.json()["username"] == "newcomer"
    user = User.objects.get(username="newcomer")
    assert user.check_password(GOOD["password"]) and not user.is_staff
    assert AuditEvent.objects.filter(action="user.signup", actor=user).exists()


def test_signed_up_user_can_get_a_jwt(db, signup_on):
    APIClient().post(SIGNUP, GOOD, format="json")
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "newcomer", "password": GOOD["password"]}, format="json"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "password": "short"},
        {**GOOD, "password": "newcomer99"},
        {**GOOD, "username": "bad name!"},
        {**GOOD, "email": "nope"},
        {"username": "newcomer"},
        {**GOOD, "username": 5},
    ],
)
def test_signup_rejects_bad_input(db, signup_on, body):
    response = APIClient().post(SIGNUP, body, format="json")
    assert response.status_code == 400
    assert not User.objects.exists()


def test_signup_with_taken_username_is_409(db, signup_on):
    UserFactory(username="newcomer")
    assert APIClient().post(SIGNUP, GOOD, format="json").status_code == 409
    assert User.objects.count() == 1
