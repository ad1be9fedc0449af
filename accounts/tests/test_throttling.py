"""Failed logins are throttled per username and per IP, for Basic, JWT obtain and the admin form."""

import time

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts import throttling
from accounts.models import AuditEvent
from accounts.tests.conftest import basic
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

ME = "/api/v1/me/"
TOKEN = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def small_limits(settings):
    settings.LOGIN_THROTTLE = {**settings.LOGIN_THROTTLE, "FAILURES_PER_USERNAME": 3, "FAILURES_PER_IP": 5}


@pytest.fixture
def user(db):
    return UserFactory(username="ada")


def basic_get(username, password, ip="127.0.0.1"):
    client = APIClient(REMOTE_ADDR=ip)
    client.credentials(HTTP_AUTHORIZATION=basic(username, password))
    return client.get(ME)


def test_basic_failures_lead_to_429_with_retry_after(user):
    for _ in range(3):
        assert basic_get("ada", "wrong").status_code == 401
    response = basic_get("ada", "wrong")
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 900


def test_throttled_username_is_refused_even_with_the_right_password(user):
    for _ in range(3):
        basic_get("ada", "wrong")
    assert basic_get("ada", DEFAULT_PASSWORD).status_code == 429


def test_throttled_attempts_are_not_checked_or_counted(user):
    for _ in range(5):
        basic_get("ada", "wrong")
    assert AuditEvent.objects.filter(action="login.failure").count() == 3


def test_success_resets_the_username_counter(user):
    for _ in range(2):
        basic_get("ada", "wrong")
    assert basic_get("ada", DEFAULT_PASSWORD).status_code == 200
    for _ in range(2):
        assert basic_get("ada", "wrong").status_code == 401
    assert basic_get("ada", DEFAULT_PASSWORD).status_code == 200


def test_ip_limit_spans_usernames(db):
    for n in range(5):
        assert basic_get(f"nobody{n}", "wrong", ip="10.0.0.9").status_code == 401
    assert basic_get("someone-else", "wrong", ip="10.0.0.9").status_code == 429
    assert basic_get("someone-else", "wrong", ip="10.0.0.10").status_code == 401


def test_unknown_usernames_are_counted_too(db):
    for _ in range(3):
        basic_get("ghost", "x")
    assert basic_get("ghost", "x").status_code == 429


def test_basic_with_a_wrong_api_token_as_password_is_counted(user, make_token):
    _, theirs = make_token(UserFactory(username="bob"))
    for password in (theirs, "mlp_abcdefgh_forged", theirs):
        assert basic_get("ada", password).status_code == 401
    assert basic_get("ada", DEFAULT_PASSWORD).status_code == 429


def test_jwt_obtain_is_throttled(user):
    client = APIClient()
    for _ in range(3):
        assert client.post(TOKEN, {"username": "ada", "password": "bad"}, format="json").status_code == 401
    response = client.post(TOKEN, {"username": "ada", "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 429
    assert "Retry-After" in response


def test_basic_failures_count_for_jwt_obtain(user):
    for _ in range(3):
        basic_get("ada", "wrong")
    response = APIClient().post(TOKEN, {"username": "ada", "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 429


def test_admin_login_form_is_throttled(db):
    UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    for _ in range(3):
        response = client.post("/admin/login/", {"username": "root", "password": "bad"})
        assert response.status_code == 200  # the form re-renders with an error
    response = client.post("/admin/login/", {"username": "root", "password": DEFAULT_PASSWORD})
    assert response.status_code == 429
    assert "Retry-After" in response
    assert "_auth_user_id" not in client.session


def test_window_expiry_allows_logins_again(settings):
    settings.LOGIN_THROTTLE = {**settings.LOGIN_THROTTLE, "WINDOW_SECONDS": 2}
    for _ in range(3):
        throttling.record_failure(username="ada", ip=None)
    with pytest.raises(throttling.LoginThrottled):
        throttling.check(username="ada", ip=None)
    time.sleep(2.2)
    throttling.check(username="ada", ip=None)


def test_reset_clears_username_and_ip(db):
    for n in range(5):
        basic_get(f"nobody{n}", "wrong")
    throttling.reset(username="nobody0", ip="127.0.0.1")
    assert basic_get("nobody0", "wrong").status_code == 401


def test_counters_are_isolated_per_namespace(user, settings):
    for _ in range(3):
        basic_get("ada", "wrong")
    settings.LOGIN_THROTTLE = {**settings.LOGIN_THROTTLE, "NAMESPACE": "fresh"}
    assert basic_get("ada", DEFAULT_PASSWORD).status_code == 200
