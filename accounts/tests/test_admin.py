"""Operators' console: users, teams, tokens (revoke, hash hidden), read-only audit log."""

from html.parser import HTMLParser

import pytest
from django.test import Client

from accounts.models import ApiToken, AuditEvent, Membership, Role, Team, User
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


# ---- team and membership changes made in the admin: the API's owner rule and audit events -----------


class _FormFields(HTMLParser):
    """The values a browser would submit for the page's change form (inputs, selects, textareas)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in {"submit", "button", "file"}:
            if a.get("type") in {"checkbox", "radio"} and "checked" not in a:
                return
            self.data.setdefault(name, []).append(a.get("value") or ("on" if a.get("type") == "checkbox" else ""))
        elif tag == "select" and name:
            self._select = name
            self.data.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.data[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.data[name] = [""]

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.data[self._textarea][0] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def change_form_data(client: Client, url: str) -> dict[str, list[str]]:
    """What submitting the admin change page at ``url`` unchanged would post."""
    parser = _FormFields()
    parser.feed(client.get(url).content.decode())
    data = {name: values for name, values in parser.data.items() if not name.startswith("memberships-__prefix__")}
    data.pop("csrfmiddlewaretoken", None)
    return data


def inline_row(data: dict, prefix: str, membership) -> int:
    """The index of ``membership``'s row in the inline formset ``prefix``."""
    total = int(data[f"{prefix}-TOTAL_FORMS"][0])
    return next(i for i in range(total) if data.get(f"{prefix}-{i}-id") == [str(membership.pk)])


def add_inline_row(data: dict, prefix: str, **fields) -> None:
    """Append a new row to the inline formset ``prefix``."""
    index = int(data[f"{prefix}-TOTAL_FORMS"][0])
    data[f"{prefix}-TOTAL_FORMS"] = [str(index + 1)]
    for name, value in fields.items():
        data[f"{prefix}-{index}-{name}"] = [str(value)]


@pytest.fixture
def owned_team(superuser):
    owner = UserFactory(username="olga")
    team = team_create(name="ops", creator=owner)
    AuditEvent.objects.all().delete()
    return team, Membership.objects.get(team=team, user=owner)


def events(action: str):
    return list(AuditEvent.objects.filter(action=action))


def test_membership_admin_refuses_to_demote_the_last_owner(admin_client, owned_team):
    _, membership = owned_team
    url = f"/admin/accounts/membership/{membership.pk}/change/"
    data = {"user": membership.user_id, "team": membership.team_id, "role": Role.VIEWER}
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert "must keep at least one owner" in response.content.decode()
    assert Membership.objects.get(pk=membership.pk).role == Role.OWNER
    assert not AuditEvent.objects.exists()


def test_membership_admin_role_change_is_audited(admin_client, superuser, owned_team):
    team, membership = owned_team
    MembershipFactory(team=team, role=Role.OWNER)
    url = f"/admin/accounts/membership/{membership.pk}/change/"
    data = {"user": membership.user_id, "team": team.pk, "role": Role.ADMIN}
    assert admin_client.post(url, data, REMOTE_ADDR="10.6.6.6").status_code == 302
    assert Membership.objects.get(pk=membership.pk).role == Role.ADMIN
    [event] = events("membership.role_change")
    assert (event.actor, event.ip, event.team) == (superuser, "10.6.6.6", team)
    assert event.details == {"username": "olga", "from": "owner", "to": "admin", "via": "admin"}


def test_membership_admin_add_and_delete_are_audited(admin_client, superuser, owned_team):
    team, _ = owned_team
    newbie = UserFactory(username="newbie")
    data = {"user": newbie.pk, "team": team.pk, "role": Role.EDITOR}
    assert admin_client.post("/admin/accounts/membership/add/", data).status_code == 302
    membership = Membership.objects.get(user=newbie)
    [added] = events("membership.add")
    assert (added.actor, added.team, added.details["role"]) == (superuser, team, "editor")
    url = f"/admin/accounts/membership/{membership.pk}/delete/"
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    [removed] = events("membership.remove")
    assert (removed.actor, removed.team, removed.object_id) == (superuser, team, str(membership.pk))


def test_membership_admin_refuses_to_delete_the_last_owner(admin_client, owned_team):
    _, membership = owned_team
    response = admin_client.post(f"/admin/accounts/membership/{membership.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"}
    assert admin_client.post("/admin/accounts/membership/", bulk).status_code == 403
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert not AuditEvent.objects.exists()


