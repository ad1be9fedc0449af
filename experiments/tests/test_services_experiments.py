"""Experiment services: create, rename, soft delete/restore, tags, hard delete."""

import pytest

from accounts.models import AuditEvent, Membership, Role, Team
from accounts.tests.factories import UserFactory
from experiments import services
from experiments.models import Experiment, ExperimentTag, LifecycleStage, Run
from experiments.tests.factories import ExperimentFactory, RunFactory
from mlplatform.errors import Conflict, Forbidden, InvalidInput, NotFound


def test_create_in_team_with_tags_and_default_artifact_location(editor, team):
    experiment = services.experiment_create(
        user=editor, team=team, name="  mnist  ", description="digits", tags={"goal": "sota"}
    )
    experiment.refresh_from_db()
    assert experiment.name == "mnist"
    assert experiment.team == team and experiment.created_by == editor
    assert experiment.artifact_location == f"mlflow-artifacts:/{experiment.pk}"
    assert dict(experiment.tags.values_list("key", "value")) == {"goal": "sota"}


def test_create_without_team_uses_the_personal_team(viewer):
    experiment = services.experiment_create(user=viewer, name="mine")
    assert experiment.team.is_personal
    assert Membership.objects.get(team=experiment.team, user=viewer).role == Role.OWNER


def test_create_keeps_an_explicit_artifact_location(editor, team):
    experiment = services.experiment_create(user=editor, team=team, name="s3", artifact_location="s3://bucket/x")
    assert experiment.artifact_location == "s3://bucket/x"


def test_viewer_cannot_create_and_outsider_gets_404(viewer, outsider, team):
    with pytest.raises(Forbidden):
        services.experiment_create(user=viewer, team=team, name="x")
    with pytest.raises(NotFound):
        services.experiment_create(user=outsider, team=team, name="x")
    assert not Experiment.objects.exists()


def test_duplicate_name_in_team_is_a_conflict_but_other_team_is_fine(editor, team, outsider, other_team):
    services.experiment_create(user=editor, team=team, name="dup")
    with pytest.raises(Conflict):
        services.experiment_create(user=editor, team=team, name="dup")
    services.experiment_create(user=outsider, team=other_team, name="dup")
    assert Experiment.objects.filter(name="dup").count() == 2


def test_name_taken_by_deleted_experiment_says_so(editor, team):
    ExperimentFactory(team=team, name="old", lifecycle_stage=LifecycleStage.DELETED)
    with pytest.raises(Conflict, match="deleted state"):
        services.experiment_create(user=editor, team=team, name="old")


@pytest.mark.parametrize("name", ["", "   ", None, 5, "x" * 501])
def test_bad_names_write_nothing(editor, team, name):
    with pytest.raises(InvalidInput):
        services.experiment_create(user=editor, team=team, name=name)
    assert not Experiment.objects.exists()


def test_bad_tags_write_nothing(editor, team):
    with pytest.raises(InvalidInput):
        services.experiment_create(user=editor, team=team, name="x", tags={"../bad": "v"})
    assert not Experiment.objects.exists() and not ExperimentTag.objects.exists()


def test_description_must_be_text(editor, team):
    with pytest.raises(InvalidInput):
        services.experiment_create(user=editor, team=team, name="x", description=5)


def test_anonymous_without_team_gets_404(db):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(NotFound):
        services.experiment_create(user=AnonymousUser(), name="x")
    assert not Team.objects.exists()


def test_update_renames_and_describes(editor, experiment):
    services.experiment_update(user=editor, experiment=experiment, name="renamed", description="new")
    experiment.refresh_from_db()
    assert (experiment.name, experiment.description) == ("renamed", "new")


def test_update_to_taken_name_is_a_conflict(editor, team, experiment):
    ExperimentFactory(team=team, name="taken")
    with pytest.raises(Conflict):
        services.experiment_update(user=editor, experiment=experiment, name="taken")
    experiment.refresh_from_db()
    assert experiment.name == "mnist"


