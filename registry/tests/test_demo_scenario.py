"""The README's release scenario (bench/demo_registry_scenario.py) runs against a real daphne and succeeds.

It registers two versions from runs, deploys v1 to staging, promotes it to production, deploys v2, rolls
back to v1 and posts monitoring metrics that raise and resolve an alert; its own webhook receiver checks
every signature and its WebSocket subscriber sees status, metrics and alert messages. The script exits
non-zero when any of that is not seen, so this test is the issue's "done when" check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory

pytestmark = [pytest.mark.server]

ROOT = Path(__file__).resolve().parents[2]


def test_readme_release_scenario_runs_against_a_real_server(daphne_server, transactional_db):
    _token, plaintext = api_token_create(user=UserFactory(), name="demo")
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "demo_registry_scenario.py"), daphne_server.url, plaintext],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:] + "\n--- server log ---\n" + daphne_server.log_tail()
    assert "\nDone." in result.stdout
    assert "signature ok" in result.stdout and "INVALID" not in result.stdout
    assert "rolling back staging is refused: No previous version" in result.stdout
    assert "[ws d" in result.stdout and "alert    Alert raised" in result.stdout
