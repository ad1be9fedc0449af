"""log_batch, the hot path: atomic, bulk, fixed query count, latest-metric rules, immutability, events."""

import math

import pytest
from django.db import connection

from accounts.permissions import team_roles
from experiments import selectors, services
from experiments.models import LatestMetric, Metric, Param, Run, RunTag
from experiments.tests.events import GroupListener
from experiments.tests.factories import LatestMetricFactory, ParamFactory, RunFactory
from mlplatform.errors import Forbidden, InvalidInput, NotFound
from mlplatform.events import experiment_group, run_group


def point(key="loss", value=0.5, step=0, timestamp=1000):
    return {"key": key, "value": value, "step": step, "timestamp": timestamp}


def latest(run, key="loss"):
    row = LatestMetric.objects.get(run=run, key=key)
    return (row.step, row.timestamp, row.float_value)


def test_logs_metrics_params_and_tags_and_returns_the_new_seq(editor, run):
    seq = services.log_batch(
        user=editor,
        run=run,
        metrics=[point(step=0, value=1.0), point(step=1, value=0.5)],
        params=[{"key": "lr", "value": "0.1"}],
        tags=[{"key": "model", "value": "cnn"}],
    )
    assert seq == 2 and Run.objects.get(pk=run.pk).last_seq == 2
    assert list(Metric.objects.filter(run=run).order_by("step").values_list("step", "value", "seq")) == [
        (0, 1.0, 2),
        (1, 0.5, 2),
    ]
    assert latest(run) == (1, 1000, 0.5)
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.1"}
    assert dict(RunTag.objects.filter(run=run).values_list("key", "value")) == {"model": "cnn"}


@pytest.mark.parametrize("size", [1, 1000])
def test_query_count_does_not_depend_on_batch_size(editor, run, django_assert_num_queries, size):
    services.log_param(user=editor, run=run, key="warm", value="cache roles")  # roles cached on the user
    metrics = [point(key=f"m{i % 7}", step=i, value=float(i)) for i in range(size - 2 if size > 2 else 1)]
    params = [{"key": "lr", "value": "0.1"}]
    tags = [{"key": "t", "value": "v"}]
    # savepoint, bump seq, read params, insert params, insert metrics, upsert latest, upsert tags, release
    with django_assert_num_queries(8):
        services.log_batch(user=editor, run=run, metrics=metrics, params=params, tags=tags)
    assert Metric.objects.filter(run=run).count() == len(metrics)


def test_metrics_only_batch_is_five_queries(editor, run, django_assert_num_queries):
    services.log_metric(user=editor, run=run, key="warm", value=0.0)
    with django_assert_num_queries(5):
        services.log_batch(user=editor, run=run, metrics=[point(step=i) for i in range(1000)])


@pytest.mark.parametrize("padding", [0, services.COPY_MIN_ROWS + 1])
def test_values_round_trip_exactly_through_the_bulk_insert(editor, run, padding):
    # A short INSERT for a few points; COPY (PostgreSQL) or executemany (SQLite) for more:
    # floats and int64 bounds come back bit for bit either way.
    values = [0.1, 1 / 3, 5e-324, 1.7976931348623157e308, -2.5e-300, 123456789.12345678]
    steps = [-(2**63), 2**63 - 1, 0, 1, 2, 3]
    metrics = [
        {"key": "exact", "value": v, "step": s, "timestamp": 2**62 + i}
        for i, (v, s) in enumerate(zip(values, steps, strict=True))
    ]
    metrics += [{"key": "pad", "value": math.nan, "step": i, "timestamp": 1} for i in range(padding)]
    services.log_batch(user=editor, run=run, metrics=metrics)
    rows = Metric.objects.filter(run=run, key="exact").order_by("timestamp").values_list("value", "step", "timestamp")
    assert list(rows) == [(v, s, 2**62 + i) for i, (v, s) in enumerate(zip(values, steps, strict=True))]
    assert latest(run, "exact") == (2**63 - 1, 2**62 + 1, 1 / 3)