def test_update_requires_editor_and_an_active_experiment(viewer, editor, experiment):
    with pytest.raises(Forbidden):
        services.experiment_update(user=viewer, experiment=experiment, name="x")
    experiment.lifecycle_stage = LifecycleStage.DELETED
    experiment.save()
    with pytest.raises(InvalidInput, match="deleted"):
        services.experiment_update(user=editor, experiment=experiment, name="x")


def test_update_description_type_checked(editor, experiment):
    with pytest.raises(InvalidInput):
        services.experiment_update(user=editor, experiment=experiment, description=["x"])


def test_delete_and_restore_cascade_to_runs_and_are_audited(team_admin, experiment):
    run = RunFactory(experiment=experiment)
    services.experiment_delete(user=team_admin, experiment=experiment)
    run.refresh_from_db()
    assert experiment.lifecycle_stage == LifecycleStage.DELETED and run.lifecycle_stage == LifecycleStage.DELETED
    assert run.last_seq == 2
    services.experiment_restore(user=team_admin, experiment=experiment)
    run.refresh_from_db()
    assert Experiment.objects.get().lifecycle_stage == LifecycleStage.ACTIVE
    assert run.lifecycle_stage == LifecycleStage.ACTIVE
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor", "team"))
    assert actions == [
        ("experiment.delete", team_admin.pk, experiment.team_id),
        ("experiment.restore", team_admin.pk, experiment.team_id),
    ]


def test_delete_and_restore_are_idempotent(team_admin, experiment):
    services.experiment_restore(user=team_admin, experiment=experiment)
    services.experiment_delete(user=team_admin, experiment=experiment)
    services.experiment_delete(user=team_admin, experiment=experiment)
    assert AuditEvent.objects.filter(action="experiment.delete").count() == 1


def test_editor_cannot_delete(editor, experiment):
    with pytest.raises(Forbidden):
        services.experiment_delete(user=editor, experiment=experiment)
    experiment.refresh_from_db()
    assert experiment.lifecycle_stage == LifecycleStage.ACTIVE
    assert not AuditEvent.objects.exists()


def test_set_and_delete_tag(editor, experiment):
    services.experiment_set_tag(user=editor, experiment=experiment, key="k", value="1")
    services.experiment_set_tag(user=editor, experiment=experiment, key="k", value="2")
    assert list(experiment.tags.values_list("key", "value")) == [("k", "2")]
    services.experiment_delete_tag(user=editor, experiment=experiment, key="k")
    assert not experiment.tags.exists()
    with pytest.raises(NotFound):
        services.experiment_delete_tag(user=editor, experiment=experiment, key="k")


def test_tag_limits_and_roles(viewer, editor, experiment):
    with pytest.raises(InvalidInput, match="8000"):
        services.experiment_set_tag(user=editor, experiment=experiment, key="k", value="x" * 8001)
    with pytest.raises(Forbidden):
        services.experiment_set_tag(user=viewer, experiment=experiment, key="k", value="v")
    assert not experiment.tags.exists()


def test_hard_delete_removes_everything_and_is_audited(experiment, artifact_root, django_capture_on_commit_callbacks):
    superuser = UserFactory(is_superuser=True, is_staff=True)
    run = RunFactory(experiment=experiment)
    folder = artifact_root / str(experiment.pk) / run.run_uuid / "artifacts"
    folder.mkdir(parents=True)
    (folder / "f.txt").write_text("x")
    with django_capture_on_commit_callbacks(execute=True):
        services.experiment_hard_delete(user=superuser, experiment=experiment)
    assert not Experiment.objects.exists() and not Run.objects.exists()
    assert not (artifact_root / str(experiment.pk)).exists()
    event = AuditEvent.objects.get()
    assert event.action == "experiment.hard_delete" and event.details == {"name": "mnist", "runs": 1}


def test_hard_delete_needs_superuser_or_owner(team_admin, experiment):
    with pytest.raises(Forbidden):
        services.experiment_hard_delete(user=team_admin, experiment=experiment)
    assert Experiment.objects.exists()
