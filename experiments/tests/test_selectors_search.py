"""search_runs: the filter grammar compiled to queries, ordering, pagination, visibility."""

import math

import pytest

from experiments.models import LifecycleStage
from experiments.selectors import search_runs
from experiments.tests.factories import (
    ExperimentFactory,
    LatestMetricFactory,
    ParamFactory,
    RunFactory,
    RunTagFactory,
)
from mlplatform.errors import InvalidInput, NotFound


@pytest.fixture
def runs(experiment, editor):
    """Four runs with metrics, params and tags to filter on."""
    specs = [
        ("bert-base", "FINISHED", {"acc": 0.95, "loss": 0.1}, {"model": "bert", "lr": "0.1"}, {"team": "nlp"}),
        ("bert-large", "RUNNING", {"acc": 0.85}, {"model": "bert", "lr": "0.01"}, {"team": "nlp"}),
        ("cnn-small", "FINISHED", {"acc": 0.91, "loss": math.nan}, {"model": "cnn"}, {"team": "vision"}),
        ("Cnn-big", "FAILED", {}, {"model": "cnn", "lr": "0.5"}, {}),
    ]
    made = {}
    for index, (name, status, metrics, params, tags) in enumerate(specs):
        run = RunFactory(experiment=experiment, name=name, status=status, start_time=1000 + index, user=editor)
        for key, value in metrics.items():
            nan = math.isnan(value)
            LatestMetricFactory(run=run, key=key, value=0.0 if nan else value, is_nan=nan)
        for key, value in params.items():
            ParamFactory(run=run, key=key, value=value)
        for key, value in tags.items():
            RunTagFactory(run=run, key=key, value=value)
        made[name] = run
    return made


def names(user, experiment, text="", order_by=(), **kwargs):
    page = search_runs(user=user, experiment_ids=[experiment.pk], filter_string=text, order_by=order_by, **kwargs)
    return [run.name for run in page.runs]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["Cnn-big", "cnn-small", "bert-large", "bert-base"]),
        ("metrics.acc > 0.9", ["cnn-small", "bert-base"]),
        ("metrics.acc >= 0.85 and metrics.acc < 0.9", ["bert-large"]),
        ("metrics.acc = 0.85", ["bert-large"]),
        ("metrics.acc != 0.85", ["cnn-small", "bert-base"]),
        ("metrics.loss <= 1", ["bert-base"]),
        ("metrics.loss != 5", ["cnn-small", "bert-base"]),
        ("params.model = 'cnn'", ["Cnn-big", "cnn-small"]),
        ("params.lr != '0.1'", ["Cnn-big", "bert-large"]),
        ("params.model IN ('cnn', 'mlp')", ["Cnn-big", "cnn-small"]),
        ("params.lr NOT IN ('0.1', '0.01')", ["Cnn-big"]),
        ("tags.team != 'x'", ["cnn-small", "bert-large", "bert-base"]),
        ("tags.team LIKE 'n%'", ["bert-large", "bert-base"]),
        ("attributes.status = 'FINISHED'", ["cnn-small", "bert-base"]),
        ("attributes.status IN ('FAILED', 'RUNNING')", ["Cnn-big", "bert-large"]),
        ("run_name LIKE 'bert%'", ["bert-large", "bert-base"]),
        ("run_name LIKE 'cnn%'", ["cnn-small"]),
        ("run_name ILIKE 'cnn%'", ["Cnn-big", "cnn-small"]),
        ("run_name LIKE 'bert_base'", ["bert-base"]),
        ("run_name LIKE '%-%'", ["Cnn-big", "cnn-small", "bert-large", "bert-base"]),
        ("attributes.start_time > 1001", ["Cnn-big", "cnn-small"]),
        ("attributes.end_time != 5", []),
        ("metrics.acc > 0.9 and params.model = 'cnn'", ["cnn-small"]),
        ("metrics.acc > 0.9 or params.lr = '0.5'", ["Cnn-big", "cnn-small", "bert-base"]),
        ("(params.model = 'cnn' or tags.team = 'nlp') and attributes.status = 'FINISHED'", ["cnn-small", "bert-base"]),
        (
            "params.model = 'cnn' or tags.team = 'nlp' and attributes.status = 'FINISHED'",
            ["Cnn-big", "cnn-small", "bert-base"],
        ),
        ("metrics.missing > 0", []),
        ("params.x = '1' or params.y = '2'", []),
    ],
)
def test_filters(editor, experiment, runs, text, expected):
    assert names(editor, experiment, text) == expected


