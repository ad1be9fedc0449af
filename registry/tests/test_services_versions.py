import pytest
from django.db.models import ProtectedError

from accounts.models import AuditEvent
from experiments.tests.factories import ExperimentFactory, RunFactory
from mlplatform.errors import Conflict, Forbidden, InvalidInput, NotFound
from registry import services
from registry.models import Alias, Deployment, ModelVersion, Stage, StageTransition, WebhookDelivery
from registry.tests.factories import (
    DeploymentFactory,
    EnvironmentFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    WebhookFactory,
)

pytestmark = pytest.mark.django_db


def test_versions_are_numbered_per_model(editor, model, team):
    other = RegisteredModelFactory(team=team)
    numbers = [services.model_version_create(user=editor, model=model, source="s3://b/m").version for _ in range(3)]
    assert numbers == [1, 2, 3]
    assert services.model_version_create(user=editor, model=other, source="s3://b/m").version == 1


def test_deleted_number_is_not_reused(editor, team_admin, model):
    first = services.model_version_create(user=editor, model=model, source="s3://b/m")
    services.model_version_delete(user=team_admin, version=first)
    assert services.model_version_create(user=editor, model=model, source="s3://b/m").version == 2


def test_create_from_runs_uri_links_the_run(editor, model, run):
    version = services.model_version_create(
        user=editor, model=model, source=f"runs:/{run.run_uuid}/model", description="d", tags={"k": "v"}
    )
    assert version.run == run
    assert version.status == "READY"
    assert version.created_by == editor
    assert dict(version.tags.values_list("key", "value")) == {"k": "v"}


def test_create_with_run_and_artifact_uri_source(editor, model, run):
    version = services.model_version_create(user=editor, model=model, source=f"{run.artifact_uri}/model", run=run)
    assert version.run == run


def test_create_with_run_id_string(editor, model, run):
    version = services.model_version_create(
        user=editor, model=model, source="runs:/" + run.run_uuid + "/model/MLmodel", run=run.run_uuid
    )
    assert version.run == run


def test_missing_artifact_path_is_rejected(editor, model, run):
    with pytest.raises(InvalidInput, match="no artifact at 'nothing-here'"):
        services.model_version_create(user=editor, model=model, source=f"runs:/{run.run_uuid}/nothing-here")
    assert not ModelVersion.objects.exists()
    model.refresh_from_db()
    assert model.last_version == 0


def test_unknown_run_is_not_found(editor, model):
    with pytest.raises(NotFound, match="Run"):
        services.model_version_create(user=editor, model=model, source="runs:/" + "a" * 32 + "/model")
    assert not ModelVersion.objects.exists()


def test_run_of_another_team_is_not_found(editor, model, other_team):
    foreign = RunFactory(experiment=ExperimentFactory(team=other_team))
    with pytest.raises(NotFound, match="Run"):
        services.model_version_create(user=editor, model=model, source=f"runs:/{foreign.run_uuid}/model")
    assert not ModelVersion.objects.exists()


def test_deleted_run_is_rejected(editor, model, run):
    run.lifecycle_stage = "deleted"
    run.save()
    with pytest.raises(InvalidInput, match="deleted"):
        services.model_version_create(user=editor, model=model, source=f"runs:/{run.run_uuid}/model")


def test_source_and_run_must_agree(editor, model, run, team):
    other = RunFactory(experiment=ExperimentFactory(team=team))
    with pytest.raises(InvalidInput, match="another run"):
        services.model_version_create(user=editor, model=model, source=f"runs:/{run.run_uuid}/model", run=other)
    with pytest.raises(InvalidInput, match="another run"):
        services.model_version_create(
            user=editor, model=model, source=f"runs:/{run.run_uuid}/model", run=other.run_uuid
        )


def test_unsafe_artifact_path_is_rejected(editor, model, run):
    with pytest.raises(InvalidInput):
        services.model_version_create(user=editor, model=model, source=f"runs:/{run.run_uuid}/../escape")


def test_external_source_with_run_is_not_checked(editor, model, run):
    version = services.model_version_create(user=editor, model=model, source="s3://elsewhere/model", run=run)
    assert version.run == run


def test_run_root_source_is_accepted(editor, model, run):
    assert services.model_version_create(user=editor, model=model, source=run.artifact_uri, run=run).run == run


