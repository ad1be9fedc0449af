"""/api/v1/teams/{id}/members/: add, change role, remove; owners are protected."""

import pytest

from accounts.models import AuditEvent, Membership, Role
from accounts.tests.factories import MembershipFactory, UserFactory


def members_url(team):
    return f"/api/v1/teams/{team.pk}/members/"


def member_url(team, user):
    return f"/api/v1/teams/{team.pk}/members/{user.pk}/"


def role_of(user, team):
    return Membership.objects.get(user=user, team=team).role


def test_list_members(viewer, owner, team, client_for):
    results = client_for(viewer).get(members_url(team)).json()["results"]
    assert {(m["username"], m["role"]) for m in results} == {(viewer.username, "viewer"), (owner.username, "owner")}


def test_members_of_another_team_are_404(viewer, outsider, other_team, client_for):
    response = client_for(viewer).get(members_url(other_team))
    assert response.status_code == 404
    assert outsider.username not in response.content.decode()


def test_admin_adds_member_and_it_is_audited(team_admin, team, client_for):
    newbie = UserFactory(username="newbie")
    response = client_for(team_admin).post(
        members_url(team), {"username": "newbie", "role": "editor"}, format="json", REMOTE_ADDR="10.3.3.3"
    )
    assert response.status_code == 201
    assert response.json() == {
        "user_id": newbie.pk,
        "username": "newbie",
        "role": "editor",
        "created_at": response.json()["created_at"],
    }
    assert role_of(newbie, team) == Role.EDITOR
    event = AuditEvent.objects.get(action="membership.add")
    assert (event.actor, event.team, event.ip, event.details) == (
        team_admin,
        team,
        "10.3.3.3",
        {"username": "newbie", "role": "editor"},
    )


def test_add_defaults_to_viewer(team_admin, team, client_for):
    newbie = UserFactory()
    client_for(team_admin).post(members_url(team), {"username": newbie.username}, format="json")
    assert role_of(newbie, team) == Role.VIEWER


@pytest.mark.parametrize(
    "body", [{}, {"username": "ghost"}, {"username": 7}, {"username": "newbie", "role": "king"}, {"role": "viewer"}]
)
def test_add_with_bad_input_is_400_and_writes_nothing(team_admin, team, client_for, body):
    UserFactory(username="newbie")
    before = Membership.objects.count()
    response = client_for(team_admin).post(members_url(team), body, format="json")
    assert response.status_code == 400
    assert Membership.objects.count() == before
    assert not AuditEvent.objects.exists()


def test_add_existing_member_is_409(team_admin, viewer, team, client_for):
    response = client_for(team_admin).post(members_url(team), {"username": viewer.username}, format="json")
    assert response.status_code == 409
    assert role_of(viewer, team) == Role.VIEWER


def test_admin_cannot_grant_owner(team_admin, team, client_for):
    newbie = UserFactory()
    response = client_for(team_admin).post(
        members_url(team), {"username": newbie.username, "role": "owner"}, format="json"
    )
    assert response.status_code == 403
    assert not Membership.objects.filter(user=newbie).exists()


def test_owner_can_grant_owner(owner, team, client_for):
    newbie = UserFactory()
    response = client_for(owner).post(members_url(team), {"username": newbie.username, "role": "owner"}, format="json")
    assert response.status_code == 201
    assert role_of(newbie, team) == Role.OWNER


def test_admin_changes_role_and_it_is_audited(team_admin, viewer, team, client_for):
    response = client_for(team_admin).patch(member_url(team, viewer), {"role": "editor"}, format="json")
    assert response.status_code == 200
    assert response.json()["role"] == "editor"
    assert role_of(viewer, team) == Role.EDITOR
    event = AuditEvent.objects.get(action="membership.role_change")
    assert event.details == {"username": viewer.username, "from": "viewer", "to": "editor"}


def test_same_role_is_a_no_op(team_admin, viewer, team, client_for):
    assert client_for(team_admin).patch(member_url(team, viewer), {"role": "viewer"}, format="json").status_code == 200
    assert not AuditEvent.objects.exists()


def test_role_change_takes_effect_on_next_request(owner, viewer, team, client_for):
    newbie = UserFactory()
    viewer_client = client_for(viewer)
    assert viewer_client.post(members_url(team), {"username": newbie.username}, format="json").status_code == 403
    client_for(owner).patch(member_url(team, viewer), {"role": "admin"}, format="json")
    assert viewer_client.post(members_url(team), {"username": newbie.username}, format="json").status_code == 201


