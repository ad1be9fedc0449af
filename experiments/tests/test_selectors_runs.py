"""Run and experiment reads: lookups with permissions, details in fixed queries, history, catch-up."""

import math

import pytest

from experiments import selectors, services
from experiments.models import LifecycleStage
from experiments.tests.factories import (
    ExperimentFactory,
    ExperimentTagFactory,
    LatestMetricFactory,
    MetricFactory,
    ParamFactory,
    RunFactory,
    RunTagFactory,
)
from mlplatform.errors import Forbidden, InvalidInput, NotFound


def log_steps(user, run, key="loss", steps=range(10), value=lambda s: float(s)):
    services.log_batch(
        user=user, run=run, metrics=[{"key": key, "value": value(s), "step": s, "timestamp": 1000 + s} for s in steps]
    )


def test_experiment_list_filters_by_name_team_and_view(editor, team, other_team):
    ExperimentFactory(team=team, name="Vision A")
    ExperimentFactory(team=team, name="speech", lifecycle_stage=LifecycleStage.DELETED)
    ExperimentFactory(team=other_team, name="vision other")
    assert [e.name for e in selectors.experiment_list(user=editor, name="vision")] == ["Vision A"]
    assert [e.name for e in selectors.experiment_list(user=editor, name="Vision A", exact=True)] == ["Vision A"]
    assert [e.name for e in selectors.experiment_list(user=editor, view="deleted")] == ["speech"]
    assert selectors.experiment_list(user=editor, view="all", team_id=team.pk).count() == 2
    with pytest.raises(InvalidInput):
        selectors.experiment_list(user=editor, view="gone")


def test_experiment_get_checks_permissions(viewer, outsider, experiment):
    assert selectors.experiment_get(user=viewer, experiment_id=str(experiment.pk)) == experiment
    with pytest.raises(NotFound):
        selectors.experiment_get(user=outsider, experiment_id=experiment.pk)
    with pytest.raises(NotFound):
        selectors.experiment_get(user=viewer, experiment_id="abc")
    with pytest.raises(NotFound):
        selectors.experiment_get(user=viewer, experiment_id=10**9)
    from accounts.permissions import Action

    with pytest.raises(Forbidden):
        selectors.experiment_get(user=viewer, experiment_id=experiment.pk, action=Action.WRITE)


def test_team_get(team):
    assert selectors.team_get(team_id=team.pk) == team
    with pytest.raises(NotFound):
        selectors.team_get(team_id=10**9)


def test_run_get_and_detail_check_permissions(viewer, outsider, run):
    assert selectors.run_get(user=viewer, run_uuid=run.run_uuid) == run
    assert selectors.run_detail(user=viewer, run_uuid=run.run_uuid) == run
    for bad in ["x" * 32, "0" * 32, run.run_uuid.upper(), None]:
        with pytest.raises(NotFound):
            selectors.run_get(user=viewer, run_uuid=bad)
        with pytest.raises(NotFound):
            selectors.run_detail(user=viewer, run_uuid=bad)
    with pytest.raises(NotFound):
        selectors.run_detail(user=outsider, run_uuid=run.run_uuid)


def test_run_detail_is_a_fixed_number_of_queries(viewer, run, django_assert_num_queries):
    for i in range(20):
        ParamFactory(run=run, key=f"p{i}")
        RunTagFactory(run=run, key=f"t{i}")
        LatestMetricFactory(run=run, key=f"m{i}")
    selectors.run_get(user=viewer, run_uuid=run.run_uuid)  # roles cached
    # the run (with experiment and user), then params, tags and latest metrics in one UNION ALL
    with django_assert_num_queries(2):
        detail = selectors.run_detail(user=viewer, run_uuid=run.run_uuid)
        assert len(detail.params.all()) == len(detail.tags.all()) == len(detail.latest_metrics.all()) == 20
        assert detail.experiment.name and detail.user is None


@pytest.mark.parametrize("count", [1, 30])
def test_run_list_queries_do_not_grow_with_runs(viewer, experiment, count, django_assert_num_queries):
    for _ in range(count):
        run = RunFactory(experiment=experiment)
        ParamFactory(run=run)
        RunTagFactory(run=run)
        LatestMetricFactory(run=run)
    ExperimentTagFactory(experiment=experiment)
    selectors.search_runs(user=viewer)
    # the page of runs, then params, tags and latest metrics of the page in one UNION ALL
    with django_assert_num_queries(2):
        page = selectors.search_runs(user=viewer)
        for run in page.runs:
            list(run.params.all()), list(run.tags.all()), list(run.latest_metrics.all()), run.user, run.experiment_id
    assert len(page.runs) == count


