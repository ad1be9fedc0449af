import pytest

from mlplatform.errors import InvalidInput, NotFound
from registry import search, selectors
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
    "filter_string,message",
    [
        ("name = ", "expected a value"),
        ("colour = 'red'", "unknown identifier 'colour'"),
        ("name ~ 'x'", "unexpected character"),
        ("name = 'a' OR name = 'b'", "expected AND at column 12"),
        ("name = churn", "expected a quoted string"),
        ("name > 'a'", "only applies to version_number"),
        ("name IN 'a'", "expected ("),
        ("name IN ('a' 'b')", "expected , or )"),
        ("name NOT LIKE 'a'", "expected IN"),
        ("= 'a'", "expected an identifier"),
        ("name 'a'", "expected an operator"),
    ],
)
def test_search_syntax_errors_say_where(viewer, filter_string, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
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
    selectors.search_registered_models(user=viewer, filter_string=" AND ".join(["name = 'x'"] * search.MAX_CONDITIONS))
    with pytest.raises(InvalidInput, match=f"more than {search.MAX_CONDITIONS} conditions"):
        selectors.search_registered_models(
            user=viewer, filter_string=" AND ".join(["name = 'x'"] * (search.MAX_CONDITIONS + 1))
        )


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
