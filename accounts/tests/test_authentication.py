"""Every way of authenticating against the API, with real requests."""

import time
from datetime import timedelta

import jwt
import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from accounts.authentication import forget_cached_tokens
from accounts.models import ApiToken, AuditEvent
from accounts.services import api_token_revoke
from accounts.tests.conftest import basic
from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory

ME = "/api/v1/me/"


@pytest.fixture
def user(db):
    return UserFactory(username="ada")


def assert_401(response):
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] in {"authentication_failed", "not_authenticated", "token_not_valid"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_anonymous_gets_401_with_challenge(db):
    response = APIClient().get(ME)
    assert_401(response)
    assert response.json()["error"]["code"] == "not_authenticated"


def test_api_token_authenticates(user, make_token, bearer_client):
    _, plaintext = make_token(user)
    response = bearer_client(plaintext).get(ME)
    assert response.status_code == 200
    assert response.json()["username"] == "ada"


def test_api_token_records_last_use_at_most_once_a_minute(user, make_token, bearer_client):
    token, plaintext = make_token(user)
    client = bearer_client(plaintext)
    client.get(ME)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    client.get(ME)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=2))
    forget_cached_tokens([token.prefix])  # a minute later the cached row (10 s) has expired as well
    client.get(ME)
    assert ApiToken.objects.get(pk=token.pk).last_used_at > first


def test_api_token_auth_is_one_query_when_recently_used(user, make_token, bearer_client, django_assert_num_queries):
    token, plaintext = make_token(user)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    client = bearer_client(plaintext)
    # token+user lookup, then the user's memberships for the response
    with django_assert_num_queries(2):
        assert client.get(ME).status_code == 200


def test_cached_api_token_needs_no_query(user, make_token, bearer_client, django_assert_num_queries):
    _, plaintext = make_token(user)
    client = bearer_client(plaintext)
    assert client.get(ME).status_code == 200  # loads and caches the token row, records last use
    # only the user's memberships for the response
    with django_assert_num_queries(1):
        assert client.get(ME).status_code == 200


def test_revoking_a_cached_token_takes_effect_on_the_next_request(user, make_token, bearer_client):
    token, plaintext = make_token(user)
    client = bearer_client(plaintext)
    assert client.get(ME).status_code == 200
    api_token_revoke(user=user, token=token)
    assert_401(client.get(ME))


def test_deactivating_the_user_of_a_cached_token_takes_effect_on_the_next_request(user, make_token, bearer_client):
    _, plaintext = make_token(user)
    client = bearer_client(plaintext)
    assert client.get(ME).status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_401(client.get(ME))


def test_deleting_a_cached_token_takes_effect_on_the_next_request(user, make_token, bearer_client):
    token, plaintext = make_token(user)
    client = bearer_client(plaintext)
    assert client.get(ME).status_code == 200
    token.delete()
    assert_401(client.get(ME))


@override_settings(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
)
def test_api_tokens_work_and_revoke_while_the_cache_is_down(user, make_token, bearer_client):
    token, plaintext = make_token(user)
    client = bearer_client(plaintext)
    assert client.get(ME).status_code == 200
    api_token_revoke(user=user, token=token)
    assert_401(client.get(ME))


def test_revoked_api_token_is_401(user, make_token, bearer_client):
    token, plaintext = make_token(user)
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    response = bearer_client(plaintext).get(ME)
    assert_401(response)
    assert "revoked" in response.json()["error"]["message"]


def test_expired_api_token_is_401(user, make_token, bearer_client):
    token, plaintext = make_token(user)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer_client(plaintext).get(ME)
    assert_401(response)
    assert "expired" in response.json()["error"]["message"]


def test_forged_api_token_with_real_prefix_is_401(user, make_token, bearer_client):
    token, _ = make_token(user)
    assert_401(bearer_client(f"mlp_{token.prefix}_not-the-secret").get(ME))
    assert ApiToken.objects.get(pk=token.pk).last_used_at is None


def test_unknown_and_malformed_api_tokens_are_401(db, bearer_client):
    assert_401(bearer_client("mlp_abcdefgh_unknown").get(ME))
    assert_401(bearer_client("mlp_garbage").get(ME))


def test_api_token_of_inactive_user_is_401(user, make_token, bearer_client):
    _, plaintext = make_token(user)
    user.is_active = False
    user.save()
    assert_401(bearer_client(plaintext).get(ME))


def test_jwt_access_token_authenticates(user, bearer_client):
    response = bearer_client(str(AccessToken.for_user(user))).get(ME)
    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_expired_jwt_is_401(user, bearer_client):
    token = AccessToken.for_user(user)
    token["exp"] = int(time.time()) - 5
    assert_401(bearer_client(str(token)).get(ME))


