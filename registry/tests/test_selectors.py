import re

import pytest

from experiments import search
from mlplatform.errors import InvalidInput, NotFound
from registry import selectors
from registry.models import ModelVersionTag, RegisteredModelTag, Stage
from registry.tests.factories import DeploymentFactory, ModelVersionFactory, RegisteredModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(team, other_team):
    fraud = RegisteredModelFactory(team=team, name="fraud-detector")
    churn = RegisteredModelFactory(team=team, name="churn")
    RegisteredModelFactory(team=other_team, name="fraud-secret")
    RegisteredModelTag.objects.create(model=fraud, key="owner", value="risk")
    return fraud, churn


def names(models):
    return [m.name for m in models]


def test_search_models_only_visible(viewer, catalogue):
    models, token = selectors.search_registered_models(user=viewer, filter_string="name LIKE 'fraud%'")
    assert names(models) == ["fraud-detector"]
    assert token is None


@pytest.mark.parametrize(
    "filter_string,expected",
    [
        ("", ["churn", "fraud-detector"]),
        ("name = 'churn'", ["churn"]),
        ("name != 'churn'", ["fraud-detector"]),
        ("name ILIKE 'FRAUD%'", ["fraud-detector"]),
        ("name LIKE 'FRAUD%'", []),
        ("name LIKE '_hurn'", ["churn"]),
        ("tags.owner = 'risk'", ["fraud-detector"]),
        ("tags.`owner` LIKE 'ri%'", ["fraud-detector"]),
        ("tags.owner != 'x'", ["fraud-detector"]),
        ("name LIKE '%' AND tags.owner = 'risk'", ["fraud-detector"]),
        ("name IN ('churn', 'nope')", ["churn"]),
    ],
)
def test_search_models_filters(viewer, catalogue, filter_string, expected):
    assert names(selectors.search_registered_models(user=viewer, filter_string=filter_string)[0]) == expected


def test_search_models_paging_and_order(viewer, catalogue):
    first, token = selectors.search_registered_models(user=viewer, order_by=["name DESC"], max_results=1)
    second, end = selectors.search_registered_models(
        user=viewer, order_by=["name DESC"], max_results=1, page_token=token
    )
    assert names(first + second) == ["fraud-detector", "churn"]
    assert end is None


@pytest.mark.parametrize(
    "filter_string,column,message",
    [
        ("name = ", 8, "expected a value"),
        ("colour = 'red'", 1, "unknown identifier 'colour'"),
        ("name ~ 'x'", 6, "unexpected text"),
        ("name = 'a' OR name = 'b'", 12, "expected AND or the end, found 'OR'"),
        ("(name = 'a')", 1, "expected a name"),
        ("name = churn", 8, "expected a value"),
        ("name > 'a'", 6, "operator > cannot be used"),
        ("tags.owner IN ('a')", 12, "operator IN cannot be used"),
        ("name IN 'a'", 9, "parenthesised list"),
        ("name IN ('a' 'b')", 14, "expected ',' or ')'"),
        ("name NOT LIKE 'a'", 10, "expected IN after NOT"),
        ("= 'a'", 1, "expected a name"),
        ("name 'a'", 6, "expected an operator"),
        ("metrics.acc > 1", 1, "unknown entity 'metrics'"),
        ("creation_timestamp > 1", 1, "unknown identifier 'creation_timestamp'"),
    ],
)
def test_search_syntax_errors_say_where(viewer, filter_string, column, message):
    """The registry grammar is the run grammar, AND-only: the same messages, naming the column."""
    with pytest.raises(InvalidInput, match=f"at column {column}: .*{re.escape(message)}"):
        selectors.search_registered_models(user=viewer, filter_string=filter_string)


@pytest.mark.parametrize(
    "kwargs", [{"max_results": 0}, {"max_results": 1001}, {"page_token": "!!"}, {"order_by": ["colour"]}]
)
def test_search_models_bad_arguments(viewer, kwargs):
    with pytest.raises(InvalidInput):
        selectors.search_registered_models(user=viewer, **kwargs)


def test_page_token_must_be_an_offset():
    with pytest.raises(InvalidInput):
        search.decode_page_token(search.encode_page_token(-1))


