"""A bounded soak (60 s): mixed traffic through a real daphne; zero 5xx, zero lost points, flat memory.

The driver is ``tests/resilience/soak.py`` (``make soak`` runs it for 10 minutes). It uses the configured
database (the test database) and Redis when REDIS_URL is set.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.resilience.soak import Soak, print_report
from tests.server import start_daphne

pytestmark = [pytest.mark.server]

DURATION = float(os.environ.get("SOAK_SECONDS", "60"))


@pytest.fixture
def soak_server(live_server_env, live_workspace, tmp_path):
    """A daphne of its own, so its memory is measured alone."""
    server = start_daphne(live_server_env, tmp_path / "daphne.log")
    yield server
    server.stop()


def test_mixed_traffic_soak(soak_server, live_workspace, capsys) -> None:
    report = Soak(soak_server.url, live_workspace.token, live_workspace.experiment.pk).run(
        DURATION, soak_server.process.pid
    )
    with capsys.disabled():
        print_report(report)
    summary = json.dumps({k: v for k, v in report.items() if k != "by_kind"})
    assert report["server_errors"] == 0, report["first_errors"]
    assert report["points_sent"] > 0 and report["points_lost"] == 0, summary
    assert report["points_missed_by_websocket"] == 0, summary
    assert report["rss_growth"] is not None and report["rss_growth"] <= 0.20, summary
    assert all(row["p99_ms"] < 5000 for row in report["by_kind"].values()), report["by_kind"]
