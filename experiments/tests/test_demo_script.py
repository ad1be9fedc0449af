"""bench/demo_native_api.py works end to end against a real daphne server."""

import pytest

from accounts.services import api_token_create
from accounts.tests.factories import UserFactory
from bench import demo_native_api
from experiments.models import Metric, Param, Run


@pytest.mark.server
def test_demo_logs_and_reads_back_a_run(transactional_db, daphne_server, capsys):
    user = UserFactory()
    _, token = api_token_create(user=user, name="demo")
    assert demo_native_api.main(["demo", daphne_server.url, token]) == 0
    assert "result      OK" in capsys.readouterr().out
    run = Run.objects.get()
    assert run.status == "FINISHED" and Param.objects.filter(run=run).count() == 10
    assert Metric.objects.filter(run=run).count() == 3000


def test_demo_without_a_token_explains_usage(monkeypatch, capsys):
    monkeypatch.delenv("MLPLATFORM_TOKEN", raising=False)
    assert demo_native_api.main(["demo"]) == 2
    assert "usage" in capsys.readouterr().err
