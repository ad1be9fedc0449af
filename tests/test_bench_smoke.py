"""The benchmark harness runs every workload, at tiny size, against a real daphne server (no timings asserted)."""

from __future__ import annotations

import json

import pytest

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory
from bench import report
from bench.driver import BenchError, Client, Stats
from bench.servers import cpu_seconds_of_tree, memory_of_tree
from bench.workloads import MODES, WORKLOADS, Bench, Progress, Sizes, Target, run_workloads

pytestmark = [pytest.mark.server]


@pytest.fixture
def bench_target(daphne_server, transactional_db) -> Target:
    user = UserFactory()
    _token, plaintext = api_token_create(user=user, name="bench-smoke")
    return Target(
        name="ours",
        url=daphne_server.url,
        headers={"Authorization": f"Bearer {plaintext}"},
        memory=lambda: memory_of_tree(daphne_server.process.pid),
        cpu=lambda: cpu_seconds_of_tree(daphne_server.process.pid),
        native=True,
    )


def test_every_workload_runs_and_reports_both_connection_modes(bench_target):
    bench = Bench(bench_target, Sizes.tiny(), progress=Progress(quiet=True))

    rows = run_workloads(bench)

    assert bench.errors == {}
    assert set(bench.details["workload_seconds"]) == set(WORKLOADS)
    ids = {row.id for row in rows}
    assert set(report.TARGETS) <= ids
    for row in rows:
        assert row.best is not None and row.best >= 0, row
        if not row.id.startswith("memory."):
            assert set(row.values) == set(MODES), row
    assert bench.details["search"]["matches_on_first_page"] >= 1
    assert bench.details["memory"]["after_ingest"]["rss_mib"] > 0
    assert {"log_metric.cpu", "get_run.cpu", "search.cpu", "ingest.cpu_per_1000"} <= ids


def test_result_renders_as_tables_and_json(bench_target):
    bench = Bench(bench_target, Sizes.tiny(), modes=("keepalive",), progress=Progress(quiet=True))
    rows = run_workloads(bench, ["log_metric", "search"])
    result = {
        "target": "ours",
        "backend": "sqlite",
        "measurements": [row.as_dict() for row in rows],
        "details": bench.details,
    }
    other = {**json.loads(json.dumps(result)), "target": "mlflow"}

    single = report.single_table(result)
    side_by_side = report.compare_table([result, other])

    assert "log-metric p50" in single and "(<= 2)" in single
    assert "ours vs mlflow" in side_by_side and "1.0x" in side_by_side


def test_a_failing_workload_is_recorded_when_keep_going(bench_target):
    broken = Target(name="ours", url=bench_target.url, headers={"Authorization": "Bearer mlp_invalid0_x"}, native=True)
    bench = Bench(broken, Sizes.tiny(), progress=Progress(quiet=True))

    rows = run_workloads(bench, ["log_metric"], keep_going=True)

    assert rows == []
    assert "401" in bench.errors["log_metric"]
    with pytest.raises(BenchError):
        run_workloads(Bench(broken, Sizes.tiny(), progress=Progress(quiet=True)), ["log_metric"])


def test_driver_refuses_addresses_off_this_machine():
    with pytest.raises(BenchError):
        Client("http://10.0.0.1:8000")


def test_stats_percentiles_use_nearest_rank():
    stats = Stats([i / 1000 for i in range(1, 101)])

    assert stats.percentile(50) == pytest.approx(50.0)
    assert stats.percentile(99) == pytest.approx(99.0)
    assert stats.summary()["n"] == 100
    assert Stats().percentile(99) == 0.0


def test_report_finds_the_newest_result_tagged_or_not(tmp_path):
    for name in (
        "20261125-100000-mlflow-pg.json",
        "20261125-110000-mlflow-pg-final.json",
        "20261125-120000-mlflow-sqlite.json",
        "20261125-090000-ours-pg.json",
    ):
        (tmp_path / name).write_text("{}")
    assert report.latest("mlflow", "pg", tmp_path).name == "20261125-110000-mlflow-pg-final.json"
    assert report.latest("ours", "pg", tmp_path).name == "20261125-090000-ours-pg.json"
    assert report.latest("fasttrackml", "pg", tmp_path) is None


def test_downsample_bench_prints_a_table_and_writes_json(tmp_path, monkeypatch, capsys):
    from bench import downsample

    monkeypatch.setattr(downsample, "RESULTS_DIR", tmp_path)
    monkeypatch.setattr(downsample, "MAX_POINTS", (1_000,))
    assert downsample.main(["--repeat", "1", "--baseline", str(downsample.ROOT / "experiments" / "downsample.py")]) == 0
    out = capsys.readouterr().out
    assert "baseline ms" in out and "current ms" in out
    (written,) = tmp_path.glob("*-downsample.json")
    rows = json.loads(written.read_text())["rows"]
    assert len(rows) == 4 and all(row["current_ms"] > 0 and row["baseline_ms"] > 0 for row in rows)