def test_viewer_cannot_register(viewer, model):
    with pytest.raises(Forbidden):
        services.model_version_create(user=viewer, model=model, source="s3://b/m")


@pytest.mark.parametrize("source", ["", 3, "x" * 501])
def test_bad_source(editor, model, source):
    with pytest.raises(InvalidInput):
        services.model_version_create(user=editor, model=model, source=source)


def test_create_queues_webhook(editor, model, team):
    hook = WebhookFactory(team=team)
    WebhookFactory(team=team, event_types=["deployment.changed"])
    services.model_version_create(user=editor, model=model, source="s3://b/m")
    delivery = WebhookDelivery.objects.get()
    assert delivery.webhook == hook
    assert delivery.event_type == "model_version.created"
    assert delivery.payload["data"]["model_version"]["version"] == 1


def test_update_description(editor, model):
    version = ModelVersionFactory(model=model)
    services.model_version_update(user=editor, version=version, description="better")
    version.refresh_from_db()
    assert version.description == "better"


def test_delete_refused_while_deployed(team_admin, model):
    version = ModelVersionFactory(model=model)
    DeploymentFactory(version=version)
    with pytest.raises(Conflict):
        services.model_version_delete(user=team_admin, version=version)


@pytest.mark.parametrize("status", ["retired", "failed"])
def test_delete_refused_when_it_was_ever_deployed_and_the_history_survives(team_admin, model, status):
    version = ModelVersionFactory(model=model)
    production = EnvironmentFactory(team=model.team, name="production")
    deployment = DeploymentFactory(version=version, status=status, environment=production)
    services._event(deployment, kind="created", actor=team_admin, to_status="live", message="deployed by ops")
    with pytest.raises(Conflict, match=r"has been deployed .*production.*history") as caught:
        services.model_version_delete(user=team_admin, version=version)
    assert caught.value.code == "deployment_history"
    assert caught.value.details == {"deployments": 1, "environments": ["production"], "active": []}
    assert ModelVersion.objects.filter(pk=version.pk).exists()
    assert Deployment.objects.get(pk=deployment.pk).events.get().message == "deployed by ops"
    assert not AuditEvent.objects.filter(action="registry.version.delete").exists()


def test_deployments_protect_their_version_even_outside_the_services(model):
    version = ModelVersionFactory(model=model)
    DeploymentFactory(version=version, status="retired")
    with pytest.raises(ProtectedError):
        version.delete()
    with pytest.raises(ProtectedError):
        model.delete()


def test_a_version_deployed_meanwhile_is_still_refused(team_admin, model, monkeypatch):
    """The check and the delete race a concurrent deploy: PROTECT turns the late one into the same 409."""
    version = ModelVersionFactory(model=model)
    monkeypatch.setattr(services, "deployment_history_conflict", lambda deployments, what: None)
    DeploymentFactory(version=version)
    with pytest.raises(Conflict):
        services.model_version_delete(user=team_admin, version=version)
    assert ModelVersion.objects.filter(pk=version.pk).exists()


def test_a_never_deployed_version_is_deleted(team_admin, model):
    version = ModelVersionFactory(model=model)
    DeploymentFactory(version=ModelVersionFactory(model=model))  # another version's deployment
    services.model_version_delete(user=team_admin, version=version)
    assert not ModelVersion.objects.filter(pk=version.pk).exists()


def test_version_tags(editor, model):
    version = ModelVersionFactory(model=model)
    services.model_version_set_tag(user=editor, version=version, key="k", value="v")
    assert version.tags.get().value == "v"
    services.model_version_delete_tag(user=editor, version=version, key="k")
    assert not version.tags.exists()
    with pytest.raises(NotFound):
        services.model_version_delete_tag(user=editor, version=version, key="k")


@pytest.mark.parametrize("given,expected", [("production", "Production"), ("STAGING", "Staging"), ("none", "None")])
def test_stage_names_are_case_insensitive(editor, model, given, expected):
    version = ModelVersionFactory(model=model)
    services.model_version_transition_stage(user=editor, version=version, stage=given)
    version.refresh_from_db()
    assert version.current_stage == expected


def test_transition_records_history(editor, model):
    version = ModelVersionFactory(model=model)
    services.model_version_transition_stage(user=editor, version=version, stage="Staging", comment="looks good")
    transition = StageTransition.objects.get()
    assert (transition.from_stage, transition.to_stage, transition.user, transition.comment) == (
        "None",
        "Staging",
        editor,
        "looks good",
    )
    assert AuditEvent.objects.filter(action="registry.version.stage").exists()


