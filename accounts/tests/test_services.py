"""Service rules that the API tests do not reach directly."""

import pytest
from django.core.cache import cache

from accounts import throttling
from accounts.models import ApiToken, Membership, Role, Team
from accounts.permissions import team_roles
from accounts.services import (
    api_token_create,
    api_token_revoke,
    membership_add,
    membership_change_role,
    personal_team_for,
    team_create,
    user_update,
)
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory
from mlplatform.errors import Conflict, Forbidden, InvalidInput, NotFound


def test_personal_team_is_created_once(db):
    user = UserFactory(username="ada")
    team = personal_team_for(user)
    assert (team.name, team.is_personal) == ("ada (personal)", True)
    assert personal_team_for(user) == team
    assert Membership.objects.get(team=team).role == Role.OWNER


def test_personal_team_name_taken_by_another_team_gets_a_number(db):
    team_create(name="bob (personal)", creator=UserFactory(username="mallory"))
    team_create(name="bob (personal) 2", creator=UserFactory(username="eve"))
    bob = UserFactory(username="bob")
    team = personal_team_for(bob)
    assert (team.name, team.is_personal) == ("bob (personal) 3", True)
    assert Membership.objects.get(team=team).user == bob
    assert personal_team_for(bob) == team


def test_personal_team_of_a_long_username_fits_the_name_limit(db):
    user = UserFactory(username="u" * 150)
    assert personal_team_for(user).name == "u" * 135 + " (personal)"


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_share_one_personal_team():
    import threading

    from django.db import connection

    user = UserFactory(username="racer")
    barrier = threading.Barrier(4)
    results: list = []

    def first_request():
        try:
            barrier.wait(timeout=10)
            results.append(personal_team_for(user).pk)
        except Exception as exc:  # a Conflict here is the bug
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=first_request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 4 and len(set(results)) == 1, results
    assert Team.objects.filter(is_personal=True, memberships__user=user).count() == 1


def test_team_slug_is_made_unique(db):
    TeamFactory(name="first", slug="ml-ops")
    assert team_create(name="ML Ops", creator=UserFactory()).slug == "ml-ops-2"


def test_team_create_updates_the_creators_cached_roles(db):
    user = UserFactory()
    assert team_roles(user) == {}
    team = team_create(name="new", creator=user)
    assert team_roles(user) == {team.pk: Role.OWNER}


@pytest.mark.parametrize("name", ["", "   ", "x" * 151])
def test_team_create_rejects_bad_names(db, name):
    with pytest.raises(InvalidInput):
        team_create(name=name, creator=UserFactory())
    assert not Team.objects.exists()


def test_roles_can_be_given_as_numbers_or_enum(team, owner):
    a, b = UserFactory(), UserFactory()
    assert membership_add(actor=owner, team=team, username=a.username, role=Role.ADMIN).role == Role.ADMIN
    assert membership_add(actor=owner, team=team, username=b.username, role=20).role == Role.EDITOR
    with pytest.raises(InvalidInput):
        membership_add(actor=owner, team=team, username=UserFactory().username, role=99)


def test_superuser_may_grant_owner_without_membership(team):
    root = UserFactory(is_superuser=True, is_staff=True)
    membership = membership_add(actor=root, team=team, username=UserFactory().username, role="owner")
    assert membership.role == Role.OWNER


def test_admin_may_promote_themselves_only_up_to_admin(team, team_admin, owner):
    membership = Membership.objects.get(user=team_admin, team=team)
    with pytest.raises(Forbidden, match="owner"):
        membership_change_role(actor=team_admin, membership=membership, role="owner")


def test_last_owner_conflict_in_service(team, owner):
    with pytest.raises(Conflict):
        membership_change_role(actor=owner, membership=Membership.objects.get(user=owner), role="viewer")


@pytest.mark.parametrize("name", ["", " ", "x" * 101])
def test_token_create_rejects_bad_names(db, name):
    with pytest.raises(InvalidInput):
        api_token_create(user=UserFactory(), name=name)
    assert not ApiToken.objects.exists()


def test_revoking_someone_elses_token_is_not_found(db):
    token, _ = api_token_create(user=UserFactory(), name="x")
    with pytest.raises(NotFound):
        api_token_revoke(user=UserFactory(is_staff=True), token=token)
    assert api_token_revoke(user=UserFactory(is_superuser=True), token=token).revoked_at is not None


def test_user_update_refuses_other_fields(db):
    with pytest.raises(InvalidInput):
        user_update(user=UserFactory(), is_superuser=True)


def test_token_with_non_ascii_bearer_is_ignored(db):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer caf\u00e9")
    assert client.get("/api/v1/me/").status_code == 401


def test_basic_with_invalid_token_as_password_is_401(db):
    from rest_framework.test import APIClient

    from accounts.tests.conftest import basic

    UserFactory(username="ada")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic("ada", "mlp_abcdefgh_bogus"))
    assert client.get("/api/v1/me/").status_code == 401


def test_check_without_username_or_ip_does_nothing(db):
    throttling.check(username=None, ip=None)


def test_failure_counter_survives_a_lost_key(db, monkeypatch):
    # If the counter expires between add() and incr(), the failure still counts as one.
    monkeypatch.setattr(cache, "incr", lambda key: (_ for _ in ()).throw(ValueError(key)))
    throttling.record_failure(username="ada", ip=None)
    monkeypatch.undo()
    key = throttling._key("user", "ada", throttling.limits().namespace)
    assert cache.get(key) in {0, 1}


def test_membership_of_other_team_is_independent(team, owner, other_team):
    MembershipFactory(team=other_team, role=Role.VIEWER, user=owner)
    assert team_roles(owner)[other_team.pk] == Role.VIEWER
