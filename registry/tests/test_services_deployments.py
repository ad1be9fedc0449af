import pytest

from accounts.models import AuditEvent, Role
from accounts.permissions import forget_roles
from accounts.tests.factories import MembershipFactory, TeamFactory
from mlplatform.errors import Conflict, Forbidden, InvalidInput, NotFound
from registry import services
from registry.models import Deployment, DeploymentEvent, Environment, WebhookDelivery
from registry.tests.factories import (
    DeploymentFactory,
    EnvironmentFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
    WebhookFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def v1(model):
    return ModelVersionFactory(model=model)


@pytest.fixture
def v2(model, v1):
    return ModelVersionFactory(model=model)


def live(model, environment):
    return Deployment.objects.filter(model=model, environment=environment, status="live")


def test_deploy_goes_live_and_records_event(team_admin, v1, staging):
    deployment = services.deploy(user=team_admin, version=v1, environment=staging, endpoint_url="http://svc/x")
    assert deployment.status == "live"
    assert deployment.went_live_at is not None
    assert deployment.created_by == team_admin
    event = DeploymentEvent.objects.get(deployment=deployment)
    assert (event.seq, event.kind, event.to_status, event.actor) == (1, "created", "live", team_admin)
    assert AuditEvent.objects.filter(action="deployment.deploy", object_id=str(deployment.pk)).exists()


def test_deploy_replaces_live_version(team_admin, model, v1, v2, staging):
    first = services.deploy(user=team_admin, version=v1, environment=staging)
    second = services.deploy(user=team_admin, version=v2, environment=staging)
    first.refresh_from_db()
    assert first.status == "retired"
    assert first.retired_at is not None
    assert list(live(model, staging)) == [second]
    retire = DeploymentEvent.objects.get(deployment=first, kind="status")
    assert (retire.from_status, retire.to_status) == ("live", "retired")


def test_deploy_same_live_version_again_is_conflict(team_admin, model, v1, staging):
    services.deploy(user=team_admin, version=v1, environment=staging)
    with pytest.raises(Conflict, match="already live"):
        services.deploy(user=team_admin, version=v1, environment=staging)
    assert Deployment.objects.count() == 1


def test_editor_cannot_deploy(editor, v1, staging):
    with pytest.raises(Forbidden):
        services.deploy(user=editor, version=v1, environment=staging)
    assert not Deployment.objects.exists()


def test_environment_of_other_team(team_admin, v1, other_team):
    with pytest.raises(NotFound):
        services.deploy(user=team_admin, version=v1, environment=EnvironmentFactory(team=other_team))


def test_environment_must_match_model_team(team_admin, team, v1):
    second = TeamFactory()
    MembershipFactory(user=team_admin, team=second, role=Role.ADMIN)
    forget_roles(team_admin)
    with pytest.raises(InvalidInput, match="another team"):
        services.deploy(user=team_admin, version=v1, environment=EnvironmentFactory(team=second))


@pytest.mark.parametrize("kwargs", [{"endpoint_url": "ftp://x"}, {"config": ["not", "a", "dict"]}])
def test_deploy_bad_inputs(team_admin, v1, staging, kwargs):
    with pytest.raises(InvalidInput):
        services.deploy(user=team_admin, version=v1, environment=staging, **kwargs)
    assert not Deployment.objects.exists()


def test_failed_registration_cannot_be_deployed(team_admin, model, staging):
    version = ModelVersionFactory(model=model, status="FAILED_REGISTRATION")
    with pytest.raises(InvalidInput, match="READY"):
        services.deploy(user=team_admin, version=version, environment=staging)


def test_pending_deploy_then_live_report(team_admin, model, v1, v2, staging):
    current = services.deploy(user=team_admin, version=v1, environment=staging)
    pending = services.deploy(user=team_admin, version=v2, environment=staging, activate=False)
    assert pending.status == "pending"
    current.refresh_from_db()
    assert current.status == "live"
    services.deployment_set_status(user=team_admin, deployment=pending, status="live", message="healthy")
    current.refresh_from_db()
    pending.refresh_from_db()
    assert (current.status, pending.status) == ("retired", "live")


@pytest.mark.parametrize(
    "start,target", [("retired", "live"), ("failed", "live"), ("live", "pending"), ("live", "live")]
)
def test_status_changes_not_allowed(team_admin, v1, start, target):
    deployment = DeploymentFactory(version=v1, status=start)
    with pytest.raises(Conflict, match="cannot become"):
        services.deployment_set_status(user=team_admin, deployment=deployment, status=target)


def test_unknown_status(team_admin, model, v1, staging):
    deployment = services.deploy(user=team_admin, version=v1, environment=staging)
    with pytest.raises(InvalidInput):
        services.deployment_set_status(user=team_admin, deployment=deployment, status="dancing")


def test_live_to_failed(team_admin, v1, staging):
    deployment = services.deploy(user=team_admin, version=v1, environment=staging)
    services.deployment_set_status(user=team_admin, deployment=deployment, status="failed", message="OOM")
    deployment.refresh_from_db()
    assert deployment.status == "failed"
    assert DeploymentEvent.objects.filter(deployment=deployment, to_status="failed", message="OOM").exists()


def test_promote_to_next_environment(team_admin, model, v1, staging, production):
    in_staging = services.deploy(user=team_admin, version=v1, environment=staging, config={"replicas": 2})
    promoted = services.promote(user=team_admin, deployment=in_staging)
    assert promoted.environment == production
    assert promoted.version == v1
    assert promoted.origin == "promote"
    assert promoted.source == in_staging
    assert promoted.config == {"replicas": 2}
    in_staging.refresh_from_db()
    assert in_staging.status == "live"  # promoting copies; staging keeps serving
    assert DeploymentEvent.objects.filter(deployment=promoted, kind="promoted").exists()
    assert AuditEvent.objects.filter(action="deployment.promote").exists()


def test_promote_from_last_environment_is_conflict(team_admin, v1, staging, production):
    in_prod = services.deploy(user=team_admin, version=v1, environment=production)
    with pytest.raises(Conflict, match="last environment"):
        services.promote(user=team_admin, deployment=in_prod)


def test_promote_retired_deployment_is_conflict(team_admin, v1, v2, staging, production):
    first = services.deploy(user=team_admin, version=v1, environment=staging)
    services.deploy(user=team_admin, version=v2, environment=staging)
    with pytest.raises(Conflict, match="Only a live deployment"):
        services.promote(user=team_admin, deployment=first)


def test_promote_when_already_live_there(team_admin, v1, staging, production):
    in_staging = services.deploy(user=team_admin, version=v1, environment=staging)
    services.promote(user=team_admin, deployment=in_staging)
    with pytest.raises(Conflict, match="already live"):
        services.promote(user=team_admin, deployment=in_staging)


def test_rollback_restores_previous_version(team_admin, model, v1, v2, production):
    first = services.deploy(user=team_admin, version=v1, environment=production)
    second = services.deploy(user=team_admin, version=v2, environment=production)
    restored = services.rollback(user=team_admin, model=model, environment=production)
    second.refresh_from_db()
    assert second.status == "retired"
    assert restored.version == v1
    assert restored.origin == "rollback"
    assert restored.source == first
    assert list(live(model, production)) == [restored]
    event = DeploymentEvent.objects.get(deployment=restored, kind="rolled_back")
    assert "from version 2 to 1" in event.message
    audit = AuditEvent.objects.get(action="deployment.rollback")
    assert audit.details["from_version"] == 2 and audit.details["to_version"] == 1


def test_rollback_twice_toggles_back(team_admin, model, v1, v2, production):
    services.deploy(user=team_admin, version=v1, environment=production)
    services.deploy(user=team_admin, version=v2, environment=production)
    services.rollback(user=team_admin, model=model, environment=production)
    again = services.rollback(user=team_admin, model=model, environment=production)
    assert again.version == v2


def test_rollback_without_previous_version_is_409_with_message(team_admin, model, v1, production):
    services.deploy(user=team_admin, version=v1, environment=production)
    with pytest.raises(Conflict, match="nothing to roll back to") as info:
        services.rollback(user=team_admin, model=model, environment=production)
    assert info.value.code == "no_previous_version"
    assert Deployment.objects.count() == 1


def test_rollback_without_live_deployment(team_admin, model, production):
    with pytest.raises(Conflict, match="no live deployment"):
        services.rollback(user=team_admin, model=model, environment=production)


def test_editor_cannot_rollback(editor, model, production):
    with pytest.raises(Forbidden):
        services.rollback(user=editor, model=model, environment=production)


def test_deployment_change_queues_webhook(team_admin, team, v1, staging):
    WebhookFactory(team=team, event_types=["deployment.changed"])
    services.deploy(user=team_admin, version=v1, environment=staging)
    delivery = WebhookDelivery.objects.get()
    assert delivery.payload["data"]["action"] == "deploy"
    assert delivery.payload["data"]["deployment"]["environment"] == "staging"


def test_environment_create_appends_to_path(team_admin, team):
    first = services.environment_create(user=team_admin, team=team, name="staging")
    second = services.environment_create(user=team_admin, team=team, name="production")
    assert (first.position, second.position) == (0, 1)


def test_environment_duplicate_name_or_position(team_admin, team, staging):
    with pytest.raises(Conflict):
        services.environment_create(user=team_admin, team=team, name="staging")
    with pytest.raises(Conflict):
        services.environment_create(user=team_admin, team=team, name="qa", position=0)
    with pytest.raises(InvalidInput):
        services.environment_create(user=team_admin, team=team, name="qa", position=-1)


def test_environment_needs_admin(editor, team):
    with pytest.raises(Forbidden):
        services.environment_create(user=editor, team=team, name="staging")


def test_environment_update(team_admin, staging, production):
    services.environment_update(user=team_admin, environment=staging, name="qa", position=5, description="d")
    staging.refresh_from_db()
    assert (staging.name, staging.position, staging.description) == ("qa", 5, "d")
    with pytest.raises(Conflict):
        services.environment_update(user=team_admin, environment=staging, name="production")
    with pytest.raises(Conflict):
        services.environment_update(user=team_admin, environment=staging, position=1)


def test_environment_delete(team_admin, v1, staging, production):
    services.deploy(user=team_admin, version=v1, environment=staging)
    with pytest.raises(Conflict, match="history"):
        services.environment_delete(user=team_admin, environment=staging)
    services.environment_delete(user=team_admin, environment=production)
    assert list(Environment.objects.all()) == [staging]


def test_models_in_other_team_do_not_mix(team_admin, team, staging):
    v_a = ModelVersionFactory(model=RegisteredModelFactory(team=team))
    v_b = ModelVersionFactory(model=RegisteredModelFactory(team=team))
    a = services.deploy(user=team_admin, version=v_a, environment=staging)
    b = services.deploy(user=team_admin, version=v_b, environment=staging)
    a.refresh_from_db()
    assert (a.status, b.status) == ("live", "live")


def test_rollback_after_the_live_version_failed(team_admin, model, v1, v2, production):
    first = services.deploy(user=team_admin, version=v1, environment=production)
    second = services.deploy(user=team_admin, version=v2, environment=production)
    services.deployment_set_status(user=team_admin, deployment=second, status="failed", message="OOM")
    restored = services.rollback(user=team_admin, model=model, environment=production)
    assert (restored.version, restored.source, restored.status) == (v1, first, "live")
    second.refresh_from_db()
    assert second.status == "failed"  # stays as reported
    audit = AuditEvent.objects.get(action="deployment.rollback")
    assert (audit.details["from_version"], audit.details["to_version"], audit.details["retired"]) == (2, 1, [])


def test_rollback_ignores_an_older_failure_when_nothing_is_live(team_admin, model, v1, v2, production):
    services.deploy(user=team_admin, version=v1, environment=production)
    second = services.deploy(user=team_admin, version=v2, environment=production)
    services.deployment_set_status(user=team_admin, deployment=second, status="retired")
    with pytest.raises(Conflict, match="no live deployment"):
        services.rollback(user=team_admin, model=model, environment=production)


def test_rollback_refuses_an_environment_of_another_team(team_admin, model, v1, production, other_team):
    services.deploy(user=team_admin, version=v1, environment=production)
    with pytest.raises(InvalidInput, match="another team"):
        services.rollback(user=team_admin, model=model, environment=EnvironmentFactory(team=other_team))
