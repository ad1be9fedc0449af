"""Operators' console: users, teams, tokens (revoke, hash hidden), read-only audit log."""

import pytest
from django.test import Client

from accounts.models import ApiToken, AuditEvent, Role
from accounts.services import api_token_create, team_create
from accounts.tests.factories import DEFAULT_PASSWORD, MembershipFactory, UserFactory


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(superuser):
    client = Client()
    client.force_login(superuser)
    return client


def test_admin_login_with_password_is_audited(superuser):
    client = Client(REMOTE_ADDR="10.4.4.4")
    response = client.post("/admin/login/?next=/admin/", {"username": "root", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="login.success")
    assert (event.actor, event.ip) == (superuser, "10.4.4.4")


def test_admin_login_failure_is_audited(superuser):
    Client(REMOTE_ADDR="10.4.4.4").post("/admin/login/", {"username": "root", "password": "nope"})
    event = AuditEvent.objects.get(action="login.failure")
    assert (event.actor, event.ip, event.details["username"]) == (None, "10.4.4.4", "root")


@pytest.mark.parametrize("model", ["user", "team", "membership", "apitoken", "auditevent"])
def test_changelists_render(admin_client, model):
    team = team_create(name="ops", creator=UserFactory())
    MembershipFactory(team=team, role=Role.VIEWER)
    assert admin_client.get(f"/admin/accounts/{model}/").status_code == 200


def test_user_page_shows_memberships_inline(admin_client):
    membership = MembershipFactory(role=Role.EDITOR)
    page = admin_client.get(f"/admin/accounts/user/{membership.user_id}/change/").content.decode()
    assert "memberships-TOTAL_FORMS" in page


def test_team_page_shows_members_inline(admin_client):
    membership = MembershipFactory(role=Role.EDITOR)
    page = admin_client.get(f"/admin/accounts/team/{membership.team_id}/change/").content.decode()
    assert "memberships-TOTAL_FORMS" in page


def test_token_page_never_shows_the_hash(admin_client):
    token, plaintext = api_token_create(user=UserFactory(), name="ci")
    page = admin_client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert token.prefix in page
    assert token.token_hash not in page and plaintext not in page
    assert admin_client.get("/admin/accounts/apitoken/add/").status_code == 403


def test_revoke_action_revokes_and_audits(admin_client, superuser):
    owner = UserFactory()
    token, _ = api_token_create(user=owner, name="ci")
    response = admin_client.post(
        "/admin/accounts/apitoken/", {"action": "revoke_tokens", "_selected_action": [token.pk]}, follow=True
    )
    assert response.status_code == 200
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    event = AuditEvent.objects.get(action="token.revoke")
    assert (event.actor, event.details["via"], event.details["owner"]) == (superuser, "admin", owner.username)


def test_audit_log_is_read_only_and_filterable(admin_client, superuser):
    team = team_create(name="ops", creator=superuser)
    event = AuditEvent.objects.get(action="team.create")
    assert admin_client.get("/admin/accounts/auditevent/add/").status_code == 403
    page = admin_client.get(f"/admin/accounts/auditevent/{event.pk}/change/")
    assert page.status_code == 200
    assert 'name="action"' not in page.content.decode()  # shown, not editable
    assert admin_client.post(f"/admin/accounts/auditevent/{event.pk}/delete/").status_code == 403
    for query in (
        "action__exact=team.create",
        f"team__id__exact={team.pk}",
        f"actor__id__exact={superuser.pk}",
        "created_at__year=2020",
    ):
        assert admin_client.get(f"/admin/accounts/auditevent/?{query}").status_code == 200
    filtered = admin_client.get("/admin/accounts/auditevent/?action__exact=token.create").content.decode()
    assert "0 audit events" in filtered or "0 results" in filtered
