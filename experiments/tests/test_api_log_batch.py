"""Native API: POST /runs/{id}/log-batch/ — the training loop's endpoint."""

import json
import math

import pytest

from experiments.models import LatestMetric, Metric, Param, Run, RunTag
from experiments.tests.api import assert_error, url


def post(client, run, body, **kwargs):
    if isinstance(body, str):
        return client.post(url("run-log-batch", run_uuid=run.run_uuid), body, content_type="application/json")
    return client.post(url("run-log-batch", run_uuid=run.run_uuid), body, format="json", **kwargs)


def nothing_written(run):
    return (
        not Metric.objects.exists()
        and not LatestMetric.objects.exists()
        and not Param.objects.exists()
        and not RunTag.objects.exists()
        and Run.objects.get(pk=run.pk).last_seq == 1
    )


def test_logs_a_batch_and_answers_the_seq(client_for, editor, run):
    body = {
        "metrics": [{"key": "loss", "value": 0.5, "timestamp": 10, "step": s} for s in range(3)],
        "params": [{"key": "lr", "value": "0.01"}],
        "tags": [{"key": "model", "value": "cnn"}],
    }
    response = post(client_for(editor), run, body)
    assert response.status_code == 200 and response.json() == {"seq": 2}
    assert Metric.objects.filter(run=run).count() == 3 and Param.objects.get().value == "0.01"


def test_nan_and_infinity_round_trip(client_for, editor, run):
    raw = (
        '{"metrics": [{"key": "a", "value": NaN, "timestamp": 1, "step": 0},'
        ' {"key": "b", "value": Infinity, "timestamp": 1, "step": 0},'
        ' {"key": "c", "value": -Infinity, "timestamp": 1, "step": 0},'
        ' {"key": "d", "value": "NaN", "timestamp": 1, "step": 0},'
        ' {"key": "e", "value": "-Infinity", "timestamp": 1, "step": 0}]}'
    )
    assert post(client_for(editor), run, raw).status_code == 200
    detail = client_for(editor).get(url("run-detail", run_uuid=run.run_uuid))
    assert detail.status_code == 200
    values = {key: m["value"] for key, m in detail.json()["metrics"].items()}
    assert values == {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": "NaN", "e": "-Infinity"}
    history = client_for(editor).get(url("run-metric-history", run_uuid=run.run_uuid, key="a")).json()
    assert history["points"] == [{"step": 0, "timestamp": 1, "value": "NaN"}]
    json.loads(detail.content)  # strict JSON: no bare NaN tokens in responses
    assert math.isnan(Metric.objects.get(key="a").float_value)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{"metrics": [', "JSON"),
        ("[]", "object"),
        ('"just a string"', "object"),
        ({"metrics": "loss=1"}, "metrics"),
        ({"metrics": [5]}, "metrics"),
        ({"metrics": [{"key": "loss", "value": "nan", "timestamp": 1}]}, "metrics[0].value"),
        ({"metrics": [{"key": "loss", "value": "abc", "timestamp": 1}]}, "metrics[0].value"),
        ({"metrics": [{"key": "loss", "value": 1, "timestamp": 1, "step": "NaN"}]}, "metrics[0].step"),
        ({"metrics": [{"key": "loss", "value": 1, "timestamp": "now"}]}, "metrics[0].timestamp"),
        ({"metrics": [{"value": 1, "timestamp": 1}]}, "metrics[0].key"),
        ({"metrics": [{"key": "loss", "timestamp": 1}]}, "metrics[0].value"),
        ({"metrics": [{"key": "k" * 251, "value": 1, "timestamp": 1}]}, "250"),
        ({"metrics": [{"key": "../etc/passwd", "value": 1, "timestamp": 1}]}, "metrics[0].key"),
        ({"metrics": [{"key": "/abs", "value": 1, "timestamp": 1}]}, "metrics[0].key"),
        ({"metrics": [{"key": "loss", "value": 1, "timestamp": 1}] * 1001}, "1000 metrics"),
        ({"params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}, "100 params"),
        ({"tags": [{"key": f"t{i}", "value": "1"} for i in range(101)]}, "100 tags"),
        (
            {
                "metrics": [{"key": "m", "value": 1, "timestamp": 1}] * 950,
                "params": [{"key": f"p{i}", "value": "1"} for i in range(51)],
            },
            "1000 items",
        ),
        ({"params": [{"key": "p", "value": "x" * 6001}]}, "6000"),
        ({"tags": [{"key": "t", "value": "x" * 8001}]}, "8000"),
        ({"params": [{"key": "p", "value": None}]}, "params"),
    ],
)
def test_bad_batches_are_400_with_the_envelope_and_write_nothing(client_for, editor, run, body, fragment):
    response = post(client_for(editor), run, body)
    error = assert_error(response, 400)
    assert fragment in error["message"] or fragment in json.dumps(error["details"]), error
    assert nothing_written(run)


def test_one_bad_point_rejects_the_whole_batch(client_for, editor, run):
    good = [{"key": "loss", "value": 1, "timestamp": 1, "step": s} for s in range(10)]
    response = post(client_for(editor), run, {"metrics": [*good, {"key": "loss", "value": "bad"}]})
    assert_error(response, 400)
    assert nothing_written(run)


def test_changing_a_param_is_400_naming_the_key(client_for, editor, run):
    client = client_for(editor)
    assert post(client, run, {"params": [{"key": "lr", "value": "0.1"}]}).status_code == 200
    error = assert_error(post(client, run, {"params": [{"key": "lr", "value": "0.2"}]}), 400)
    assert "'lr'" in error["message"]
    assert Param.objects.get().value == "0.1"


def test_deleted_run_is_400_unknown_run_is_404(client_for, editor, run):
    body = {"metrics": [{"key": "loss", "value": 1, "timestamp": 1}]}
    response = client_for(editor).post(url("run-log-batch", run_uuid="0" * 32), body, format="json")
    assert_error(response, 404)
    Run.objects.filter(pk=run.pk).update(lifecycle_stage="deleted")
    assert_error(post(client_for(editor), run, body), 400)
    assert not Metric.objects.exists()


def test_viewer_is_403_outsider_is_404(client_for, viewer, outsider, run):
    body = {"metrics": [{"key": "loss", "value": 1, "timestamp": 1}]}
    assert_error(post(client_for(viewer), run, body), 403)
    assert_error(post(client_for(outsider), run, body), 404)
    assert nothing_written(run)


def test_request_query_count_is_constant(client_for, editor, run, django_assert_max_num_queries):
    body = {"metrics": [{"key": f"m{i % 10}", "value": i, "timestamp": 1, "step": i} for i in range(1000)]}
    client = client_for(editor)
    with django_assert_max_num_queries(9):
        assert post(client, run, body).status_code == 200


def test_body_over_the_upload_limit_is_413_not_500(settings, client_for, editor, run):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = {"metrics": [{"key": "loss", "value": 1, "timestamp": 1, "step": s} for s in range(100)]}
    assert_error(post(client_for(editor), run, body), 413, "payload_too_large")
    assert nothing_written(run)
