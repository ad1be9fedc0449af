"""Service rules that the API tests do not reach directly."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache

from accounts import throttling
from accounts.models import ApiToken, AuditEvent, Membership, Role, Team, User
from accounts.permissions import team_roles
from accounts.services import (
    api_token_create,
    api_token_delete,
    api_token_revoke,
    api_token_update,
    ensure_users_deletable,
    membership_add,
    membership_change_role,
    personal_team_for,
    team_create,
    user_update,
    users_delete,
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


# ---- deleting users: the one path, and it keeps every team's owner ----------------------------------


@pytest.fixture
def operator(db):
    """A superuser deleting users and tokens."""
    return UserFactory(username="root", is_staff=True, is_superuser=True)


def test_users_delete_refuses_a_teams_last_owner_and_names_the_teams(team, owner, operator):
    team_create(name="alpha", creator=owner)
    with pytest.raises(Conflict, match=r"alpha, vision") as refused:
        users_delete(actor=operator, users=[owner])
    assert refused.value.details == {"teams": ["alpha", "vision"], "users": [owner.username]}
    with pytest.raises(Conflict):
        ensure_users_deletable(users=[owner])
    assert User.objects.filter(pk=owner.pk).exists()
    assert not AuditEvent.objects.filter(action="user.delete").exists()


def test_users_delete_refuses_deleting_every_owner_at_once(team, owner, operator):
    co_owner = MembershipFactory(team=team, role=Role.OWNER).user
    ensure_users_deletable(users=[owner])  # one of two owners may go
    with pytest.raises(Conflict, match="vision"):
        users_delete(actor=operator, users=[owner, co_owner, UserFactory()])
    assert User.objects.filter(pk__in=[owner.pk, co_owner.pk]).count() == 2


def test_users_delete_keeps_the_remaining_owner_and_audits(team, owner, viewer, operator):
    MembershipFactory(team=team, role=Role.OWNER)
    assert users_delete(actor=operator, users=[owner, viewer], via="admin") == 2
    assert not User.objects.filter(pk__in=[owner.pk, viewer.pk]).exists()
    assert Membership.objects.filter(team=team, role=Role.OWNER).count() == 1
    deleted = AuditEvent.objects.filter(action="user.delete")
    assert sorted(deleted.values_list("details__username", flat=True)) == sorted([owner.username, viewer.username])
    removed = AuditEvent.objects.filter(action="membership.remove", team=team)
    assert sorted(removed.values_list("details__role", flat=True)) == ["owner", "viewer"]
    assert {e.actor for e in [*deleted, *removed]} == {operator}


def test_users_delete_needs_the_delete_user_permission(viewer):
    with pytest.raises(Forbidden):
        users_delete(actor=UserFactory(is_staff=True), users=[viewer])
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="delete_user"))
    staff = User.objects.get(pk=staff.pk)  # permissions are cached on the instance
    assert users_delete(actor=staff, users=[viewer]) == 1


def test_operator_may_delete_themselves_with_others(operator, viewer):
    assert users_delete(actor=operator, users=[operator, viewer]) == 2
    assert not User.objects.filter(pk__in=[operator.pk, viewer.pk]).exists()
    events = AuditEvent.objects.filter(action="user.delete")
    assert set(events.values_list("actor_username", flat=True)) == {"root"}


# ---- API tokens: update and delete are audited -------------------------------------------------------


def test_token_update_records_only_the_changed_fields(db):
    owner = UserFactory(username="tess")
    token, plaintext = api_token_create(user=owner, name="ci")
    assert api_token_update(actor=owner, token=token, name="ci") == token
    assert not AuditEvent.objects.filter(action="token.update").exists()
    expiry = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    api_token_update(actor=owner, token=token, name=" deploy ", expires_at=expiry)
    stored = ApiToken.objects.get(pk=token.pk)
    assert (stored.name, stored.expires_at, token.name) == ("deploy", expiry, "deploy")
    event = AuditEvent.objects.get(action="token.update")
    assert event.details == {
        "name": "deploy",
        "prefix": token.prefix,
        "owner": "tess",
        "changes": {"name": ["ci", "deploy"], "expires_at": [None, "2031-01-02T03:04:05+00:00"]},
    }
    assert token.token_hash not in str(event.details) and plaintext not in str(event.details)
    api_token_update(actor=owner, token=token, expires_at=None)
    assert ApiToken.objects.get(pk=token.pk).expires_at is None
    assert AuditEvent.objects.filter(action="token.update").count() == 2


def test_token_update_refuses_a_blank_name_and_strangers(db):
    token, _ = api_token_create(user=UserFactory(), name="ci")
    with pytest.raises(InvalidInput):
        api_token_update(actor=token.user, token=token, name="  ")
    with pytest.raises(NotFound):
        api_token_update(actor=UserFactory(is_staff=True), token=token, name="mine")
    assert ApiToken.objects.get(pk=token.pk).name == "ci"
    assert not AuditEvent.objects.filter(action="token.update").exists()


def test_token_delete_is_audited_and_refused_to_strangers(db):
    owner = UserFactory(username="tess")
    token, _ = api_token_create(user=owner, name="ci")
    with pytest.raises(NotFound):
        api_token_delete(actor=UserFactory(is_staff=True), token=token)
    token_id = token.pk
    assert ApiToken.objects.filter(pk=token_id).exists()
    api_token_delete(actor=owner, token=token)
    assert not ApiToken.objects.filter(pk=token_id).exists()
    event = AuditEvent.objects.get(action="token.delete")
    assert (event.actor, event.object_id) == (owner, str(token_id))
    assert event.details == {"name": "ci", "prefix": token.prefix, "owner": "tess", "was_active": True}
