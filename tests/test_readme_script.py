"""The short native-API script printed in the README runs, unchanged, against a real daphne server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory
from experiments.models import Metric, Param, Run

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = "<!-- readme-native-api-script"


def readme_script() -> str:
    """The fenced Python block that follows the README's marker comment."""
    text = README.read_text()
    found = re.search(re.escape(MARKER) + r".*?-->\s*```python\n(.*?)```", text, re.S)
    assert found, "the README lost its native-API script (or its marker)"
    return found.group(1)


def test_the_readme_script_is_short():
    assert len(readme_script().strip().splitlines()) <= 30


@pytest.mark.server
def test_the_readme_script_logs_and_reads_back_a_run(transactional_db, daphne_server, tmp_path):
    user = UserFactory()
    _, token = api_token_create(user=user, name="readme")
    script = tmp_path / "readme_script.py"
    script.write_text(readme_script())
    env = {**os.environ, "MLPLATFORM_URL": daphne_server.url.rstrip("/"), "MLPLATFORM_TOKEN": token}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FINISHED 10 params, ['accuracy', 'loss', 'lr'] 1000 loss points"
    run = Run.objects.get()
    assert (run.status, run.user) == ("FINISHED", user)
    assert Param.objects.filter(run=run).count() == 10
    assert Metric.objects.filter(run=run).count() == 3000