def test_team_inline_refuses_to_remove_the_last_owner(admin_client, owned_team):
    team, membership = owned_team
    url = f"/admin/accounts/team/{team.pk}/change/"
    data = change_form_data(admin_client, url)
    data[f"memberships-{inline_row(data, 'memberships', membership)}-DELETE"] = ["on"]
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "must keep at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert not AuditEvent.objects.exists()


def test_team_inline_may_replace_the_owner_in_one_save_and_audits_both(admin_client, superuser, owned_team):
    team, membership = owned_team
    successor = UserFactory(username="sam")
    url = f"/admin/accounts/team/{team.pk}/change/"
    data = change_form_data(admin_client, url)
    data[f"memberships-{inline_row(data, 'memberships', membership)}-DELETE"] = ["on"]
    add_inline_row(data, "memberships", team=team.pk, user=successor.pk, role=Role.OWNER)
    assert admin_client.post(url, data, REMOTE_ADDR="10.7.7.7").status_code == 302
    assert list(Membership.objects.filter(team=team).values_list("user__username", "role")) == [("sam", Role.OWNER)]
    [removed], [added] = events("membership.remove"), events("membership.add")
    assert (removed.actor, removed.ip, removed.details["username"]) == (superuser, "10.7.7.7", "olga")
    assert (added.actor, added.team, added.details) == (
        superuser,
        team,
        {"username": "sam", "role": "owner", "via": "admin"},
    )


def test_user_inline_role_change_is_audited_and_keeps_an_owner(admin_client, superuser, owned_team):
    team, membership = owned_team
    url = f"/admin/accounts/user/{membership.user_id}/change/"
    data = change_form_data(admin_client, url)
    row = inline_row(data, "memberships", membership)
    data[f"memberships-{row}-role"] = [str(Role.EDITOR)]
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "must keep at least one owner" in response.content.decode()
    MembershipFactory(team=team, role=Role.OWNER)
    assert admin_client.post(url, data).status_code == 302
    assert Membership.objects.get(pk=membership.pk).role == Role.EDITOR
    [event] = events("membership.role_change")
    assert (event.actor, event.team, event.details["from"], event.details["to"]) == (superuser, team, "owner", "editor")