def test_run_list_is_prefetched_and_visible_only(viewer, experiment, other_run, django_assert_num_queries):
    for _ in range(5):
        ParamFactory(run=RunFactory(experiment=experiment))
    RunFactory(experiment=experiment, lifecycle_stage=LifecycleStage.DELETED)
    selectors.run_list(user=viewer).count()  # roles cached
    with django_assert_num_queries(4):
        runs = list(selectors.run_list(user=viewer))
        assert all(len(run.params.all()) == 1 for run in runs)
    assert len(runs) == 5 and [r.start_time for r in runs] == sorted((r.start_time for r in runs), reverse=True)
    assert selectors.run_list(user=viewer, experiment_ids=[experiment.pk], run_view="deleted").count() == 1


def test_latest_metrics_for_runs(run, other_run):
    LatestMetricFactory(run=run, key="a", value=1.0)
    LatestMetricFactory(run=other_run, key="b", value=2.0)
    result = selectors.latest_metrics_for_runs([run, other_run])
    assert result[run.pk]["a"].value == 1.0 and result[other_run.pk]["b"].value == 2.0


def test_history_in_step_order_with_nan(editor, run):
    services.log_batch(
        user=editor,
        run=run,
        metrics=[
            {"key": "loss", "value": 2.0, "step": 2, "timestamp": 5},
            {"key": "loss", "value": math.nan, "step": 1, "timestamp": 5},
            {"key": "loss", "value": 1.0, "step": 0, "timestamp": 5},
            {"key": "other", "value": 9.0, "step": 0, "timestamp": 5},
        ],
    )
    history = selectors.metric_history(run=run, key="loss")
    assert [p["step"] for p in history["points"]] == [0, 1, 2]
    assert math.isnan(history["points"][1]["value"]) and history["next_page_token"] is None
    assert selectors.encode_points(history["points"])[1]["value"] == "NaN"


def test_history_pages_with_tokens_and_since_step(editor, run):
    log_steps(editor, run, steps=range(25))
    first = selectors.metric_history(run=run, key="loss", page_size=10)
    second = selectors.metric_history(run=run, key="loss", page_size=10, page_token=first["next_page_token"])
    third = selectors.metric_history(run=run, key="loss", page_size=10, page_token=second["next_page_token"])
    steps = [p["step"] for page in (first, second, third) for p in page["points"]]
    assert steps == list(range(25)) and third["next_page_token"] is None
    assert [p["step"] for p in selectors.metric_history(run=run, key="loss", since_step=21)["points"]] == [22, 23, 24]


def test_history_pages_do_not_split_repeated_steps(editor, run):
    services.log_batch(
        user=editor, run=run, metrics=[{"key": "k", "value": float(i), "step": 0, "timestamp": i} for i in range(5)]
    )
    first = selectors.metric_history(run=run, key="k", page_size=3)
    second = selectors.metric_history(run=run, key="k", page_size=3, page_token=first["next_page_token"])
    assert len(first["points"]) + len(second["points"]) == 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"page_token": "garbage"},
        {"page_size": 0},
        {"page_size": 10**6},
        {"max_points": 2},
        {"max_points": 10**6},
        {"since_step": "1"},
    ],
)
def test_history_bad_arguments(run, kwargs):
    with pytest.raises(InvalidInput):
        selectors.metric_history(run=run, key="loss", **kwargs)


def test_history_downsampled_keeps_first_last_and_extremes(editor, run):
    values = {s: math.sin(s / 50) for s in range(2000)}
    values[1234] = 50.0
    values[777] = -50.0
    log_steps(editor, run, steps=range(1000), value=lambda s: values[s])
    log_steps(editor, run, steps=range(1000, 2000), value=lambda s: values[s])
    history = selectors.metric_history(run=run, key="loss", max_points=100)
    steps = [p["step"] for p in history["points"]]
    assert len(steps) <= 100 and steps == sorted(steps)
    assert {0, 1999, 1234, 777} <= set(steps)


