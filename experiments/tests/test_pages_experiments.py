"""Experiment list and runs table pages: permissions, content, filter errors, sorting, keyset paging."""

from __future__ import annotations

import json
import re

import pytest

from accounts.tests.factories import MembershipFactory
from experiments.models import LifecycleStage, Run
from experiments.pages.context import SESSION_TEAM_KEY
from experiments.tests.factories import (
    ExperimentFactory,
    LatestMetricFactory,
    ParamFactory,
    RunFactory,
    RunTagFactory,
)

pytestmark = pytest.mark.django_db


def run_ids_in(response) -> list[str]:
    return re.findall(r'data-run-id="([0-9a-f]{32})"', response.content.decode())


def live_config(response) -> dict:
    match = re.search(
        r'<script id="runs-live-config" type="application/json">(.*?)</script>', response.content.decode()
    )
    return json.loads(match.group(1))


# Experiment list -------------------------------------------------------------------------------


def test_experiment_list_shows_run_counts_of_own_teams_only(client, viewer, experiment, other_run):
    RunFactory.create_batch(3, experiment=experiment)
    RunFactory(experiment=experiment, lifecycle_stage=LifecycleStage.DELETED)
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    assert response.context["page"].object_list[0].run_count == 3
    assert [e.name for e in response.context["page"].object_list] == ["mnist"]
    assert other_run.experiment.name.encode() not in response.content


def test_experiment_list_search_by_name(client, viewer, team, experiment):
    ExperimentFactory(team=team, name="cifar")
    client.force_login(viewer)
    response = client.get("/", {"q": "cif"})
    assert [e.name for e in response.context["page"].object_list] == ["cifar"]


def test_experiment_list_search_without_match_says_so(client, viewer, experiment):
    client.force_login(viewer)
    response = client.get("/", {"q": "nothing-like-this"})
    assert b"No experiment matches" in response.content


def test_experiment_list_empty_state_explains_how_to_start(client, viewer):
    client.force_login(viewer)
    response = client.get("/")
    assert b"No experiments yet" in response.content
    assert b"MLFLOW_TRACKING_URI" in response.content


def test_experiment_list_follows_the_team_switcher(client, viewer, team, experiment):
    elsewhere = ExperimentFactory(name="elsewhere")
    MembershipFactory(user=viewer, team=elsewhere.team)
    client.force_login(viewer)
    assert len(client.get("/").context["page"].object_list) == 2
    session = client.session
    session[SESSION_TEAM_KEY] = team.pk
    session.save()
    assert [e.name for e in client.get("/").context["page"].object_list] == ["mnist"]


def test_experiment_list_hides_deleted_experiments(client, viewer, team):
    ExperimentFactory(team=team, name="gone", lifecycle_stage=LifecycleStage.DELETED)
    client.force_login(viewer)
    assert b"gone" not in client.get("/").content


# Runs table ------------------------------------------------------------------------------------