@pytest.mark.parametrize(
    "kwargs", [{"order_by": ["run_id"]}, {"order_by": ["tags.owner"]}, {"order_by": ["name sideways"]}]
)
def test_search_versions_bad_order_by(viewer, kwargs):
    with pytest.raises(InvalidInput, match=r"order_by\[0\]"):
        selectors.search_model_versions(user=viewer, **kwargs)


def test_search_versions_orders_by_timestamp_then_pk(viewer, catalogue):
    fraud, churn = catalogue
    first = ModelVersionFactory(model=churn)
    second = ModelVersionFactory(model=fraud)
    found, _ = selectors.search_model_versions(user=viewer, order_by=["creation_timestamp DESC"])
    assert [v.pk for v in found] == [second.pk, first.pk]


def test_search_versions(viewer, catalogue, run):
    fraud, churn = catalogue
    v1 = ModelVersionFactory(model=fraud, run=run)
    v2 = ModelVersionFactory(model=fraud, current_stage=Stage.PRODUCTION, source="s3://b/two")
    ModelVersionFactory(model=churn)
    ModelVersionTag.objects.create(version=v2, key="validated", value="yes")

    def found(text):
        return [(v.model.name, v.version) for v in selectors.search_model_versions(user=viewer, filter_string=text)[0]]

    assert found("name = 'fraud-detector'") == [("fraud-detector", 2), ("fraud-detector", 1)]
    assert found(f"run_id = '{run.run_uuid}'") == [("fraud-detector", 1)]
    assert found(f"run_id IN ('{run.run_uuid}')") == [("fraud-detector", 1)]
    assert found("version_number > 1") == [("fraud-detector", 2)]
    assert found("version_number = '1' AND name = 'churn'") == [("churn", 1)]
    assert found("source_path = 's3://b/two'") == [("fraud-detector", 2)]
    assert found("current_stage = 'Production'") == [("fraud-detector", 2)]
    assert found("tags.validated = 'yes'") == [("fraud-detector", 2)]
    assert found("version_number NOT IN (1)") == [("fraud-detector", 2)]
    assert v1.run == run


@pytest.mark.parametrize(
    "text",
    [
        "version_number = 'x'",
        "version_number LIKE '1'",
        "version_number = 1.5",
        "version_number = " + "9" * 5000,
        "version_number = 2147483648",
        "version_number IN ('1', '99999999999999999999')",
        "version_number NOT IN (1, '1.5')",
        "version_number = '\u0661'",
    ],
)
def test_version_number_must_be_whole(viewer, text):
    with pytest.raises(InvalidInput):
        selectors.search_model_versions(user=viewer, filter_string=text)


def test_version_numbers_in_a_list_are_compared_as_numbers(viewer, catalogue):
    fraud, _ = catalogue
    ModelVersionFactory(model=fraud)
    ModelVersionFactory(model=fraud)
    found, _ = selectors.search_model_versions(user=viewer, filter_string="version_number IN ('02', 2147483647)")
    assert [v.version for v in found] == [2]


def test_conditions_are_limited(viewer):
    limit = search.MAX_COMPARISONS
    selectors.search_registered_models(user=viewer, filter_string=" AND ".join(["name = 'x'"] * limit))
    with pytest.raises(InvalidInput, match=f"more than {limit} comparisons"):
        selectors.search_registered_models(user=viewer, filter_string=" AND ".join(["name = 'x'"] * (limit + 1)))


@pytest.mark.parametrize(
    "filter_string,expected",
    [
        ("name LIKE 'fraud\\_v1'", ["fraud_v1"]),
        ("name LIKE 'fraud_v1'", ["fraud_v1", "fraudXv1"]),
        ("name LIKE '100\\%'", ["100%"]),
        ("name LIKE '100%'", ["100%", "1000"]),
        ("name ILIKE 'FRAUD\\_V%'", ["fraud_v1"]),
        ("name <> 'fraudXv1' AND name LIKE 'fraud%'", ["fraud_v1"]),
    ],
)
def test_like_escapes_match_the_run_filter(viewer, team, filter_string, expected):
    """``\\`` escapes ``%`` and ``_`` in registry LIKE exactly as in the run filter (it used to be dropped)."""
    for name in ["fraud_v1", "fraudXv1", "100%", "1000"]:
        RegisteredModelFactory(team=team, name=name)
    assert names(selectors.search_registered_models(user=viewer, filter_string=filter_string)[0]) == sorted(expected)


