"""Run detail, artifact browsing/preview/download and compare pages."""

from __future__ import annotations

import io
import json
import re

import pytest

from experiments.artifacts import artifact_write
from experiments.models import Metric
from experiments.tests.factories import ExperimentFactory, LatestMetricFactory, ParamFactory, RunFactory, RunTagFactory

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def json_block(response, element_id: str) -> dict:
    pattern = rf'<script id="{element_id}" type="application/json">(.*?)</script>'
    return json.loads(re.search(pattern, response.content.decode(), re.S).group(1))


def log_history(run, key: str, values: list[float]) -> None:
    Metric.objects.bulk_create(
        Metric(run=run, key=key, value=0 if v != v else v, is_nan=v != v, timestamp=1_700_000_000_000 + i, step=i)
        for i, v in enumerate(values)
    )
    last = values[-1]
    LatestMetricFactory(run=run, key=key, value=0 if last != last else last, is_nan=last != last, step=len(values) - 1)


@pytest.fixture
def store(run, owner):
    """Write an artifact of ``run`` as its team owner."""

    def write(path: str, content: bytes) -> None:
        artifact_write(user=owner, run=run, path=path, stream=io.BytesIO(content))

    return write


# Run detail ------------------------------------------------------------------------------------


def test_run_detail_shows_params_tags_and_metrics(client, viewer, run):
    ParamFactory(run=run, key="lr", value="0.01")
    RunTagFactory(run=run, key="owner", value="ana")
    RunTagFactory(run=run, key="mlflow.user", value="system")
    log_history(run, "loss", [1.0, 0.5, 0.25])
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert ">lr</td>" in body and ">0.01</td>" in body
    assert ">owner</td>" in body
    assert "System tags (1)" in body
    data = json_block(response, "run-chart-data")
    assert data["series"]["loss"] == [
        [0, 1_700_000_000_000, 1.0],
        [1, 1_700_000_000_001, 0.5],
        [2, 1_700_000_000_002, 0.25],
    ]
    assert data["live"] is True
    assert data["since"] == run.last_seq
    assert data["ws_path"] == f"/ws/runs/{run.run_uuid}/"


def test_run_detail_downsamples_long_histories(client, viewer, run):
    log_history(run, "loss", [float(i % 97) for i in range(5000)])
    client.force_login(viewer)
    series = json_block(client.get(f"/runs/{run.run_uuid}/"), "run-chart-data")["series"]["loss"]
    assert len(series) <= 1000
    assert series[0][0] == 0 and series[-1][0] == 4999


def test_run_detail_sends_nan_as_a_string(client, viewer, run):
    log_history(run, "loss", [1.0, float("nan")])
    client.force_login(viewer)
    series = json_block(client.get(f"/runs/{run.run_uuid}/"), "run-chart-data")["series"]["loss"]
    assert series[1][2] == "NaN"


def test_finished_run_is_not_live(client, viewer, experiment):
    done = RunFactory(experiment=experiment, status="FINISHED", end_time=1_700_000_100_000)
    client.force_login(viewer)
    response = client.get(f"/runs/{done.run_uuid}/")
    assert json_block(response, "run-chart-data")["live"] is False
    assert b"This run logged no metrics." in response.content


def test_run_detail_for_an_outsider_is_a_404(client, outsider, run):
    client.force_login(outsider)
    response = client.get(f"/runs/{run.run_uuid}/")
    assert response.status_code == 404
    assert b"Run not found." in response.content


@pytest.mark.parametrize("run_uuid", ["nothex", "0" * 32])
def test_run_detail_of_an_unknown_run_is_a_404(client, viewer, run_uuid):
    client.force_login(viewer)
    assert client.get(f"/runs/{run_uuid}/").status_code == 404


def test_deleted_run_says_so(client, viewer, experiment):
    gone = RunFactory(experiment=experiment, lifecycle_stage="deleted")
    client.force_login(viewer)
    assert b"This run is deleted" in client.get(f"/runs/{gone.run_uuid}/").content


def test_run_detail_query_count_is_bounded(client, viewer, run, django_assert_max_num_queries):
    for key in ("a", "b", "c"):
        log_history(run, key, [1.0, 2.0])
    client.force_login(viewer)
    with django_assert_max_num_queries(14):
        assert client.get(f"/runs/{run.run_uuid}/").status_code == 200


# Artifacts -------------------------------------------------------------------------------------


def test_run_detail_lists_root_artifacts(client, viewer, run, store):
    store("model/MLmodel", b"flavors: {}")
    store("notes.txt", b"hello")
    client.force_login(viewer)
    body = client.get(f"/runs/{run.run_uuid}/").content.decode()
    assert "?path=model" in body
    assert "?file=notes.txt" in body


def test_artifact_folder_browse(client, viewer, run, store):
    store("model/MLmodel", b"flavors: {}")
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/artifacts/", {"path": "model"})
    assert response.status_code == 200
    assert [entry["path"] for entry in response.context["entries"]] == ["model/MLmodel"]