def test_latest_metric_is_highest_step_then_timestamp_then_value(editor, run):
    services.log_batch(user=editor, run=run, metrics=[point(step=5, timestamp=10, value=1.0)])
    services.log_batch(user=editor, run=run, metrics=[point(step=4, timestamp=99, value=9.0)])  # lower step
    assert latest(run) == (5, 10, 1.0)
    services.log_batch(user=editor, run=run, metrics=[point(step=5, timestamp=11, value=0.0)])  # later timestamp
    assert latest(run) == (5, 11, 0.0)
    services.log_batch(user=editor, run=run, metrics=[point(step=5, timestamp=11, value=2.0)])  # larger value
    assert latest(run) == (5, 11, 2.0)
    services.log_batch(user=editor, run=run, metrics=[point(step=5, timestamp=11, value=1.0)])  # smaller: ignored
    assert latest(run) == (5, 11, 2.0)


def test_latest_metric_within_one_batch_ignores_order(editor, run):
    services.log_batch(
        user=editor,
        run=run,
        metrics=[point(step=9, value=0.1), point(step=2, value=0.9), point(key="acc", step=1, value=0.3)],
    )
    assert latest(run) == (9, 1000, 0.1)
    assert latest(run, "acc") == (1, 1000, 0.3)


def test_nan_and_infinities_are_stored_and_read_back(editor, run):
    services.log_batch(
        user=editor,
        run=run,
        metrics=[
            point(step=0, value=math.nan),
            point(step=1, value="Infinity"),
            point(step=2, value=-math.inf),
            point(step=3, value="NaN"),
        ],
    )
    values = [m.float_value for m in Metric.objects.filter(run=run).order_by("step")]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf and math.isnan(values[3])
    assert math.isnan(latest(run)[2])


def test_relogging_the_same_param_is_fine_a_different_value_is_a_400_naming_the_key(editor, run):
    services.log_param(user=editor, run=run, key="lr", value="0.1")
    services.log_param(user=editor, run=run, key="lr", value="0.1")
    with pytest.raises(InvalidInput, match="'lr'"):
        services.log_batch(
            user=editor,
            run=run,
            metrics=[point()],
            params=[{"key": "lr", "value": "0.2"}, {"key": "new", "value": "1"}],
        )
    assert dict(Param.objects.filter(run=run).values_list("key", "value")) == {"lr": "0.1"}
    assert not Metric.objects.filter(run=run).exists()
    assert Run.objects.get(pk=run.pk).last_seq == 3


