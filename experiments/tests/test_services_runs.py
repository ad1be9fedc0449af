"""Run services: create, update, soft delete/restore, lock, hard delete, tags; live events for each."""

import pytest

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from experiments import services
from experiments.models import LifecycleStage, Run, RunStatus, RunTag
from experiments.tests.events import GroupListener
from experiments.tests.factories import ExperimentFactory, RunFactory, RunTagFactory
from mlplatform.errors import Forbidden, InvalidInput, NotFound
from mlplatform.events import experiment_group, run_group


def test_create_generates_id_name_and_artifact_uri(editor, experiment):
    run = services.run_create(user=editor, experiment=experiment)
    run.refresh_from_db()
    assert len(run.run_uuid) == 32 and int(run.run_uuid, 16) >= 0
    assert run.name and run.team_id == experiment.team_id and run.user == editor
    assert run.status == RunStatus.RUNNING and run.start_time > 0 and run.end_time is None
    assert run.artifact_uri == f"{experiment.artifact_location}/{run.run_uuid}/artifacts"
    assert run.last_seq == 1
    assert RunTag.objects.get(run=run, key="mlflow.runName").value == run.name


def test_create_with_name_tags_start_time_and_status(editor, experiment):
    run = services.run_create(
        user=editor, experiment=experiment, name="bert", start_time=123, tags={"a": "1"}, status="SCHEDULED"
    )
    run.refresh_from_db()
    assert (run.name, run.start_time, run.status) == ("bert", 123, "SCHEDULED")
    assert dict(run.tags.values_list("key", "value")) == {"a": "1", "mlflow.runName": "bert"}


def test_create_takes_the_name_from_the_run_name_tag(editor, experiment):
    run = services.run_create(user=editor, experiment=experiment, tags=[{"key": "mlflow.runName", "value": "tagged"}])
    assert run.name == "tagged"


@pytest.mark.parametrize(
    "kwargs",
    [{"status": "DONE"}, {"start_time": "now"}, {"name": "x" * 251}, {"tags": {"../x": "1"}}, {"name": 5}],
)
def test_create_rejects_bad_input_and_writes_nothing(editor, experiment, kwargs):
    with pytest.raises(InvalidInput):
        services.run_create(user=editor, experiment=experiment, **kwargs)
    assert not Run.objects.exists() and not RunTag.objects.exists()


def test_create_needs_editor_and_active_experiment(viewer, editor, outsider, team):
    experiment = ExperimentFactory(team=team)
    with pytest.raises(Forbidden):
        services.run_create(user=viewer, experiment=experiment)
    with pytest.raises(NotFound):
        services.run_create(user=outsider, experiment=experiment)
    deleted = ExperimentFactory(team=team, lifecycle_stage=LifecycleStage.DELETED)
    with pytest.raises(InvalidInput, match="deleted"):
        services.run_create(user=editor, experiment=deleted)
    assert not Run.objects.exists()


def test_create_publishes_a_created_event(editor, experiment, django_capture_on_commit_callbacks):
    listener = GroupListener(experiment_group(experiment.pk))
    with django_capture_on_commit_callbacks(execute=True):
        run = services.run_create(user=editor, experiment=experiment, name="live")
    (message,) = listener.messages()
    assert message["type"] == "run.event" and message["v"] == 1 and message["kind"] == "created"
    assert message["run_id"] == run.run_uuid and message["experiment_id"] == experiment.pk and message["seq"] == 1
    assert message["run"]["name"] == "live" and message["run"]["status"] == "RUNNING"


def test_update_status_end_time_and_name(editor, run, django_capture_on_commit_callbacks):
    listener = GroupListener(run_group(run.run_uuid))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_update(user=editor, run=run, status="FINISHED", end_time=999, name="final")
    run.refresh_from_db()
    assert (run.status, run.end_time, run.name, run.last_seq) == ("FINISHED", 999, "final", 2)
    assert RunTag.objects.get(run=run, key="mlflow.runName").value == "final"
    (message,) = listener.messages()
    assert message["kind"] == "status" and message["seq"] == 2 and message["run"]["status"] == "FINISHED"


@pytest.mark.parametrize("kwargs", [{"status": "nope"}, {"end_time": 1.5}, {"name": "x" * 251}])
def test_update_rejects_bad_input_without_touching_the_run(editor, run, kwargs):
    with pytest.raises(InvalidInput):
        services.run_update(user=editor, run=run, **kwargs)
    fresh = Run.objects.get(pk=run.pk)
    assert (fresh.status, fresh.end_time, fresh.last_seq) == ("RUNNING", None, 1)


def test_update_refused_for_viewer_deleted_or_locked_runs(viewer, editor, run):
    with pytest.raises(Forbidden):
        services.run_update(user=viewer, run=run, status="FINISHED")
    Run.objects.filter(pk=run.pk).update(lifecycle_stage=LifecycleStage.DELETED)
    with pytest.raises(InvalidInput, match="deleted"):
        services.run_update(user=editor, run=run, status="FINISHED")
    Run.objects.filter(pk=run.pk).update(lifecycle_stage=LifecycleStage.ACTIVE, locked=True)
    with pytest.raises(InvalidInput, match="locked"):
        services.run_update(user=editor, run=run, status="RUNNING")
    assert Run.objects.get(pk=run.pk).status == "RUNNING"