def test_version_tag_not_equal_needs_the_tag(viewer, catalogue):
    """``tags.k != 'x'`` matches versions whose tag ``k`` differs, not versions without it (MLflow's meaning)."""
    fraud, _ = catalogue
    tagged, other, _untagged = (
        ModelVersionFactory(model=fraud),
        ModelVersionFactory(model=fraud),
        ModelVersionFactory(model=fraud),
    )
    ModelVersionTag.objects.create(version=tagged, key="k", value="x")
    ModelVersionTag.objects.create(version=other, key="k", value="y")
    found, _ = selectors.search_model_versions(user=viewer, filter_string="tags.k != 'x'")
    assert [v.pk for v in found] == [other.pk]


def test_registered_model_get_by_name(viewer, team, catalogue):
    assert selectors.registered_model_get(user=viewer, name="churn").name == "churn"
    assert selectors.registered_model_get(user=viewer, name="churn", team=team).name == "churn"
    with pytest.raises(NotFound):
        selectors.registered_model_get(user=viewer, name="fraud-secret")


def test_registered_model_get_ambiguous(outsider, team, other_team):
    from accounts.models import Role
    from accounts.tests.factories import MembershipFactory

    RegisteredModelFactory(team=team, name="same")
    RegisteredModelFactory(team=other_team, name="same")
    MembershipFactory(user=outsider, team=team, role=Role.VIEWER)
    with pytest.raises(InvalidInput, match="several of your teams"):
        selectors.registered_model_get(user=outsider, name="same")
    assert selectors.registered_model_get(user=outsider, name="same", team=other_team.pk).team == other_team


def test_latest_versions_per_stage(viewer, model):
    ModelVersionFactory(model=model, current_stage=Stage.PRODUCTION)
    ModelVersionFactory(model=model, current_stage=Stage.PRODUCTION)
    ModelVersionFactory(model=model, current_stage=Stage.STAGING)
    ModelVersionFactory(model=model)
    latest = selectors.latest_versions(user=viewer, model=model)
    assert [(v.version, v.current_stage) for v in latest] == [(2, "Production"), (3, "Staging"), (4, "None")]
    only = selectors.latest_versions(user=viewer, model=model, stages=["production"])
    assert [v.version for v in only] == [2]


def test_version_by_alias(viewer, editor, model):
    from registry import services

    ModelVersionFactory(model=model)
    services.alias_set(user=editor, model=model, alias="champion", version=1)
    assert selectors.model_version_by_alias(user=viewer, model=model, alias="champion").version == 1
    with pytest.raises(NotFound):
        selectors.model_version_by_alias(user=viewer, model=model, alias="nope")


def test_model_version_list_stage_filter(viewer, model):
    ModelVersionFactory(model=model, current_stage=Stage.STAGING)
    ModelVersionFactory(model=model)
    assert [v.version for v in selectors.model_version_list(user=viewer, model=model, stage="staging")] == [1]


def test_deployment_list_constant_queries(viewer, model, django_assert_num_queries):
    from registry.api.serializers import DeploymentOutput

    for _ in range(3):
        DeploymentFactory(version=ModelVersionFactory(model=model))
    with django_assert_num_queries(2):  # roles + the joined list
        data = DeploymentOutput(selectors.deployment_list(user=viewer, status="live"), many=True).data
    assert len(data) == 3


def test_model_list_constant_queries(viewer, team, django_assert_num_queries):
    from registry.api.serializers import ModelOutput

    for i in range(3):
        model = RegisteredModelFactory(team=team, name=f"m{i}")
        RegisteredModelTag.objects.create(model=model, key="k", value="v")
    with django_assert_num_queries(4):  # roles, models, tags, aliases
        data = ModelOutput(selectors.registered_model_list(user=viewer), many=True).data
    assert len(data) == 3
