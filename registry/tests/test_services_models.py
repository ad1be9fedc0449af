import pytest

from accounts.models import AuditEvent
from mlplatform.errors import Conflict, Forbidden, InvalidInput, NotFound
from registry import services
from registry.models import RegisteredModel, RegisteredModelTag
from registry.tests.factories import DeploymentFactory, ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


def test_create_stores_model_and_tags(editor, team):
    model = services.registered_model_create(
        user=editor, team=team, name=" fraud ", description="d", tags=[{"key": "owner", "value": "ml"}]
    )
    assert model.name == "fraud"
    assert model.created_by == editor
    assert dict(model.tags.values_list("key", "value")) == {"owner": "ml"}


def test_create_accepts_tags_as_mapping(editor, team):
    model = services.registered_model_create(user=editor, team=team, name="m", tags={"a": "1"})
    assert model.tags.get().value == "1"


def test_create_duplicate_name_in_team_is_conflict(editor, team, model):
    with pytest.raises(Conflict, match="already exists"):
        services.registered_model_create(user=editor, team=team, name="fraud")
    assert RegisteredModel.objects.filter(name="fraud").count() == 1


def test_same_name_in_another_team_is_fine(editor, team, other_team):
    RegisteredModelFactory(team=other_team, name="fraud")
    services.registered_model_create(user=editor, team=team, name="fraud")
    assert RegisteredModel.objects.filter(name="fraud").count() == 2


def test_viewer_cannot_create(viewer, team):
    with pytest.raises(Forbidden):
        services.registered_model_create(user=viewer, team=team, name="m")
    assert not RegisteredModel.objects.exists()


def test_outsider_cannot_create(outsider, team):
    with pytest.raises(NotFound):
        services.registered_model_create(user=outsider, team=team, name="m")


@pytest.mark.parametrize("name", ["", "   ", "x" * 257, 5])
def test_create_rejects_bad_names(editor, team, name):
    with pytest.raises(InvalidInput):
        services.registered_model_create(user=editor, team=team, name=name)
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize(
    "tags",
    ["x", [{"value": "no key"}], [{"key": "", "value": "v"}], [{"key": "k", "value": 3}], {"k": "v" * 5001}],
)
def test_create_rejects_bad_tags_and_writes_nothing(editor, team, tags):
    with pytest.raises(InvalidInput):
        services.registered_model_create(user=editor, team=team, name="m", tags=tags)
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize("bad", ["a\x00b", "\ud83d", "\udc00x"], ids=["nul", "high-surrogate", "low-surrogate"])
@pytest.mark.parametrize(
    ("fields", "named"),
    [
        (lambda bad: {"name": bad}, "name"),
        (lambda bad: {"description": bad}, "description"),
        (lambda bad: {"tags": {bad: "v"}}, "tag key"),
        (lambda bad: {"tags": [{"key": "k", "value": bad}]}, "Tag 'k' value"),
    ],
    ids=["name", "description", "tag-key", "tag-value"],
)
def test_create_refuses_unstorable_characters(editor, team, bad, fields, named):
    with pytest.raises(InvalidInput) as info:
        services.registered_model_create(user=editor, team=team, **{"name": "m", **fields(bad)})
    assert info.value.message.startswith(f"{named}: contains ")
    assert not RegisteredModel.objects.exists()


def test_too_many_tags(editor, team):
    with pytest.raises(InvalidInput, match="limit is 100"):
        services.registered_model_create(user=editor, team=team, name="m", tags={f"k{i}": "v" for i in range(101)})


def test_update_description(editor, model):
    services.registered_model_update(user=editor, model=model, description="new")
    model.refresh_from_db()
    assert model.description == "new"


def test_rename(editor, model):
    services.registered_model_rename(user=editor, model=model, new_name="fraud-v2")
    model.refresh_from_db()
    assert model.name == "fraud-v2"
    assert AuditEvent.objects.filter(action="registry.model.rename", details__to="fraud-v2").exists()


def test_rename_to_same_name_is_noop(editor, model):
    assert services.registered_model_rename(user=editor, model=model, new_name="fraud").name == "fraud"


def test_rename_to_taken_name_is_conflict(editor, team, model):
    RegisteredModelFactory(team=team, name="taken")
    with pytest.raises(Conflict):
        services.registered_model_rename(user=editor, model=model, new_name="taken")
    model.refresh_from_db()
    assert model.name == "fraud"


def test_delete_needs_admin(editor, team_admin, model):
    with pytest.raises(Forbidden):
        services.registered_model_delete(user=editor, model=model)
    services.registered_model_delete(user=team_admin, model=model)
    assert not RegisteredModel.objects.exists()
    assert AuditEvent.objects.filter(action="registry.model.delete").exists()


def test_delete_refused_while_deployed(team_admin, model):
    DeploymentFactory(version=ModelVersionFactory(model=model))
    with pytest.raises(Conflict, match=r"\(live now\).*archive it instead"):
        services.registered_model_delete(user=team_admin, model=model)
    assert RegisteredModel.objects.filter(pk=model.pk).exists()


def test_delete_refused_when_a_version_was_ever_deployed(team_admin, model):
    retired = DeploymentFactory(version=ModelVersionFactory(model=model), status="retired")
    ModelVersionFactory(model=model)
    with pytest.raises(Conflict, match="Registered model 'fraud' has been deployed") as caught:
        services.registered_model_delete(user=team_admin, model=model)
    assert caught.value.code == "deployment_history"
    assert RegisteredModel.objects.filter(pk=model.pk).exists()
    assert model.versions.count() == 2 and model.deployments.get() == retired


def test_set_tag_overwrites(editor, model):
    services.registered_model_set_tag(user=editor, model=model, key="k", value="1")
    services.registered_model_set_tag(user=editor, model=model, key="k", value="2")
    assert RegisteredModelTag.objects.get(model=model, key="k").value == "2"


def test_delete_tag(editor, model):
    services.registered_model_set_tag(user=editor, model=model, key="k", value="1")
    services.registered_model_delete_tag(user=editor, model=model, key="k")
    assert not model.tags.exists()


def test_delete_missing_tag_is_not_found(editor, model):
    with pytest.raises(NotFound):
        services.registered_model_delete_tag(user=editor, model=model, key="nope")