@pytest.mark.parametrize(
    "batch",
    [
        {"metrics": [point()] * 1001},
        {"params": [{"key": f"p{i}", "value": "1"} for i in range(101)]},
        {"tags": [{"key": f"t{i}", "value": "1"} for i in range(101)]},
        {"metrics": [point(step=i) for i in range(950)], "tags": [{"key": f"t{i}", "value": "1"} for i in range(51)]},
        {"metrics": [point(), point(value="nan")]},
        {"metrics": [point(), point(key="k" * 251)]},
        {"params": [{"key": "p", "value": "v" * 6001}]},
        {"tags": [{"key": "t", "value": "v" * 8001}]},
        {"metrics": [point(), {"key": "loss", "value": 1, "step": "NaN"}]},
        {"metrics": "not a list"},
        {"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]},
    ],
)
def test_bad_batches_write_nothing(editor, run, batch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(InvalidInput):
        services.log_batch(user=editor, run=run, **batch)
    assert not callbacks
    assert not Metric.objects.exists() and not LatestMetric.objects.exists()
    assert not Param.objects.exists() and not RunTag.objects.exists()
    assert Run.objects.get(pk=run.pk).last_seq == 1


def test_logging_to_a_deleted_run_is_a_400(editor, run):
    Run.objects.filter(pk=run.pk).update(lifecycle_stage="deleted")
    with pytest.raises(InvalidInput, match="deleted"):
        services.log_metric(user=editor, run=run, key="loss", value=1.0)
    assert not Metric.objects.exists()


def test_viewer_and_outsider_cannot_log(viewer, outsider, run):
    with pytest.raises(Forbidden):
        services.log_metric(user=viewer, run=run, key="loss", value=1.0)
    with pytest.raises(NotFound):
        services.log_metric(user=outsider, run=run, key="loss", value=1.0)
    assert not Metric.objects.exists()


def test_one_event_per_batch_to_run_and_experiment(editor, run, django_capture_on_commit_callbacks):
    run_listener = GroupListener(run_group(run.run_uuid))
    experiment_listener = GroupListener(experiment_group(run.experiment_id))
    with django_capture_on_commit_callbacks(execute=True):
        services.log_batch(
            user=editor,
            run=run,
            metrics=[point(step=0, value=1.0), point(step=1, value=math.nan), point(key="acc", step=1, value=0.5)],
            params=[{"key": "lr", "value": "0.1"}],
        )
    (full,) = run_listener.messages()
    assert full == {
        "type": "run.event",
        "v": 1,
        "run_id": run.run_uuid,
        "experiment_id": run.experiment_id,
        "seq": 2,
        "kind": "metrics",
        "metrics": {"loss": [[0, 1000, 1.0], [1, 1000, "NaN"]], "acc": [[1, 1000, 0.5]]},
        "params": {"lr": "0.1"},
    }
    (compact,) = experiment_listener.messages()
    assert compact["latest"] == {"loss": [1, 1000, "NaN"], "acc": [1, 1000, 0.5]} and "metrics" not in compact


def test_params_only_and_tags_only_batches_have_their_kind(editor, run, django_capture_on_commit_callbacks):
    listener = GroupListener(run_group(run.run_uuid))
    with django_capture_on_commit_callbacks(execute=True):
        services.log_param(user=editor, run=run, key="a", value="1")
        services.set_tag(user=editor, run=run, key="b", value="2")
    assert [m["kind"] for m in listener.messages()] == ["params", "tags"]


def test_existing_latest_metric_rows_from_factories_are_respected(editor, run):
    LatestMetricFactory(run=run, key="loss", step=100, value=3.0)
    ParamFactory(run=run, key="fixed", value="a")
    services.log_batch(user=editor, run=run, metrics=[point(step=1)], params=[{"key": "fixed", "value": "a"}])
    assert latest(run) == (100, 1_700_000_000_000, 3.0)


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800", "x\udfffy"], ids=["nul", "high-surrogate", "low-surrogate"])
@pytest.mark.parametrize(
    ("batch", "field"),
    [
        (lambda bad: {"params": [{"key": "lr", "value": bad}]}, "params[0].value"),
        (lambda bad: {"tags": [{"key": "ok", "value": "v"}, {"key": "t", "value": bad}]}, "tags[1].value"),
        (lambda bad: {"params": [{"key": f"k{bad}", "value": "v"}]}, "params[0].key"),
        (lambda bad: {"metrics": [point(key=f"m{bad}")]}, "metrics[0].key"),
    ],
    ids=["param-value", "tag-value", "param-key", "metric-key"],
)
def test_unstorable_characters_are_refused_naming_the_field(editor, run, bad, batch, field):
    with pytest.raises(InvalidInput) as info:
        services.log_batch(user=editor, run=run, **batch(bad))
    assert info.value.message.startswith(f"{field}: contains ")
    assert "cannot be stored" in info.value.message
    assert not Param.objects.exists() and not RunTag.objects.exists() and not Metric.objects.exists()


def test_experiment_tags_refuse_unstorable_characters(editor, run):
    with pytest.raises(InvalidInput, match="NUL character"):
        services.experiment_set_tag(user=editor, experiment=run.experiment, key="note", value="a\x00")
    with pytest.raises(InvalidInput, match="unpaired surrogate"):
        services.experiment_set_tag(user=editor, experiment=run.experiment, key="note\udc00", value="a")


@pytest.mark.parametrize("bad", ["a\x00b", "x\udfffy"], ids=["nul", "surrogate"])
def test_names_and_descriptions_refuse_unstorable_characters(editor, run, bad):
    experiment = run.experiment
    calls = [
        lambda: services.experiment_create(user=editor, name=bad),
        lambda: services.experiment_create(user=editor, name="fine", description=bad),
        lambda: services.experiment_update(user=editor, experiment=experiment, name=bad),
        lambda: services.experiment_update(user=editor, experiment=experiment, description=bad),
        lambda: services.run_update(user=editor, run=run, name=bad),
    ]
    for call in calls:
        with pytest.raises(InvalidInput, match="cannot be stored"):
            call()
    experiment.refresh_from_db()
    run.refresh_from_db()
    assert bad not in (experiment.name, experiment.description, run.name)


def test_a_few_metric_points_are_one_statement_on_postgresql(editor, run, django_assert_num_queries):
    services.log_metric(user=editor, run=run, key="warm", value=0.0)  # roles cached on the user
    # PostgreSQL: bump + history + latest in one statement (no savepoint); elsewhere the general path.
    expected = 1 if connection.vendor == "postgresql" else 5
    with django_assert_num_queries(expected):
        seq = services.log_batch(user=editor, run=run, metrics=[point(step=i) for i in range(services.COPY_MIN_ROWS)])
    assert seq == run.last_seq == Run.objects.get(pk=run.pk).last_seq == 3
    assert Metric.objects.filter(run=run, key="loss", seq=3).count() == services.COPY_MIN_ROWS
    assert latest(run) == (services.COPY_MIN_ROWS - 1, 1000, 0.5)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"lifecycle_stage": "deleted"}, InvalidInput, "deleted"),
        ({"locked": True, "status": "FINISHED"}, InvalidInput, "locked"),
    ],
)
def test_one_point_to_a_deleted_or_locked_run_writes_nothing(editor, run, change, error, message):
    Run.objects.filter(pk=run.pk).update(**change)
    with pytest.raises(error, match=message):
        services.log_metric(user=editor, run=run, key="loss", value=1.0)
    assert not Metric.objects.exists() and not LatestMetric.objects.exists()
    assert Run.objects.get(pk=run.pk).last_seq == 1