def test_user_id_attribute(editor, experiment, runs):
    assert len(names(editor, experiment, f"attributes.user_id = '{editor.username}'")) == 4


def test_run_id_attribute(editor, experiment, runs):
    run_id = runs["bert-base"].run_uuid
    assert names(editor, experiment, f"attributes.run_id IN ('{run_id}')") == ["bert-base"]


def test_like_wildcards_in_values_are_literal_when_escaped(editor, experiment, runs):
    RunFactory(experiment=experiment, name="100%_done", start_time=5000)
    assert names(editor, experiment, "run_name LIKE '100\\%\\_%'") == ["100%_done"]
    assert names(editor, experiment, "run_name LIKE '%*%'") == []


def test_injection_text_inside_a_string_is_just_a_value(editor, experiment, runs):
    assert names(editor, experiment, "params.model = 'cnn\\' OR 1=1 --'") == []
    assert names(editor, experiment, "params.model = \"x' OR '1'='1\"") == []


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.acc DESC"], ["bert-base", "cnn-small", "bert-large", "Cnn-big"]),
        (["metrics.acc ASC"], ["bert-large", "cnn-small", "bert-base", "Cnn-big"]),
        (["metrics.loss ASC"], ["bert-base", "cnn-small", "Cnn-big", "bert-large"]),
        (["metrics.loss DESC"], ["bert-base", "cnn-small", "Cnn-big", "bert-large"]),
        (["params.model ASC", "params.lr DESC"], ["bert-base", "bert-large", "Cnn-big", "cnn-small"]),
        (["tags.team", "attributes.start_time DESC"], ["bert-large", "bert-base", "cnn-small", "Cnn-big"]),
        (["attributes.run_name"], ["Cnn-big", "bert-base", "bert-large", "cnn-small"]),
        (["start_time"], ["bert-base", "bert-large", "cnn-small", "Cnn-big"]),
    ],
)
def test_order_by_with_missing_values_last(editor, experiment, runs, order_by, expected):
    assert names(editor, experiment, order_by=order_by) == expected


def test_pages_with_tokens(editor, experiment, runs):
    first = search_runs(user=editor, experiment_ids=[experiment.pk], max_results=3)
    assert len(first.runs) == 3 and first.next_page_token
    second = search_runs(user=editor, experiment_ids=[experiment.pk], max_results=3, page_token=first.next_page_token)
    assert [r.name for r in second.runs] == ["bert-base"] and second.next_page_token is None


def test_run_view(editor, experiment, runs):
    runs["bert-base"].lifecycle_stage = LifecycleStage.DELETED
    runs["bert-base"].save()
    assert "bert-base" not in names(editor, experiment)
    assert names(editor, experiment, run_view="deleted") == ["bert-base"]
    assert len(names(editor, experiment, run_view="all")) == 4
    with pytest.raises(InvalidInput):
        names(editor, experiment, run_view="sometimes")


def test_search_over_every_visible_experiment_excludes_other_teams_and_deleted_experiments(
    editor, experiment, runs, other_run
):
    deleted = ExperimentFactory(team=experiment.team, lifecycle_stage=LifecycleStage.DELETED)
    RunFactory(experiment=deleted, name="hidden")
    page = search_runs(user=editor)
    assert {r.name for r in page.runs} == set(runs)


def test_other_teams_experiment_is_404(editor, other_run):
    with pytest.raises(NotFound):
        search_runs(user=editor, experiment_ids=[other_run.experiment_id])


def test_staff_sees_every_team(staff, runs, other_run):
    assert len(search_runs(user=staff).runs) == 5