def test_artifact_text_preview(client, viewer, run, store):
    store("logs/train.log", b"epoch 1 <loss> 0.5\n")
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/artifacts/", {"file": "logs/train.log"})
    assert response.status_code == 200
    assert b"epoch 1 &lt;loss&gt; 0.5" in response.content


def test_artifact_image_preview_points_at_the_raw_file(client, viewer, run, store):
    store("plots/cm.png", PNG)
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/artifacts/", {"file": "plots/cm.png"})
    assert f'src="/runs/{run.run_uuid}/artifacts/raw/plots/cm.png"'.encode() in response.content


def test_artifact_binary_has_no_preview(client, viewer, run, store):
    store("weights.bin", b"\x00\x01\x02")
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/artifacts/", {"file": "weights.bin"})
    assert b"No preview for this file type" in response.content


def test_artifact_image_is_served_inline(client, viewer, run, store):
    store("plots/cm.png", PNG)
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/artifacts/raw/plots/cm.png")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline")
    assert b"".join(response.streaming_content) == PNG


def test_artifact_html_always_downloads_in_a_sandbox(client, viewer, run, store):
    store("report.html", b"<script>alert(1)</script>")
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/artifacts/raw/report.html")
    assert response["Content-Disposition"].startswith("attachment")
    assert "sandbox" in response["Content-Security-Policy"]


def test_artifact_download_flag_forces_attachment(client, viewer, run, store):
    store("plots/cm.png", PNG)
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/artifacts/raw/plots/cm.png", {"download": "1"})
    assert response["Content-Disposition"].startswith("attachment")


def test_missing_artifact_is_a_404(client, viewer, run):
    client.force_login(viewer)
    assert client.get(f"/runs/{run.run_uuid}/artifacts/raw/nope.txt").status_code == 404
    assert client.get(f"/runs/{run.run_uuid}/artifacts/", {"file": "nope.txt"}).status_code == 404


def test_artifact_path_traversal_is_a_400_page(client, viewer, run):
    client.force_login(viewer)
    response = client.get(f"/runs/{run.run_uuid}/artifacts/", {"path": "../../etc"})
    assert response.status_code == 400
    assert b"must not contain" in response.content


def test_artifacts_of_another_team_are_a_404(client, outsider, run, store):
    store("notes.txt", b"secret")
    client.force_login(outsider)
    assert client.get(f"/runs/{run.run_uuid}/artifacts/").status_code == 404
    assert client.get(f"/runs/{run.run_uuid}/artifacts/raw/notes.txt").status_code == 404


# Compare ---------------------------------------------------------------------------------------


def test_compare_needs_two_runs(client, viewer, run):
    client.force_login(viewer)
    response = client.get("/compare/", {"runs": run.run_uuid})
    assert response.status_code == 200
    assert b"Pick at least two runs" in response.content


def test_compare_highlights_differences_and_overlays_curves(client, viewer, experiment):
    first, second = RunFactory(experiment=experiment), RunFactory(experiment=experiment)
    ParamFactory(run=first, key="lr", value="0.1")
    ParamFactory(run=second, key="lr", value="0.01")
    ParamFactory(run=first, key="seed", value="1")
    ParamFactory(run=second, key="seed", value="1")
    log_history(first, "loss", [1.0, 0.5])
    log_history(second, "loss", [1.0, 0.7])
    client.force_login(viewer)
    response = client.get("/compare/", {"runs": [first.run_uuid, second.run_uuid]})
    assert response.status_code == 200
    rows = {row["key"]: row for row in response.context["param_rows"]}
    assert rows["lr"]["differs"] is True and rows["seed"]["differs"] is False
    assert rows["lr"]["cells"] == ["0.1", "0.01"]
    series = json_block(response, "compare-chart-data")["series"]["loss"]
    assert series[first.run_uuid][-1][2] == 0.5
    assert series[second.run_uuid][-1][2] == 0.7


def test_compare_accepts_comma_separated_ids(client, viewer, experiment):
    first, second = RunFactory(experiment=experiment), RunFactory(experiment=experiment)
    client.force_login(viewer)
    response = client.get("/compare/", {"runs": f"{first.run_uuid},{second.run_uuid}"})
    assert [run.run_uuid for run in response.context["runs"]] == [first.run_uuid, second.run_uuid]


def test_compare_marks_missing_values(client, viewer, experiment):
    first, second = RunFactory(experiment=experiment), RunFactory(experiment=experiment)
    ParamFactory(run=first, key="only_first", value="x")
    client.force_login(viewer)
    response = client.get("/compare/", {"runs": [first.run_uuid, second.run_uuid]})
    assert response.context["param_rows"][0]["cells"] == ["x", "—"]


def test_compare_with_a_run_of_another_team_is_a_404(client, viewer, run, other_run):
    client.force_login(viewer)
    assert client.get("/compare/", {"runs": [run.run_uuid, other_run.run_uuid]}).status_code == 404


def test_compare_across_experiments_of_the_team(client, viewer, team, run):
    elsewhere = RunFactory(experiment=ExperimentFactory(team=team))
    client.force_login(viewer)
    assert client.get("/compare/", {"runs": [run.run_uuid, elsewhere.run_uuid]}).status_code == 200