def test_bulk_history_for_runs_and_keys_in_one_query(editor, experiment, django_assert_num_queries):
    runs = [RunFactory(experiment=experiment) for _ in range(3)]
    for run in runs:
        log_steps(editor, run, key="loss", steps=range(5))
        log_steps(editor, run, key="acc", steps=range(3))
    with django_assert_num_queries(1):
        series = selectors.metric_history_bulk(runs=runs, keys=["loss", "acc", "missing"])
    assert [(s["run_id"], s["key"], len(s["points"])) for s in series] == [
        item
        for run in runs
        for item in [(run.run_uuid, "loss", 5), (run.run_uuid, "acc", 3), (run.run_uuid, "missing", 0)]
    ]


def test_bulk_history_downsamples_and_limits_series(editor, experiment, run):
    log_steps(editor, run, steps=range(500))
    (series,) = selectors.metric_history_bulk(runs=[run], keys=["loss"], max_points=50)
    assert len(series["points"]) <= 50
    assert selectors.metric_history_bulk(runs=[], keys=["loss"]) == []
    with pytest.raises(InvalidInput):
        selectors.metric_history_bulk(runs=[run] * 201, keys=["loss"])
    with pytest.raises(InvalidInput):
        selectors.metric_history_bulk(runs=[run], keys=["loss"], max_points=1)


def test_runs_for_compare_checks_each_run(viewer, run, other_run):
    assert selectors.runs_for_compare(user=viewer, run_uuids=[run.run_uuid, run.run_uuid]) == [run]
    with pytest.raises(NotFound):
        selectors.runs_for_compare(user=viewer, run_uuids=[run.run_uuid, other_run.run_uuid])
    with pytest.raises(NotFound):
        selectors.runs_for_compare(user=viewer, run_uuids=["f" * 32])
    with pytest.raises(NotFound):
        selectors.runs_for_compare(user=viewer, run_uuids=["../x"])


def test_run_events_since_returns_what_was_missed(editor, run):
    log_steps(editor, run, steps=range(3))  # seq 2
    services.set_tag(user=editor, run=run, key="t", value="v")  # seq 3
    log_steps(editor, run, steps=range(3, 5), value=lambda s: math.inf)  # seq 4
    caught_up = selectors.run_events_since(run, 2)
    assert caught_up["seq"] == 4 and caught_up["truncated"] is False
    assert caught_up["metrics"] == {"loss": [[3, 1003, "Infinity"], [4, 1004, "Infinity"]]}
    assert caught_up["run"]["status"] == "RUNNING"
    assert caught_up["tags"] == {"t": "v"} and caught_up["params"] == {}
    assert selectors.run_events_since(run, 0)["metrics"]["loss"][0] == [0, 1000, 0.0]
    up_to_date = selectors.run_events_since(run, 4)
    assert up_to_date["metrics"] == {} and "tags" not in up_to_date and "params" not in up_to_date


def test_run_events_since_carries_params_and_tags_in_the_last_chunk_only(editor, run):
    services.log_param(user=editor, run=run, key="lr", value="0.1")  # seq 1
    log_steps(editor, run, steps=range(3))  # seq 2
    log_steps(editor, run, steps=range(3, 6))  # seq 3
    partial = selectors.run_events_since(run, 0, max_points=4)
    assert partial["truncated"] is True and "params" not in partial
    rest = selectors.run_events_since(run, partial["seq"], max_points=4)
    assert rest["params"] == {"lr": "0.1"} and rest["tags"] == {}


def test_run_events_since_truncates_at_a_whole_batch(editor, run):
    log_steps(editor, run, steps=range(3))  # seq 2
    log_steps(editor, run, steps=range(3, 6))  # seq 3
    partial = selectors.run_events_since(run, 0, max_points=4)
    assert partial["truncated"] is True and partial["seq"] == 2
    assert [p[0] for p in partial["metrics"]["loss"]] == [0, 1, 2]
    rest = selectors.run_events_since(run, partial["seq"], max_points=4)
    assert [p[0] for p in rest["metrics"]["loss"]] == [3, 4, 5] and rest["seq"] == 3


@pytest.mark.parametrize("seq", [-1, "1", True])
def test_run_events_since_rejects_bad_seq(run, seq):
    with pytest.raises(InvalidInput):
        selectors.run_events_since(run, seq)


def test_metric_factory_point_is_readable(run):
    point = MetricFactory(run=run, value=0.0, is_nan=True)
    assert math.isnan(point.float_value) and "loss" in str(point)
