"""Native API: metric history (one run and key, paged or downsampled; many runs and keys)."""

import pytest

from experiments import services
from experiments.tests.api import assert_error, url
from experiments.tests.factories import RunFactory


def log(user, run, key="loss", steps=range(10)):
    services.log_batch(
        user=user, run=run, metrics=[{"key": key, "value": float(s), "step": s, "timestamp": 100 + s} for s in steps]
    )


def test_history_pages_in_step_order(client_for, editor, run):
    log(editor, run, steps=reversed(range(25)))
    client = client_for(editor)
    first = client.get(url("run-metric-history", run_uuid=run.run_uuid, key="loss"), {"page_size": 20}).json()
    assert [p["step"] for p in first["points"]] == list(range(20)) and first["next_page_token"]
    second = client.get(first["next"]).json()
    assert [p["step"] for p in second["points"]] == list(range(20, 25)) and second["next"] is None
    assert first["points"][0] == {"step": 0, "timestamp": 100, "value": 0.0}


def test_history_since_step_and_keys_with_slashes(client_for, editor, run):
    log(editor, run, key="train/loss", steps=range(5))
    response = client_for(editor).get(
        url("run-metric-history", run_uuid=run.run_uuid, key="train/loss"), {"since_step": 2}
    )
    assert response.status_code == 200 and [p["step"] for p in response.json()["points"]] == [3, 4]


def test_history_downsampled(client_for, editor, run):
    log(editor, run, steps=range(1000))
    response = client_for(editor).get(url("run-metric-history", run_uuid=run.run_uuid, key="loss"), {"max_points": 50})
    points = response.json()["points"]
    assert len(points) <= 50 and points[0]["step"] == 0 and points[-1]["step"] == 999


def test_history_downsampled_with_values_near_the_float64_limit(client_for, editor, run):
    # Was a 500: the triangle areas overflowed to NaN and the downsampler lost a bucket.
    metrics = [{"key": "big", "value": 1.7e308 * (-1) ** s, "step": s, "timestamp": 1} for s in range(100)]
    services.log_batch(user=editor, run=run, metrics=metrics)
    response = client_for(editor).get(url("run-metric-history", run_uuid=run.run_uuid, key="big"), {"max_points": 10})
    assert response.status_code == 200
    points = response.json()["points"]
    assert len(points) <= 10 and points[0] == {"step": 0, "timestamp": 1, "value": 1.7e308}
    assert {p["value"] for p in points} == {1.7e308, -1.7e308}


def test_history_of_unknown_key_is_empty(client_for, viewer, run):
    response = client_for(viewer).get(url("run-metric-history", run_uuid=run.run_uuid, key="missing"))
    assert response.status_code == 200 and response.json()["points"] == []


@pytest.mark.parametrize(
    "params", [{"max_points": 2}, {"max_points": "x"}, {"page_size": 0}, {"since_step": "a"}, {"page_token": "zz"}]
)
def test_history_bad_input_is_400(client_for, viewer, run, params):
    assert_error(client_for(viewer).get(url("run-metric-history", run_uuid=run.run_uuid, key="loss"), params), 400)


def test_history_of_foreign_run_is_404(client_for, viewer, other_run):
    assert_error(client_for(viewer).get(url("run-metric-history", run_uuid=other_run.run_uuid, key="loss")), 404)


def test_bulk_history(client_for, editor, experiment, django_assert_max_num_queries):
    runs = [RunFactory(experiment=experiment) for _ in range(3)]
    for run in runs:
        log(editor, run, key="loss", steps=range(4))
        log(editor, run, key="acc", steps=range(2))
    client = client_for(editor)
    with django_assert_max_num_queries(3):
        response = client.get(
            url("metric-history-bulk"), {"run_id": [r.run_uuid for r in runs], "key": ["loss", "acc"], "max_points": 10}
        )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["run_id"], r["key"], len(r["points"])) for r in results] == [
        item for run in runs for item in [(run.run_uuid, "loss", 4), (run.run_uuid, "acc", 2)]
    ]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"run_id": "a" * 32}, 400),
        ({"key": "loss"}, 400),
        ({"run_id": "f" * 32, "key": "loss"}, 404),
        ({"run_id": "../../etc", "key": "loss"}, 404),
        ({"run_id": "a" * 40, "key": "loss"}, 400),
    ],
)
def test_bulk_history_bad_input(client_for, viewer, params, status):
    assert_error(client_for(viewer).get(url("metric-history-bulk"), params), status)


def test_bulk_history_with_a_foreign_run_is_404(client_for, viewer, run, other_run):
    response = client_for(viewer).get(
        url("metric-history-bulk"), {"run_id": [run.run_uuid, other_run.run_uuid], "key": "loss"}
    )
    assert_error(response, 404)


def test_bulk_history_too_many_series_is_400(client_for, viewer, experiment):
    runs = [RunFactory(experiment=experiment) for _ in range(21)]
    response = client_for(viewer).get(
        url("metric-history-bulk"), {"run_id": [r.run_uuid for r in runs], "key": [f"k{i}" for i in range(10)]}
    )
    assert_error(response, 400)