def test_delete_restore_audit_and_events(team_admin, run, django_capture_on_commit_callbacks):
    listener = GroupListener(run_group(run.run_uuid))
    with django_capture_on_commit_callbacks(execute=True):
        services.run_delete(user=team_admin, run=run)
        services.run_delete(user=team_admin, run=run)  # already deleted: no-op
    assert Run.objects.get(pk=run.pk).lifecycle_stage == LifecycleStage.DELETED
    with django_capture_on_commit_callbacks(execute=True):
        services.run_restore(user=team_admin, run=run)
        services.run_restore(user=team_admin, run=run)  # already active: no-op
    assert Run.objects.get(pk=run.pk).lifecycle_stage == LifecycleStage.ACTIVE
    assert [m["kind"] for m in listener.messages()] == ["deleted", "restored"]
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == ["run.delete", "run.restore"]


def test_editor_cannot_delete_or_restore(editor, run):
    with pytest.raises(Forbidden):
        services.run_delete(user=editor, run=run)
    Run.objects.filter(pk=run.pk).update(lifecycle_stage=LifecycleStage.DELETED)
    run.refresh_from_db()
    with pytest.raises(Forbidden):
        services.run_restore(user=editor, run=run)
    assert not AuditEvent.objects.exists()


def test_restore_needs_an_active_experiment(team_admin, run):
    services.experiment_delete(user=team_admin, experiment=run.experiment)
    run.refresh_from_db()
    with pytest.raises(InvalidInput, match="restore the experiment first"):
        services.run_restore(user=team_admin, run=run)


def test_lock_only_finished_runs_then_logging_is_refused(team_admin, editor, run):
    with pytest.raises(InvalidInput, match="finished"):
        services.run_set_locked(user=team_admin, run=run)
    services.run_update(user=editor, run=run, status="FINISHED")
    services.run_set_locked(user=team_admin, run=run)
    with pytest.raises(InvalidInput, match="locked"):
        services.log_metric(user=editor, run=run, key="loss", value=1.0)
    services.run_set_locked(user=team_admin, run=run, locked=False)
    services.log_metric(user=editor, run=run, key="loss", value=1.0)
    assert list(AuditEvent.objects.values_list("action", flat=True).order_by("id")) == ["run.lock", "run.unlock"]


def test_hard_delete_needs_superuser_and_removes_artifacts(
    team_admin, run, artifact_root, django_capture_on_commit_callbacks
):
    with pytest.raises(Forbidden):
        services.run_hard_delete(user=team_admin, run=run)
    folder = artifact_root / str(run.experiment_id) / run.run_uuid / "artifacts"
    folder.mkdir(parents=True)
    superuser = UserFactory(is_superuser=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_hard_delete(user=superuser, run=run)
    assert not Run.objects.exists() and not folder.exists()
    assert AuditEvent.objects.get().action == "run.hard_delete"


def test_set_tag_and_delete_tag(editor, run, django_capture_on_commit_callbacks):
    listener = GroupListener(run_group(run.run_uuid))
    with django_capture_on_commit_callbacks(execute=True):
        services.set_tag(user=editor, run=run, key="stage", value="a")
        services.set_tag(user=editor, run=run, key="stage", value="b")
        services.delete_tag(user=editor, run=run, key="stage")
    assert not RunTag.objects.filter(run=run, key="stage").exists()
    messages = listener.messages()
    assert [m["tags"] for m in messages] == [{"stage": "a"}, {"stage": "b"}, {"stage": None}]
    assert [m["seq"] for m in messages] == [2, 3, 4]


def test_delete_unknown_tag_is_404_and_bumps_nothing(editor, run):
    with pytest.raises(NotFound):
        services.delete_tag(user=editor, run=run, key="missing")
    assert Run.objects.get(pk=run.pk).last_seq == 1


def test_delete_tag_needs_editor(viewer, run):
    RunTagFactory(run=run, key="k")
    with pytest.raises(Forbidden):
        services.delete_tag(user=viewer, run=run, key="k")
    assert RunTag.objects.filter(run=run, key="k").exists()


def test_setting_the_run_name_tag_renames_the_run(editor, run):
    services.set_tag(user=editor, run=run, key="mlflow.runName", value="via-tag")
    assert Run.objects.get(pk=run.pk).name == "via-tag"


def test_run_name_tag_over_250_is_rejected(editor, run):
    with pytest.raises(InvalidInput):
        services.set_tag(user=editor, run=run, key="mlflow.runName", value="x" * 251)
    assert not RunTag.objects.filter(run=run).exists()


def test_deleting_a_missing_run_row_is_404(editor, run):
    Run.objects.filter(pk=run.pk).delete()
    with pytest.raises(NotFound):
        services.set_tag(user=editor, run=run, key="k", value="v")


def test_run_factory_sanity(run):
    assert RunFactory._meta.model is Run and run.is_active