def test_runs_table_shows_runs_with_values_and_status(client, viewer, experiment):
    run = RunFactory(experiment=experiment, status="FAILED", name="lucky-run")
    LatestMetricFactory(run=run, key="acc", value=0.91234567)
    ParamFactory(run=run, key="lr", value="0.01")
    client.force_login(viewer)
    response = client.get(f"/experiments/{experiment.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "lucky-run" in body
    assert '<span class="badge failed" data-status-badge>FAILED</span>' in body
    assert ">0.91235</td>" in body
    assert ">0.01</td>" in body
    assert live_config(response)["columns"] == ["metrics.acc", "params.lr"]


def test_runs_table_for_an_outsider_is_the_404_page(client, outsider, experiment):
    client.force_login(outsider)
    response = client.get(f"/experiments/{experiment.pk}/")
    assert response.status_code == 404
    assert b"Experiment not found." in response.content


def test_runs_table_of_a_deleted_experiment_is_a_404(client, viewer, team):
    deleted = ExperimentFactory(team=team, lifecycle_stage=LifecycleStage.DELETED)
    client.force_login(viewer)
    assert client.get(f"/experiments/{deleted.pk}/").status_code == 404


def test_runs_table_of_an_unknown_experiment_is_a_404(client, viewer):
    client.force_login(viewer)
    assert client.get("/experiments/999999/").status_code == 404


def test_runs_table_hides_deleted_runs(client, viewer, experiment):
    kept = RunFactory(experiment=experiment)
    RunFactory(experiment=experiment, lifecycle_stage=LifecycleStage.DELETED)
    client.force_login(viewer)
    assert run_ids_in(client.get(f"/experiments/{experiment.pk}/")) == [kept.run_uuid]


def test_runs_table_filter_uses_the_api_grammar(client, viewer, experiment):
    good = RunFactory(experiment=experiment)
    bad = RunFactory(experiment=experiment)
    LatestMetricFactory(run=good, key="acc", value=0.95)
    LatestMetricFactory(run=bad, key="acc", value=0.5)
    client.force_login(viewer)
    response = client.get(f"/experiments/{experiment.pk}/", {"filter": "metrics.acc > 0.9"})
    assert run_ids_in(response) == [good.run_uuid]


def test_runs_table_filter_with_or_and_params(client, viewer, experiment):
    one = RunFactory(experiment=experiment)
    two = RunFactory(experiment=experiment)
    RunFactory(experiment=experiment)
    ParamFactory(run=one, key="opt", value="adam")
    RunTagFactory(run=two, key="team", value="vision")
    client.force_login(viewer)
    response = client.get(f"/experiments/{experiment.pk}/", {"filter": "params.opt = 'adam' OR tags.team = 'vision'"})
    assert sorted(run_ids_in(response)) == sorted([one.run_uuid, two.run_uuid])


def test_runs_table_filter_syntax_error_is_shown_inline_with_its_column(client, viewer, experiment):
    RunFactory(experiment=experiment)
    client.force_login(viewer)
    response = client.get(f"/experiments/{experiment.pk}/", {"filter": "metrics.acc >> 1"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "Invalid filter at column 14" in body
    assert "metrics.acc &gt;&gt; 1\n" + " " * 13 + "^" in body
    assert 'aria-invalid="true"' in body
    assert run_ids_in(response) == []


def test_runs_table_filter_without_match_has_an_empty_state(client, viewer, experiment):
    RunFactory(experiment=experiment)
    client.force_login(viewer)
    response = client.get(f"/experiments/{experiment.pk}/", {"filter": "metrics.acc > 2"})
    assert b"No run matches this filter" in response.content


def test_runs_table_empty_state(client, viewer, experiment):
    client.force_login(viewer)
    assert b"No runs yet" in client.get(f"/experiments/{experiment.pk}/").content


def test_runs_table_sorts_by_metric_with_missing_values_last(client, viewer, experiment):
    low, high, missing, nan = (RunFactory(experiment=experiment) for _ in range(4))
    LatestMetricFactory(run=low, key="acc", value=0.1)
    LatestMetricFactory(run=high, key="acc", value=0.9)
    LatestMetricFactory(run=nan, key="acc", value=0, is_nan=True)
    client.force_login(viewer)
    descending = run_ids_in(client.get(f"/experiments/{experiment.pk}/", {"sort": "-metrics.acc"}))
    ascending = run_ids_in(client.get(f"/experiments/{experiment.pk}/", {"sort": "metrics.acc"}))
    assert descending == [high.run_uuid, low.run_uuid, nan.run_uuid, missing.run_uuid]
    assert ascending == [low.run_uuid, high.run_uuid, nan.run_uuid, missing.run_uuid]


def test_runs_table_sorts_by_param_and_name(client, viewer, experiment):
    b = RunFactory(experiment=experiment, name="b")
    a = RunFactory(experiment=experiment, name="a")
    ParamFactory(run=b, key="opt", value="adam")
    ParamFactory(run=a, key="opt", value="sgd")
    client.force_login(viewer)
    assert run_ids_in(client.get(f"/experiments/{experiment.pk}/", {"sort": "params.opt"})) == [b.run_uuid, a.run_uuid]
    assert run_ids_in(client.get(f"/experiments/{experiment.pk}/", {"sort": "run_name"})) == [a.run_uuid, b.run_uuid]


def test_runs_table_unknown_sort_column_is_reported(client, viewer, experiment):
    RunFactory(experiment=experiment)
    client.force_login(viewer)
    response = client.get(f"/experiments/{experiment.pk}/", {"sort": "password"})
    assert response.status_code == 200
    assert b"Cannot sort by" in response.content


def test_sort_links_toggle_direction(client, viewer, experiment):
    LatestMetricFactory(run=RunFactory(experiment=experiment), key="acc")
    client.force_login(viewer)
    first = client.get(f"/experiments/{experiment.pk}/").context["sort_links"]["metrics.acc"]
    assert first == "?sort=-metrics.acc"
    again = client.get(f"/experiments/{experiment.pk}/", {"sort": "-metrics.acc"}).context["sort_links"]["metrics.acc"]
    assert again == "?sort=metrics.acc"


@pytest.mark.parametrize("sort", ["", "start_time", "-metrics.acc", "params.opt", "end_time"])
def test_keyset_pages_cover_every_run_once(client, viewer, experiment, sort):
    runs = RunFactory.create_batch(57, experiment=experiment)
    for index, run in enumerate(runs):
        if index % 3:
            LatestMetricFactory(run=run, key="acc", value=index % 7)
            ParamFactory(run=run, key="opt", value=f"v{index % 4}")
        if index % 2:
            Run.objects.filter(pk=run.pk).update(end_time=run.start_time + index % 5)
    client.force_login(viewer)
    first = client.get(f"/experiments/{experiment.pk}/", {"sort": sort})
    assert len(run_ids_in(first)) == 50
    token = first.context["page"].next_token
    second = client.get(f"/experiments/{experiment.pk}/", {"sort": sort, "page": token})
    seen = run_ids_in(first) + run_ids_in(second)
    assert sorted(seen) == sorted(run.run_uuid for run in runs)
    assert second.context["page"].next_token is None


def test_page_token_of_another_sort_is_refused(client, viewer, experiment):
    RunFactory.create_batch(51, experiment=experiment)
    client.force_login(viewer)
    token = client.get(f"/experiments/{experiment.pk}/").context["page"].next_token
    response = client.get(f"/experiments/{experiment.pk}/", {"sort": "run_name", "page": token})
    assert response.status_code == 200
    assert b"This page link is out of date" in response.content


def test_malformed_page_token_is_refused(client, viewer, experiment):
    RunFactory(experiment=experiment)
    client.force_login(viewer)
    response = client.get(f"/experiments/{experiment.pk}/", {"page": "!!not-base64"})
    assert response.status_code == 200
    assert b"This page link is out of date" in response.content


def test_runs_table_query_count_does_not_grow_with_runs(client, viewer, experiment, django_assert_max_num_queries):
    for run in RunFactory.create_batch(50, experiment=experiment):
        LatestMetricFactory(run=run, key="acc")
        ParamFactory(run=run, key="opt")
        RunTagFactory(run=run, key="team")
    client.force_login(viewer)
    with django_assert_max_num_queries(16):
        response = client.get(f"/experiments/{experiment.pk}/", {"sort": "-metrics.acc"})
    assert len(run_ids_in(response)) == 50


def test_runs_table_live_config_marks_the_default_first_page(client, viewer, experiment):
    RunFactory(experiment=experiment)
    client.force_login(viewer)
    assert live_config(client.get(f"/experiments/{experiment.pk}/"))["first_page_default_sort"] is True
    filtered = client.get(f"/experiments/{experiment.pk}/", {"filter": "metrics.x > 1"})
    assert live_config(filtered)["first_page_default_sort"] is False
    assert live_config(filtered)["ws_path"] == f"/ws/experiments/{experiment.pk}/"


def test_system_tags_are_not_offered_as_columns(client, viewer, experiment):
    RunTagFactory(run=RunFactory(experiment=experiment), key="mlflow.runName", value="x")
    client.force_login(viewer)
    assert live_config(client.get(f"/experiments/{experiment.pk}/"))["columns"] == []


@pytest.mark.parametrize("sort", ["-metrics.acc", "metrics.acc", "-start_time", "start_time", "params.opt"])
@pytest.mark.parametrize(
    "filter_string",
    [
        "",
        "metrics.acc > 2",
        "params.opt != 'v1'",
        "metrics.acc >= 1 AND metrics.acc < 3",
        "metrics.acc > 2 OR params.opt = 'v1'",
    ],
)
def test_keyset_pages_follow_the_sort_exactly(viewer, experiment, sort, filter_string):
    """Small pages, walked to the end, give every matching run once in exactly the sort's order.

    The order: runs with a value first (by value), then NaN metrics, then runs missing the value;
    ties by start time (newest first) then id (highest first). Equal values and equal start times
    are frequent here so every tie-break is exercised across page boundaries.
    """
    from experiments.pages import selectors as page_selectors

    runs = []
    for index in range(40):
        run = RunFactory(experiment=experiment, start_time=1_700_000_000_000 + (index % 6) * 1000)
        if index % 5 == 0:
            LatestMetricFactory(run=run, key="acc", value=0, is_nan=True)
        elif index % 5 != 1:
            LatestMetricFactory(run=run, key="acc", value=index % 4)
        if index % 3:
            ParamFactory(run=run, key="opt", value=f"v{index % 3}")
        runs.append(run)
    RunFactory(experiment=experiment, lifecycle_stage=LifecycleStage.DELETED)
    parsed = page_selectors.parse_sort(sort)

    def sort_key(run):
        metric = run.latest_metrics.filter(key="acc").first()
        param = run.params.filter(key="opt").first()
        if parsed.column == "start_time":
            return (0, 0, 0, 0)
        if parsed.column == "metrics.acc":
            if metric is None:
                return (2, 0, -run.start_time, -run.id)
            if metric.is_nan:
                return (1, 0, -run.start_time, -run.id)
            return (0, metric.value if parsed.ascending else -metric.value, -run.start_time, -run.id)
        if param is None:
            return (2, "", -run.start_time, -run.id)
        return (0, param.value, -run.start_time, -run.id)

    def matches(run):
        metric = run.latest_metrics.filter(key="acc").first()
        param = run.params.filter(key="opt").first()
        value = None if metric is None or metric.is_nan else metric.value
        opt = None if param is None else param.value
        return {
            "": True,
            "metrics.acc > 2": value is not None and value > 2,
            "params.opt != 'v1'": opt is not None and opt != "v1",
            "metrics.acc >= 1 AND metrics.acc < 3": value is not None and 1 <= value < 3,
            "metrics.acc > 2 OR params.opt = 'v1'": (value is not None and value > 2) or opt == "v1",
        }[filter_string]

    expected = sorted((run for run in runs if matches(run)), key=lambda run: (run.start_time, -run.id))
    if parsed.column == "start_time":
        expected = sorted(expected, key=lambda run: (run.start_time if parsed.ascending else -run.start_time, -run.id))
    else:
        expected = sorted(expected, key=sort_key)
    seen, token = [], None
    for _ in range(20):
        page = page_selectors.runs_page(
            user=viewer, experiment=experiment, filter_string=filter_string, sort=parsed, page_token=token, page_size=4
        )
        seen += [run.run_uuid for run in page.runs]
        token = page.next_token
        if token is None:
            break
    assert seen == [run.run_uuid for run in expected]


@pytest.mark.parametrize("sort", ["-metrics.acc", "metrics.acc"])
def test_metric_sort_orders_by_the_indexed_value_itself(viewer, experiment, sort, django_assert_max_num_queries):
    """The page query orders by ``latestmetric.value`` (no CASE around it), so ``(key, is_nan, value)`` can serve it.

    That is what keeps a metric-sorted page over 100k runs at a few ms on PostgreSQL (an expression
    sort read and sorted every run of the experiment: ~300 ms per page).
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from experiments.pages import selectors as page_selectors

    for index, run in enumerate(RunFactory.create_batch(5, experiment=experiment)):
        LatestMetricFactory(run=run, key="acc", value=index)
    with CaptureQueriesContext(connection) as captured:
        page = page_selectors.runs_page(user=viewer, experiment=experiment, sort=page_selectors.parse_sort(sort))
    assert len(page.runs) == 5
    sql = next(q["sql"].upper() for q in captured.captured_queries if 'FROM "EXPERIMENTS_RUN"' in q["sql"].upper())
    order_by = sql[sql.rindex("ORDER BY") :]
    assert "CASE" not in order_by
    assert order_by.startswith('ORDER BY _SORTED."VALUE"')