def test_archive_existing_versions(editor, model):
    old = ModelVersionFactory(model=model, current_stage=Stage.PRODUCTION)
    staged = ModelVersionFactory(model=model, current_stage=Stage.STAGING)
    new = ModelVersionFactory(model=model)
    services.model_version_transition_stage(
        user=editor, version=new, stage="Production", archive_existing_versions=True
    )
    old.refresh_from_db()
    staged.refresh_from_db()
    assert old.current_stage == "Archived"
    assert staged.current_stage == "Staging"
    assert StageTransition.objects.filter(version=old, to_stage="Archived").exists()


def test_without_archive_two_versions_share_a_stage(editor, model):
    old = ModelVersionFactory(model=model, current_stage=Stage.PRODUCTION)
    new = ModelVersionFactory(model=model)
    services.model_version_transition_stage(user=editor, version=new, stage="Production")
    old.refresh_from_db()
    assert old.current_stage == "Production"


@pytest.mark.parametrize("stage", ["Prod", "", None, 3])
def test_invalid_stage(editor, model, stage):
    version = ModelVersionFactory(model=model)
    with pytest.raises(InvalidInput, match="Invalid stage"):
        services.model_version_transition_stage(user=editor, version=version, stage=stage)
    assert not StageTransition.objects.exists()


def test_archive_existing_needs_staging_or_production(editor, model):
    version = ModelVersionFactory(model=model)
    with pytest.raises(InvalidInput, match="archive_existing_versions"):
        services.model_version_transition_stage(
            user=editor, version=version, stage="Archived", archive_existing_versions=True
        )


def test_alias_set_and_move(editor, model):
    v1, v2 = ModelVersionFactory(model=model), ModelVersionFactory(model=model)
    services.alias_set(user=editor, model=model, alias="champion", version=v1)
    services.alias_set(user=editor, model=model, alias="champion", version=2)
    alias = Alias.objects.get()
    assert alias.version == v2
    event = AuditEvent.objects.filter(action="registry.alias.set").order_by("-id").first()
    assert event.details == {"alias": "champion", "from_version": 1, "to_version": 2}


def test_alias_to_unknown_version(editor, model):
    with pytest.raises(NotFound):
        services.alias_set(user=editor, model=model, alias="champion", version=9)
    assert not Alias.objects.exists()


def test_alias_to_other_models_version(editor, model, team):
    foreign = ModelVersionFactory(model=RegisteredModelFactory(team=team))
    with pytest.raises(InvalidInput):
        services.alias_set(user=editor, model=model, alias="champion", version=foreign)


@pytest.mark.parametrize("alias", ["latest", "v3", "has space", "", "a/b"])
def test_invalid_alias(editor, model, alias):
    ModelVersionFactory(model=model)
    with pytest.raises(InvalidInput):
        services.alias_set(user=editor, model=model, alias=alias, version=1)


def test_alias_version_must_be_int(editor, model):
    with pytest.raises(InvalidInput):
        services.alias_set(user=editor, model=model, alias="x", version=True)


def test_alias_delete(editor, model, team):
    WebhookFactory(team=team, event_types=["model_version.alias_changed"])
    ModelVersionFactory(model=model)
    services.alias_set(user=editor, model=model, alias="champion", version=1)
    services.alias_delete(user=editor, model=model, alias="champion")
    assert not Alias.objects.exists()
    assert WebhookDelivery.objects.filter(event_type="model_version.alias_changed").count() == 2
    with pytest.raises(NotFound):
        services.alias_delete(user=editor, model=model, alias="champion")


def test_versions_refuse_unstorable_characters(editor, model):
    with pytest.raises(InvalidInput, match=r"^source: contains a NUL character"):
        services.model_version_create(user=editor, model=model, source="s3://b/\x00")
    with pytest.raises(InvalidInput, match=r"^description: contains an unpaired surrogate"):
        services.model_version_create(user=editor, model=model, source="s3://b/m", description="\ud800")
    assert not ModelVersion.objects.exists()
    version = services.model_version_create(user=editor, model=model, source="s3://b/m")
    with pytest.raises(InvalidInput, match=r"^comment: contains a NUL character"):
        services.model_version_transition_stage(user=editor, version=version, stage="Staging", comment="\x00")
