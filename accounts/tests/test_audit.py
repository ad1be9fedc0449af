"""record_event: actor, target, team, ip and user agent; same transaction as the change."""

import pytest
from django.db import transaction
from django.test import RequestFactory

from accounts.audit import client_ip, record_event
from accounts.models import AuditEvent, Role
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory


@pytest.fixture
def request_from(db):
    def make(ip="10.5.5.5", user=None, **extra):
        request = RequestFactory().get("/", REMOTE_ADDR=ip, HTTP_USER_AGENT="pytest-agent", **extra)
        if user is not None:
            request.user = user
        return request

    return make


def test_event_from_target_takes_its_team(request_from):
    membership = MembershipFactory(role=Role.EDITOR)
    actor = UserFactory()
    event = record_event(action="thing.done", actor=actor, request=request_from(), target=membership, details={"a": 1})
    event.refresh_from_db()
    assert (event.actor, event.actor_username, event.team_id) == (actor, actor.username, membership.team_id)
    assert (event.object_type, event.object_id) == ("accounts.membership", str(membership.pk))
    assert (event.ip, event.user_agent, event.details) == ("10.5.5.5", "pytest-agent", {"a": 1})


def test_team_target_is_its_own_team(db):
    team = TeamFactory()
    assert record_event(action="x", target=team).team_id == team.pk


def test_actor_defaults_to_the_request_user(request_from):
    user = UserFactory()
    assert record_event(action="x", request=request_from(user=user)).actor == user


def test_team_can_be_given_as_id(db):
    team = TeamFactory()
    assert record_event(action="x", team=team.pk).team == team


def test_event_without_anything(db):
    event = record_event(action="system.tick")
    assert (event.actor, event.ip, event.object_type, event.team) == (None, None, "", None)


def test_event_rolls_back_with_its_transaction(db):
    with pytest.raises(RuntimeError), transaction.atomic():
        record_event(action="x")
        raise RuntimeError
    assert not AuditEvent.objects.exists()


def test_long_user_agent_is_cut(request_from):
    request = RequestFactory().get("/", HTTP_USER_AGENT="x" * 2000)
    assert len(record_event(action="x", request=request).user_agent) == 512


def test_forwarded_for_is_used_only_when_trusted(request_from, settings):
    request = request_from(HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1")
    assert client_ip(request) == "10.5.5.5"
    settings.USE_X_FORWARDED_FOR = True
    assert client_ip(request) == "203.0.113.9"


def test_invalid_ip_is_stored_as_null(request_from, settings):
    settings.USE_X_FORWARDED_FOR = True
    request = request_from(HTTP_X_FORWARDED_FOR="not-an-ip")
    assert record_event(action="x", request=request).ip is None


def test_str_mentions_actor_and_action(db):
    event = record_event(action="x.y", actor=UserFactory(username="zed"))
    assert "zed x.y" in str(event)
