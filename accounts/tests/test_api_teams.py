"""/api/v1/teams/ and /api/v1/teams/{id}/."""

import pytest

from accounts.models import AuditEvent, Membership, Role, Team

TEAMS = "/api/v1/teams/"


def test_list_shows_only_own_teams(owner, outsider, team, other_team, client_for):
    names = [t["name"] for t in client_for(owner).get(TEAMS).json()["results"]]
    assert names == ["vision"]
    assert "other" not in client_for(owner).get(TEAMS).content.decode()


def test_list_includes_the_callers_role(viewer, client_for):
    assert client_for(viewer).get(TEAMS).json()["results"][0]["role"] == "viewer"


def test_staff_lists_every_team(staff, team, other_team, client_for):
    names = sorted(t["name"] for t in client_for(staff).get(TEAMS).json()["results"])
    assert names == ["other", "vision"]


def test_create_makes_the_creator_owner_and_audits(viewer, client_for):
    response = client_for(viewer).post(TEAMS, {"name": "nlp", "description": "language"}, format="json")
    assert response.status_code == 201
    assert response.json()["role"] == "owner"
    team = Team.objects.get(name="nlp")
    assert Membership.objects.get(team=team, user=viewer).role == Role.OWNER
    event = AuditEvent.objects.get(action="team.create")
    assert (event.actor, event.team, event.object_id) == (viewer, team, str(team.pk))


def test_create_duplicate_name_is_409(viewer, team, client_for):
    response = client_for(viewer).post(TEAMS, {"name": "vision"}, format="json")
    assert response.status_code == 409
    assert Team.objects.filter(name="vision").count() == 1


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": " "}, {"name": 1}, {"name": "x" * 151}, [1]])
def test_create_with_bad_input_is_400_and_writes_nothing(viewer, client_for, body):
    before = Team.objects.count()
    response = client_for(viewer).post(TEAMS, body, format="json")
    assert response.status_code == 400
    assert Team.objects.count() == before
    assert not AuditEvent.objects.exists()


def test_detail_for_member(viewer, team, client_for):
    body = client_for(viewer).get(f"{TEAMS}{team.pk}/").json()
    assert (body["id"], body["name"], body["role"]) == (team.pk, "vision", "viewer")


def test_detail_of_another_team_is_404_without_leaking_its_name(viewer, other_team, client_for):
    response = client_for(viewer).get(f"{TEAMS}{other_team.pk}/")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "Team not found.", "details": {}}


def test_unknown_team_is_404_like_a_hidden_one(viewer, client_for):
    assert client_for(viewer).get(f"{TEAMS}987654/").json()["error"]["message"] == "Team not found."


def test_admin_renames_team(team_admin, team, client_for):
    response = client_for(team_admin).patch(f"{TEAMS}{team.pk}/", {"name": "vision-2"}, format="json")
    assert response.status_code == 200
    team.refresh_from_db()
    assert team.name == "vision-2"
    assert AuditEvent.objects.get(action="team.update").details["name"] == ["vision", "vision-2"]


def test_rename_to_taken_name_is_409(team_admin, team, other_team, client_for):
    response = client_for(team_admin).patch(f"{TEAMS}{team.pk}/", {"name": "other"}, format="json")
    assert response.status_code == 409
    team.refresh_from_db()
    assert team.name == "vision"


def test_editor_cannot_rename(editor, team, client_for):
    response = client_for(editor).patch(f"{TEAMS}{team.pk}/", {"name": "mine"}, format="json")
    assert response.status_code == 403
    team.refresh_from_db()
    assert team.name == "vision"


def test_patch_with_nothing_changed_writes_no_audit(team_admin, team, client_for):
    assert client_for(team_admin).patch(f"{TEAMS}{team.pk}/", {}, format="json").status_code == 200
    assert not AuditEvent.objects.exists()


def test_owner_deletes_team_and_it_is_audited(owner, team, client_for):
    team_id = team.pk
    assert client_for(owner).delete(f"{TEAMS}{team_id}/").status_code == 204
    assert not Team.objects.filter(pk=team_id).exists()
    event = AuditEvent.objects.get(action="team.delete")
    assert (event.actor, event.object_id, event.details["name"]) == (owner, str(team_id), "vision")


def test_team_with_experiments_or_models_cannot_be_deleted(owner, team, client_for):
    from experiments.models import Experiment
    from registry.models import RegisteredModel

    experiment = Experiment.objects.create(team=team, name="keep me")
    response = client_for(owner).delete(f"{TEAMS}{team.pk}/")
    assert response.status_code == 409
    assert "experiments or models" in response.json()["error"]["message"]
    assert Team.objects.filter(pk=team.pk).exists()
    assert Experiment.objects.filter(pk=experiment.pk).exists()
    experiment.delete()
    RegisteredModel.objects.create(team=team, name="model")
    assert client_for(owner).delete(f"{TEAMS}{team.pk}/").status_code == 409
    assert not AuditEvent.objects.filter(action="team.delete").exists()


def test_admin_cannot_delete_team(team_admin, team, client_for):
    assert client_for(team_admin).delete(f"{TEAMS}{team.pk}/").status_code == 403
    assert Team.objects.filter(pk=team.pk).exists()
    assert not AuditEvent.objects.exists()


def test_role_change_takes_effect_on_next_request(viewer, team, client_for):
    client = client_for(viewer)
    assert client.patch(f"{TEAMS}{team.pk}/", {"description": "x"}, format="json").status_code == 403
    membership = Membership.objects.get(user=viewer, team=team)
    membership.role = Role.ADMIN
    membership.save()  # the signal drops the cached roles (a queryset .update() would not)
    assert client.patch(f"{TEAMS}{team.pk}/", {"description": "x"}, format="json").status_code == 200
    Membership.objects.filter(user=viewer, team=team).delete()
    assert client.get(f"{TEAMS}{team.pk}/").status_code == 404
