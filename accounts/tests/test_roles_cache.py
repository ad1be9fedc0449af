"""Team roles come from the shared cache for a few seconds; every membership change applies at once."""

import pytest
from django.test import override_settings

from accounts.models import Membership, Role
from accounts.permissions import Action, can, forget_roles, team_roles
from accounts.services import membership_change_role, membership_remove
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory

DEAD_REDIS = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}
}


def fresh(user):
    """The user as the next request loads it (no per-request roles)."""
    return type(user).objects.get(pk=user.pk)


@pytest.fixture
def member(db):
    team = TeamFactory()
    owner = MembershipFactory(team=team, role=Role.OWNER).user
    membership = MembershipFactory(team=team, role=Role.EDITOR)
    return team, owner, membership


def test_roles_are_served_from_the_cache_on_the_next_request(member, django_assert_num_queries):
    team, _, membership = member
    assert team_roles(fresh(membership.user)) == {team.pk: Role.EDITOR}
    user = fresh(membership.user)
    with django_assert_num_queries(0):
        assert team_roles(user) == {team.pk: Role.EDITOR}


def test_role_change_applies_to_the_next_request(member):
    team, owner, membership = member
    assert can(fresh(membership.user), Action.WRITE, team)
    membership_change_role(actor=owner, membership=membership, role=Role.VIEWER)
    assert not can(fresh(membership.user), Action.WRITE, team)


def test_removed_member_loses_access_on_the_next_request(member):
    team, owner, membership = member
    assert can(fresh(membership.user), Action.READ, team)
    membership_remove(actor=owner, membership=membership)
    assert not can(fresh(membership.user), Action.READ, team)


def test_new_membership_applies_to_the_next_request(member):
    _, _, membership = member
    other = TeamFactory()
    assert team_roles(fresh(membership.user)).get(other.pk) is None
    MembershipFactory(team=other, user=membership.user, role=Role.ADMIN)
    assert team_roles(fresh(membership.user))[other.pk] == Role.ADMIN


def test_forget_roles_also_drops_the_shared_entry(member):
    team, _, membership = member
    team_roles(fresh(membership.user))
    Membership.objects.filter(pk=membership.pk).update(role=Role.ADMIN)  # no signal
    user = fresh(membership.user)
    forget_roles(user)
    assert team_roles(user) == {team.pk: Role.ADMIN}


def test_a_new_user_never_sees_roles_cached_for_a_reused_id(db):
    team = TeamFactory()
    first = MembershipFactory(team=team, role=Role.ADMIN).user
    team_roles(fresh(first))
    pk = first.pk
    first.delete()
    reborn = UserFactory(pk=pk)
    assert team_roles(fresh(reborn)) == {}


@override_settings(CACHES=DEAD_REDIS)
def test_roles_come_from_the_database_while_the_cache_is_down(member):
    team, _, membership = member
    assert team_roles(fresh(membership.user)) == {team.pk: Role.EDITOR}
    forget_roles(fresh(membership.user))