@pytest.mark.parametrize("max_results", [0, 1001, "10", True])
def test_max_results_bounds(editor, experiment, max_results):
    with pytest.raises(InvalidInput):
        search_runs(user=editor, experiment_ids=[experiment.pk], max_results=max_results)


def test_search_query_count_is_constant(editor, experiment, runs, django_assert_num_queries):
    search_runs(user=editor, experiment_ids=[experiment.pk])  # roles cached
    # experiment lookup, runs page, then params, tags and latest metrics in one UNION ALL
    with django_assert_num_queries(3):
        page = search_runs(
            user=editor,
            experiment_ids=[experiment.pk],
            filter_string="metrics.acc > 0 or params.model = 'cnn'",
            order_by=["metrics.acc DESC", "params.lr"],
        )
        for run in page.runs:
            list(run.params.all()), list(run.tags.all()), list(run.latest_metrics.all()), run.user


@pytest.mark.parametrize(
    ("text", "order_by"),
    [
        ("metrics.acc > 0.5", ["metrics.acc DESC"]),
        ("metrics.acc > 0.5", ["metrics.acc ASC"]),
        ("metrics.acc >= 0.85 and params.model = 'bert'", ["metrics.acc DESC"]),
        ("metrics.acc = 0.85", ["metrics.acc"]),
        ("metrics.acc != 0.85", ["metrics.acc DESC"]),  # != also matches NaN: not restated
        ("metrics.acc > 0.9 or params.lr = '0.5'", ["metrics.acc DESC"]),  # OR: not restated
        ("metrics.loss < 1", ["metrics.loss DESC", "metrics.acc"]),
        ("metrics.loss < 1", ["metrics.acc DESC"]),  # filter on another metric: not restated
        ("", ["metrics.loss DESC"]),
    ],
)
def test_restating_the_sort_metric_filter_keeps_results_and_order(runs, viewer, experiment, text, order_by):
    # Two extra runs: one whose sort metric is NaN, one without it.
    nan_run = RunFactory(experiment=experiment, name="nan-acc", start_time=2000)
    LatestMetricFactory(run=nan_run, key="acc", value=0.0, is_nan=True)
    RunFactory(experiment=experiment, name="no-metrics", start_time=2001)
    expected = {
        "metrics.acc > 0.5": ["bert-base", "cnn-small", "bert-large"],
        "metrics.acc >= 0.85 and params.model = 'bert'": ["bert-base", "bert-large"],
        "metrics.acc = 0.85": ["bert-large"],
        "metrics.acc != 0.85": ["bert-base", "cnn-small", "nan-acc"],
        "metrics.acc > 0.9 or params.lr = '0.5'": ["bert-base", "cnn-small", "Cnn-big"],
        "metrics.loss < 1": ["bert-base"],
        "": ["bert-base", "cnn-small", "no-metrics", "nan-acc", "Cnn-big", "bert-large"],
    }[text]
    if order_by == ["metrics.acc ASC"]:
        expected = list(reversed(expected))
    assert names(viewer, experiment, text, order_by=order_by) == expected


def test_search_page_loads_details_in_fixed_queries(runs, viewer, experiment, django_assert_num_queries):
    # experiment check, roles, runs, then params, tags and latest metrics in one UNION ALL
    with django_assert_num_queries(4):
        page = search_runs(user=viewer, experiment_ids=[experiment.pk], order_by=["metrics.acc DESC"])
    with django_assert_num_queries(0):
        shown = {
            run.name: (
                {p.key: p.value for p in run.params.all()},
                {t.key: t.value for t in run.tags.all()},
                {m.key: m.float_value for m in run.latest_metrics.all()},
                run.user.username,
                run.experiment_id,
            )
            for run in page.runs
        }
    assert shown["bert-base"][:3] == ({"lr": "0.1", "model": "bert"}, {"team": "nlp"}, {"acc": 0.95, "loss": 0.1})
    assert math.isnan(shown["cnn-small"][2]["loss"])