def test_team_create_and_delete_in_the_admin_are_audited(admin_client, superuser):
    data = {
        "name": "made-in-admin",
        "slug": "made-in-admin",
        "description": "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    assert admin_client.post("/admin/accounts/team/add/", data, REMOTE_ADDR="10.8.8.8").status_code == 302
    team = Team.objects.get(name="made-in-admin")
    [created] = events("team.create")
    assert (created.actor, created.team, created.ip) == (superuser, team, "10.8.8.8")
    assert admin_client.post(f"/admin/accounts/team/{team.pk}/delete/", {"post": "yes"}).status_code == 302
    [deleted] = events("team.delete")
    assert (deleted.actor, deleted.object_id, deleted.details["name"]) == (superuser, str(team.pk), "made-in-admin")


# ---- deleting users: a team keeps at least one owner ------------------------------------------------


def test_user_delete_of_a_teams_last_owner_is_refused_with_the_teams_name(admin_client, owned_team):
    _, membership = owned_team
    team_create(name="ml", creator=membership.user)
    url = f"/admin/accounts/user/{membership.user_id}/delete/"
    for response in (admin_client.get(url, follow=True), admin_client.post(url, {"post": "yes"}, follow=True)):
        assert response.status_code == 200
        [message] = [str(m) for m in response.context["messages"]]
        assert "olga" in message and "ml, ops" in message and "at least one owner" in message
    assert Membership.objects.filter(pk=membership.pk, role=Role.OWNER).exists()
    assert not events("user.delete") and not events("membership.remove")


def test_user_bulk_delete_of_a_teams_last_owners_is_refused(admin_client, owned_team):
    team, membership = owned_team
    co_owner = MembershipFactory(team=team, role=Role.OWNER)
    bystander = UserFactory()
    selected = [membership.user_id, co_owner.user_id, bystander.pk]
    for confirmed in ({}, {"post": "yes"}):
        data = {"action": "delete_selected", "_selected_action": selected, **confirmed}
        response = admin_client.post("/admin/accounts/user/", data, follow=True)
        assert response.status_code == 200
        [message] = [str(m) for m in response.context["messages"]]
        assert "ops" in message and "at least one owner" in message
    assert User.objects.filter(pk__in=selected).count() == 3  # nobody was deleted
    assert not events("user.delete")


def test_user_delete_is_allowed_when_another_owner_remains_and_is_audited(admin_client, superuser, owned_team):
    team, membership = owned_team
    MembershipFactory(team=team, role=Role.OWNER)
    url = f"/admin/accounts/user/{membership.user_id}/delete/"
    assert admin_client.post(url, {"post": "yes"}, REMOTE_ADDR="10.9.9.9").status_code == 302
    assert not User.objects.filter(username="olga").exists()
    [deleted] = events("user.delete")
    assert (deleted.actor, deleted.ip, deleted.object_id) == (superuser, "10.9.9.9", str(membership.user_id))
    assert deleted.details == {"username": "olga", "via": "admin"}
    [left] = events("membership.remove")
    assert (left.actor, left.team, left.details["username"], left.details["role"]) == (superuser, team, "olga", "owner")


def test_user_bulk_delete_without_owners_deletes_and_audits_each(admin_client, owned_team):
    team, _ = owned_team
    viewers = [MembershipFactory(team=team, role=Role.VIEWER).user for _ in range(2)]
    data = {"action": "delete_selected", "_selected_action": [u.pk for u in viewers], "post": "yes"}
    assert admin_client.post("/admin/accounts/user/", data).status_code == 302
    assert not User.objects.filter(pk__in=[u.pk for u in viewers]).exists()
    assert sorted(e.details["username"] for e in events("user.delete")) == sorted(u.username for u in viewers)


# ---- API tokens: deletion and edits are audited ------------------------------------------------------


def _token_events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


def test_token_delete_in_the_admin_is_audited(admin_client, superuser):
    owner = UserFactory(username="tess")
    token, plaintext = api_token_create(user=owner, name="ci")
    url = f"/admin/accounts/apitoken/{token.pk}/delete/"
    assert admin_client.post(url, {"post": "yes"}, REMOTE_ADDR="10.3.3.3").status_code == 302
    assert not ApiToken.objects.filter(pk=token.pk).exists()
    [event] = _token_events("token.delete")
    assert (event.actor, event.ip, event.object_id) == (superuser, "10.3.3.3", str(token.pk))
    assert event.details == {"name": "ci", "prefix": token.prefix, "owner": "tess", "was_active": True, "via": "admin"}
    assert token.token_hash not in str(event.details) and plaintext not in str(event.details)


def test_token_bulk_delete_in_the_admin_audits_each(admin_client, superuser):
    tokens = [api_token_create(user=UserFactory(), name=f"t{i}")[0] for i in range(2)]
    data = {"action": "delete_selected", "_selected_action": [t.pk for t in tokens], "post": "yes"}
    assert admin_client.post("/admin/accounts/apitoken/", data).status_code == 302
    assert not ApiToken.objects.exists()
    assert sorted(e.details["prefix"] for e in _token_events("token.delete")) == sorted(t.prefix for t in tokens)
    assert {e.actor for e in _token_events("token.delete")} == {superuser}


def test_token_edit_in_the_admin_is_audited_with_the_changed_fields(admin_client, superuser):
    token, plaintext = api_token_create(user=UserFactory(username="tess"), name="ci")
    url = f"/admin/accounts/apitoken/{token.pk}/change/"
    data = change_form_data(admin_client, url)
    assert admin_client.post(url, data).status_code == 302  # saved unchanged: no event
    assert not _token_events("token.update")
    data.update({"name": ["deploy"], "expires_at_0": ["2031-01-02"], "expires_at_1": ["03:04:05"]})
    assert admin_client.post(url, data, REMOTE_ADDR="10.2.2.2").status_code == 302
    token.refresh_from_db()
    assert token.name == "deploy" and token.expires_at.year == 2031
    [event] = _token_events("token.update")
    assert (event.actor, event.ip, event.object_id) == (superuser, "10.2.2.2", str(token.pk))
    assert event.details["changes"]["name"] == ["ci", "deploy"]
    assert event.details["changes"]["expires_at"] == [None, token.expires_at.isoformat()]
    assert (event.details["prefix"], event.details["owner"], event.details["via"]) == (token.prefix, "tess", "admin")
    assert token.token_hash not in str(event.details) and plaintext not in str(event.details)


def test_token_edit_in_the_admin_refuses_a_blank_name(admin_client):
    token, _ = api_token_create(user=UserFactory(), name="ci")
    url = f"/admin/accounts/apitoken/{token.pk}/change/"
    data = change_form_data(admin_client, url)
    data["name"] = ["   "]
    response = admin_client.post(url, data)
    assert response.status_code == 200  # the form again, with the error
    assert ApiToken.objects.get(pk=token.pk).name == "ci"
    assert not _token_events("token.update")