def test_admin_cannot_demote_an_owner(team_admin, owner, team, client_for):
    response = client_for(team_admin).patch(member_url(team, owner), {"role": "viewer"}, format="json")
    assert response.status_code == 403
    assert role_of(owner, team) == Role.OWNER


def test_admin_cannot_remove_an_owner(team_admin, owner, team, client_for):
    assert client_for(team_admin).delete(member_url(team, owner)).status_code == 403
    assert role_of(owner, team) == Role.OWNER


def test_last_owner_cannot_demote_themselves(owner, team, client_for):
    response = client_for(owner).patch(member_url(team, owner), {"role": "admin"}, format="json")
    assert response.status_code == 409
    assert role_of(owner, team) == Role.OWNER


def test_last_owner_cannot_leave(owner, team, client_for):
    assert client_for(owner).delete(member_url(team, owner)).status_code == 409
    assert role_of(owner, team) == Role.OWNER


def test_an_owner_can_step_down_when_another_owner_remains(owner, team, client_for):
    second = MembershipFactory(team=team, role=Role.OWNER).user
    assert client_for(owner).patch(member_url(team, owner), {"role": "admin"}, format="json").status_code == 200
    assert client_for(second).delete(member_url(team, owner)).status_code == 204


def test_admin_removes_member_and_it_is_audited(team_admin, editor, team, client_for):
    assert client_for(team_admin).delete(member_url(team, editor)).status_code == 204
    assert not Membership.objects.filter(user=editor, team=team).exists()
    event = AuditEvent.objects.get(action="membership.remove")
    assert (event.actor, event.team, event.details["username"]) == (team_admin, team, editor.username)


def test_member_can_leave(viewer, team, client_for):
    assert client_for(viewer).delete(member_url(team, viewer)).status_code == 204
    assert not Membership.objects.filter(user=viewer).exists()


def test_viewer_cannot_remove_others(viewer, editor, team, client_for):
    assert client_for(viewer).delete(member_url(team, editor)).status_code == 403
    assert Membership.objects.filter(user=editor, team=team).exists()


def test_unknown_member_is_404(team_admin, team, client_for):
    stranger = UserFactory()
    assert client_for(team_admin).get(member_url(team, stranger)).status_code == 404
    response = client_for(team_admin).patch(member_url(team, stranger), {"role": "editor"}, format="json")
    assert response.status_code == 404


@pytest.mark.parametrize("body", [{}, {"role": "boss"}, {"role": 30}])
def test_change_role_with_bad_input_is_400(team_admin, viewer, team, client_for, body):
    assert client_for(team_admin).patch(member_url(team, viewer), body, format="json").status_code == 400
    assert role_of(viewer, team) == Role.VIEWER


def test_outsider_cannot_touch_members(outsider, viewer, team, client_for):
    client = client_for(outsider)
    assert client.patch(member_url(team, viewer), {"role": "admin"}, format="json").status_code == 404
    assert client.delete(member_url(team, viewer)).status_code == 404
    assert role_of(viewer, team) == Role.VIEWER


def test_role_changes_apply_to_the_next_request_with_real_authentication(owner, viewer, team, make_token):
    """No forced user and no forgetting in the test client: only the roles cache's own invalidation.

    With REDIS_URL set this goes through the shared Redis entry and the process-local near cache.
    """
    from rest_framework.test import APIClient

    def token_client(user):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user)[1]}")
        return client

    owner_client, viewer_client = token_client(owner), token_client(viewer)
    newbie = UserFactory()
    add = {"username": newbie.username}
    assert viewer_client.get(members_url(team)).status_code == 200  # roles now cached
    assert viewer_client.post(members_url(team), add, format="json").status_code == 403
    assert owner_client.patch(member_url(team, viewer), {"role": "admin"}, format="json").status_code == 200
    assert viewer_client.post(members_url(team), add, format="json").status_code == 201
    assert owner_client.patch(member_url(team, viewer), {"role": "viewer"}, format="json").status_code == 200
    assert viewer_client.delete(member_url(team, newbie)).status_code == 403
    assert owner_client.delete(member_url(team, viewer)).status_code == 204
    response = viewer_client.get(members_url(team))
    assert response.status_code == 404
    assert newbie.username not in response.content.decode()
