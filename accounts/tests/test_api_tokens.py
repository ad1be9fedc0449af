"""/api/v1/tokens/: create (plaintext shown once), list own, revoke."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent
from accounts.tests.factories import UserFactory
from accounts.tokens import hash_token

TOKENS = "/api/v1/tokens/"


@pytest.fixture
def user(db):
    return UserFactory(username="ada")


def test_create_shows_the_plaintext_once_and_stores_only_its_hash(user, client_for):
    client = client_for(user)
    response = client.post(TOKENS, {"name": "laptop"}, format="json")
    assert response.status_code == 201
    body = response.json()
    plaintext = body["token"]
    assert plaintext.startswith(f"mlp_{body['prefix']}_")
    row = ApiToken.objects.get(pk=body["id"])
    assert row.token_hash == hash_token(plaintext)
    assert plaintext not in str(row.__dict__)
    listed = client.get(TOKENS).json()["results"]
    assert [t["id"] for t in listed] == [body["id"]]
    assert "token" not in listed[0] and "token_hash" not in listed[0]
    assert "token" not in client.get(f"{TOKENS}{body['id']}/").json()


def test_created_token_works_and_is_audited(user, client_for, bearer_client):
    response = client_for(user).post(TOKENS, {"name": "ci"}, format="json", REMOTE_ADDR="10.2.2.2")
    assert bearer_client(response.json()["token"]).get("/api/v1/me/").status_code == 200
    event = AuditEvent.objects.get(action="token.create")
    assert (event.actor, event.object_id, event.ip) == (user, str(response.json()["id"]), "10.2.2.2")
    assert response.json()["token"] not in str(event.details)


def test_create_with_expiry(user, client_for):
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    response = client_for(user).post(TOKENS, {"name": "ci", "expires_at": expires}, format="json")
    assert response.status_code == 201
    assert ApiToken.objects.get().expires_at is not None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": 5},
        {"name": "x" * 101},
        {"name": "ci", "expires_at": "tomorrow"},
        {"name": "ci", "expires_at": "2000-01-01T00:00:00Z"},
        ["name"],
    ],
)
def test_create_with_bad_input_is_400_and_writes_nothing(user, client_for, body):
    response = client_for(user).post(TOKENS, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.exists()


def test_create_with_malformed_json_is_400(user, client_for):
    response = client_for(user).post(TOKENS, "{", content_type="application/json")
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


def test_list_shows_only_own_tokens(user, client_for, make_token):
    make_token(UserFactory(), name="theirs")
    make_token(user, name="mine")
    results = client_for(user).get(TOKENS).json()["results"]
    assert [t["name"] for t in results] == ["mine"]
    assert results[0]["is_active"] is True


def test_someone_elses_token_is_404_and_not_revoked(user, client_for, make_token):
    theirs, _ = make_token(UserFactory(), name="secret-name")
    client = client_for(user)
    for response in (
        client.get(f"{TOKENS}{theirs.pk}/"),
        client.delete(f"{TOKENS}{theirs.pk}/"),
        client.post(f"{TOKENS}{theirs.pk}/revoke/"),
    ):
        assert response.status_code == 404
        assert "secret-name" not in response.content.decode()
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None


def test_unknown_token_id_is_404(user, client_for):
    assert client_for(user).delete(f"{TOKENS}999999/").status_code == 404


def test_delete_revokes_and_audits(user, client_for, make_token, bearer_client):
    token, plaintext = make_token(user)
    response = client_for(user).delete(f"{TOKENS}{token.pk}/")
    assert response.status_code == 204
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert bearer_client(plaintext).get("/api/v1/me/").status_code == 401
    assert AuditEvent.objects.filter(action="token.revoke", actor=user, object_id=str(token.pk)).count() == 1


def test_post_revoke_returns_the_revoked_token_and_is_idempotent(user, client_for, make_token):
    token, _ = make_token(user)
    client = client_for(user)
    first = client.post(f"{TOKENS}{token.pk}/revoke/")
    assert first.status_code == 200
    assert first.json()["is_active"] is False and first.json()["revoked_at"]
    assert client.post(f"{TOKENS}{token.pk}/revoke/").status_code == 200
    assert AuditEvent.objects.filter(action="token.revoke").count() == 1


def test_list_is_paginated(user, client_for, make_token):
    for n in range(3):
        make_token(user, name=f"t{n}")
    body = client_for(user).get(TOKENS, {"page_size": 2}).json()
    assert len(body["results"]) == 2 and body["next"]