def test_one_point_to_a_run_deleted_for_good_is_a_404(editor, run):
    ref = selectors.run_for_logging(user=editor, run_uuid=run.run_uuid)
    Run.objects.filter(pk=run.pk).delete()
    with pytest.raises(NotFound):
        services.log_metric(user=editor, run=ref, key="loss", value=1.0)
    assert not Metric.objects.exists()


def test_the_logging_lookup_loads_the_identity_and_defers_the_rest(editor, run, django_assert_num_queries):
    other = RunFactory()  # its team and experiment ids differ from run's, so a mix-up would show
    assert (other.team_id, other.experiment_id) != (run.team_id, run.experiment_id)
    team_roles(editor)  # roles cached on the user, as after the first request
    with django_assert_num_queries(1):
        ref = selectors.run_for_logging(user=editor, run_uuid=run.run_uuid)
    assert (ref.pk, ref.run_uuid, ref.team_id, ref.experiment_id) == (
        run.pk,
        run.run_uuid,
        run.team_id,
        run.experiment_id,
    )
    assert ref.get_deferred_fields() >= {"name", "status", "lifecycle_stage"}
    assert ref.name == run.name  # loaded on demand


@pytest.mark.parametrize("run_uuid", ["0" * 32, "not-a-run-id", 42])
def test_the_logging_lookup_is_a_404_for_unknown_ids(editor, run_uuid):
    with pytest.raises(NotFound):
        selectors.run_for_logging(user=editor, run_uuid=run_uuid)


def test_the_logging_lookup_checks_read_access(outsider, run):
    with pytest.raises(NotFound):
        selectors.run_for_logging(user=outsider, run_uuid=run.run_uuid)