def test_forged_jwt_is_401(user, bearer_client):
    payload = dict(AccessToken.for_user(user).payload)
    forged = jwt.encode(payload, "not-the-server-key-" + "z" * 40, algorithm="HS256")
    assert_401(bearer_client(forged).get(ME))


def test_garbage_bearer_is_401(db, bearer_client):
    assert_401(bearer_client("not-a-token").get(ME))


def test_jwt_is_rejected_after_password_change(user, bearer_client):
    access = str(AccessToken.for_user(user))
    user.set_password("another-long-passphrase-9")
    user.save()
    assert_401(bearer_client(access).get(ME))


def test_basic_with_password_authenticates(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("ada", DEFAULT_PASSWORD))
    assert client.get(ME).json()["username"] == "ada"


# A Redis cache on a closed port: every cache call really fails to connect.
DEAD_REDIS = {
    "default": {"BACKEND": "mlplatform.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0", "KEY_PREFIX": "dead"}
}


@pytest.mark.parametrize("credential", ["password", "token"])
def test_basic_and_tokens_work_while_the_cache_is_down(user, make_token, credential):
    secret = DEFAULT_PASSWORD if credential == "password" else make_token(user)[1]
    with override_settings(CACHES=DEAD_REDIS):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=basic("ada", secret))
        assert client.get(ME).json()["username"] == "ada"
        assert client.get(ME).status_code == 200  # and again, with nothing remembered


def test_basic_password_check_is_cached_until_the_password_changes(user, monkeypatch):
    import accounts.authentication as authentication

    calls = []
    real_authenticate = authentication.authenticate

    def counting_authenticate(**kwargs):
        calls.append(kwargs["username"])
        return real_authenticate(**kwargs)

    monkeypatch.setattr(authentication, "authenticate", counting_authenticate)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("ada", DEFAULT_PASSWORD))
    assert client.get(ME).status_code == 200
    assert client.get(ME).status_code == 200
    assert calls == ["ada"]  # the second request reused the verified check
    user.set_password("a-brand-new-password-42")
    user.save()
    assert client.get(ME).status_code == 401
    assert calls == ["ada", "ada"]


def test_basic_password_login_is_audited_when_the_password_is_checked(user):
    client = APIClient(REMOTE_ADDR="10.1.2.4")
    client.credentials(HTTP_AUTHORIZATION=basic("ada", DEFAULT_PASSWORD), HTTP_USER_AGENT="mlflow-python-client/3.1")
    assert client.get(ME).status_code == 200
    assert client.get(ME).status_code == 200  # the verified check is reused: not another login
    event = AuditEvent.objects.get(action="login.success")
    assert (event.actor, event.ip, event.user_agent) == (user, "10.1.2.4", "mlflow-python-client/3.1")
    assert event.details == {"method": "basic"}


def test_basic_with_api_token_is_not_a_login(user, make_token):
    _, plaintext = make_token(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("ada", plaintext))
    assert client.get(ME).status_code == 200
    assert not AuditEvent.objects.filter(action="login.success").exists()


def test_basic_cached_credentials_do_not_survive_deactivation(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("ada", DEFAULT_PASSWORD))
    assert client.get(ME).status_code == 200
    user.is_active = False
    user.save()
    assert client.get(ME).status_code == 401


def test_basic_with_api_token_as_password_authenticates(user, make_token):
    _, plaintext = make_token(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("ada", plaintext))
    assert client.get(ME).status_code == 200


def test_basic_with_someone_elses_token_is_401(user, make_token):
    _, plaintext = make_token(UserFactory(username="bob"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("ada", plaintext))
    assert client.get(ME).status_code == 401
    assert AuditEvent.objects.filter(action="login.failure", details__username="ada").count() == 1


def test_basic_with_wrong_password_is_401_and_audited(user):
    client = APIClient(REMOTE_ADDR="10.1.2.3")
    client.credentials(HTTP_AUTHORIZATION=basic("ada", "wrong"), HTTP_USER_AGENT="mlflow-python-client/3.1")
    response = client.get(ME)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    event = AuditEvent.objects.get(action="login.failure")
    assert (event.ip, event.user_agent, event.object_id) == ("10.1.2.3", "mlflow-python-client/3.1", str(user.pk))
    assert event.details["username"] == "ada"


def test_basic_malformed_header_is_401(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic !!!notbase64")
    assert client.get(ME).status_code == 401


def test_session_authenticates_and_enforces_csrf(user):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="ada", password=DEFAULT_PASSWORD)
    assert client.get(ME).status_code == 200
    response = client.post("/api/v1/tokens/", {"name": "x"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]["message"]
    assert not ApiToken.objects.exists()


def test_session_login_is_audited(user):
    APIClient().login(username="ada", password=DEFAULT_PASSWORD)
    assert AuditEvent.objects.filter(action="login.success", actor=user, details__method="session").exists()
