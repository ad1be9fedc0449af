"""The pages in a real headless Chromium against a real daphne: login, runs table, live chart, compare, rollback."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from accounts.services import api_token_create
from accounts.tests.factories import DEFAULT_PASSWORD
from experiments import services
from registry import services as registry_services
from registry.models import Deployment, DeploymentStatus
from registry.tests.factories import (
    AlertRuleFactory,
    EnvironmentFactory,
    ModelVersionFactory,
    RegisteredModelFactory,
)
from tests.browser.helpers import api_post, api_request, login

pytestmark = [pytest.mark.browser, pytest.mark.server, pytest.mark.xdist_group("browser")]


@pytest.fixture
def experiment(people):
    """An experiment with three finished runs logging ``acc`` and a param, and one running run logging ``loss``."""
    editor = people["editor"]
    experiment = services.experiment_create(user=editor, team=people["team"], name="browser-exp")
    for name, acc, opt in (("low", 0.2, "sgd"), ("mid", 0.6, "adam"), ("high", 0.9, "adamw")):
        run = services.run_create(user=editor, experiment=experiment, name=name)
        services.log_batch(
            user=editor,
            run=run,
            metrics=[
                {"key": "acc", "value": acc * s / 4, "timestamp": 1_700_000_000_000 + s, "step": s} for s in range(5)
            ],
            params=[{"key": "optimizer", "value": opt}],
        )
        services.run_update(user=editor, run=run, status="FINISHED", end_time=1_700_000_100_000)
    live = services.run_create(user=editor, experiment=experiment, name="live-run")
    services.log_batch(
        user=editor,
        run=live,
        metrics=[
            {"key": "loss", "value": 1 / (s + 1), "timestamp": 1_700_000_000_000 + s, "step": s} for s in range(10)
        ],
    )
    # Values a log scale cannot show (zero, negative, NaN) must not break the charts.
    odd = {"reward": [-1.0, 0.0, float("nan"), 2.0], "penalty": [-3.0, -2.0, -1.0]}
    services.log_batch(
        user=editor,
        run=live,
        metrics=[
            {"key": key, "value": value, "timestamp": 1_700_000_000_000 + step, "step": step}
            for key, values in odd.items()
            for step, value in enumerate(values)
        ],
    )
    return experiment


def row_names(page) -> list[str]:
    return page.locator("#runs-table tbody tr td:nth-child(2) a").all_inner_texts()


def test_login_shows_the_experiments(page, people, experiment):
    login(page, people["viewer"].username, DEFAULT_PASSWORD)
    expect(page.get_by_role("link", name="browser-exp")).to_be_visible()
    expect(page.locator("td.num").first).to_have_text("4")


def test_links_printed_by_the_mlflow_client_open_our_pages(page, sign_in, people, experiment):
    run = experiment.runs.get(name="live-run")
    mlflow_link = f"/#/experiments/{experiment.pk}/runs/{run.run_uuid}"
    # Signed out: the login page keeps the destination; signing in lands on the run.
    page.goto(mlflow_link)
    expect(page.locator('input[name="next"]')).to_have_value(f"/runs/{run.run_uuid}/")
    page.fill("#id_username", people["viewer"].username)
    page.fill("#id_password", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**/runs/{run.run_uuid}/")
    expect(page.locator("h1")).to_contain_text("live-run")
    # Signed in: the experiment link opens its runs table.
    page.goto(f"/#/experiments/{experiment.pk}")
    page.wait_for_url(f"**/experiments/{experiment.pk}/")


def test_wrong_password_stays_on_the_login_page(page, people):
    page.goto("/login/")
    page.fill("#id_username", people["viewer"].username)
    page.fill("#id_password", "wrong-password")
    page.click("button[type=submit]")
    expect(page.locator(".errorlist")).to_contain_text("correct username and password")


def test_filter_runs_with_a_valid_and_an_invalid_expression(page, sign_in, people, experiment):
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    page.fill("#filter-input", "metrics.acc > 0.5 AND params.optimizer != 'sgd'")
    page.click("#filter-form button[type=submit]")
    expect(page.locator("#runs-table tbody tr")).to_have_count(2)
    assert sorted(row_names(page)) == ["high", "mid"]
    page.fill("#filter-input", "metrics.acc >> 0.5")
    page.press("#filter-input", "Enter")
    error = page.locator("#filter-error")
    expect(error).to_contain_text("Invalid filter at column 14")
    expect(error.locator("pre")).to_contain_text("^")
    expect(page.locator("#filter-input")).to_have_attribute("aria-invalid", "true")


def test_sort_by_a_metric_column(page, sign_in, people, experiment):
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    page.get_by_title("Sort by metrics.acc").click()
    page.wait_for_url(re.compile(r"sort=-metrics\.acc"))
    assert row_names(page)[:3] == ["high", "mid", "low"]
    page.get_by_title("Sort by metrics.acc").click()
    page.wait_for_url(re.compile(r"sort=metrics\.acc"))
    assert row_names(page)[:3] == ["low", "mid", "high"]


def test_column_choice_is_remembered(page, sign_in, people, experiment):
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    header = page.locator('th[data-col="params.optimizer"]')
    expect(header).to_be_visible()
    page.click("#column-chooser summary")
    page.locator('[data-col-toggle="params.optimizer"]').uncheck()
    expect(header).to_be_hidden()
    page.reload()
    expect(page.locator('th[data-col="params.optimizer"]')).to_be_hidden()


def test_new_run_appears_in_the_table_live(page, sign_in, people, experiment, base_url):
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    expect(page.locator("#live-indicator")).to_have_text("Live")
    _, token = api_token_create(user=people["editor"], name="browser")
    created = api_post(base_url, token, "/api/v1/runs/", {"experiment_id": experiment.pk, "name": "brand-new"})
    run_id = created.get("run_id") or created.get("run_uuid") or created["id"]
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_contain_text("brand-new", timeout=2000)
    api_post(
        base_url, token, f"/api/v1/runs/{run_id}/log-batch/", {"metrics": [{"key": "acc", "value": 0.75, "step": 1}]}
    )
    expect(row.locator('td[data-col="metrics.acc"]')).to_have_text("0.75", timeout=2000)


def test_open_a_run_and_see_a_logged_point_within_two_seconds(page, sign_in, people, experiment, base_url):
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    page.get_by_role("link", name="live-run").click()
    chart = page.locator('section[data-metric-key="loss"] .chart')
    expect(chart).to_have_attribute("data-points", "10")
    expect(page.locator("#live-indicator")).to_have_text("Live")
    run_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    # Mark the chart's canvas: a chart rebuilt from scratch (destroy + new uPlot) would lose the mark.
    chart.locator("canvas").evaluate("canvas => { canvas.dataset.original = 'yes'; }")
    _, token = api_token_create(user=people["editor"], name="browser")
    started = time.monotonic()
    api_post(
        base_url, token, f"/api/v1/runs/{run_id}/log-batch/", {"metrics": [{"key": "loss", "value": 0.05, "step": 10}]}
    )
    expect(chart).to_have_attribute("data-points", "11", timeout=2000)
    assert time.monotonic() - started < 2
    expect(page.locator('section[data-metric-key="loss"] [data-latest]')).to_have_text("0.05 @ step 10")
    expect(page.locator('tr[data-latest-key="loss"] [data-step]')).to_have_text("10")
    expect(chart.locator("canvas")).to_have_attribute("data-original", "yes")
    api_post(
        base_url,
        token,
        f"/api/v1/runs/{run_id}/log-batch/",
        {"metrics": [{"key": "grad_norm", "value": 3.5, "step": 0}]},
    )
    expect(page.locator('section[data-metric-key="grad_norm"] .chart')).to_have_attribute(
        "data-points", "1", timeout=2000
    )
    # A metric with only NaN so far says why its chart is empty, until a number arrives.
    api_post(base_url, token, f"/api/v1/runs/{run_id}/log-batch/", {"metrics": [{"key": "nan_only", "value": "NaN"}]})
    note = page.locator('section[data-metric-key="nan_only"] .chart-note')
    expect(note).to_be_visible(timeout=2000)
    expect(page.locator('section[data-metric-key="grad_norm"] .chart-note')).to_be_hidden()
    api_post(
        base_url,
        token,
        f"/api/v1/runs/{run_id}/log-batch/",
        {"metrics": [{"key": "nan_only", "value": 1.5, "step": 1}]},
    )
    expect(note).to_be_hidden(timeout=2000)


def test_chart_controls_switch_axis_smoothing_and_log_scale(page, sign_in, people, experiment):
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    page.get_by_role("link", name="live-run").click()
    page.select_option("[data-control=x-axis]", "relative")
    page.locator("[data-control=smoothing]").fill("0.6")
    page.check("[data-control=log]")
    expect(page.locator("[data-control=smoothing-value]")).to_have_text("0.60")
    expect(page.locator('section[data-metric-key="loss"] .u-legend')).to_contain_text("smoothed")
    expect(page.locator('section[data-metric-key="reward"] canvas')).to_have_count(1)
    expect(page.locator('section[data-metric-key="penalty"] canvas')).to_have_count(1)
    page.reload()
    expect(page.locator("[data-control=x-axis]")).to_have_value("relative")


def test_compare_two_runs(page, sign_in, people, experiment):
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    compare = page.locator("#compare-button")
    expect(compare).to_be_disabled()
    for name in ("low", "high"):
        page.locator("tr", has=page.get_by_role("link", name=name, exact=True)).locator('input[name="runs"]').check()
    expect(compare).to_have_text("Compare 2 runs")
    compare.click()
    page.wait_for_url("**/compare/**")
    expect(page.locator('[data-compare-chart="acc"] canvas')).to_have_count(1)
    expect(page.locator("#param-diff tr.diff")).to_contain_text("optimizer")
    page.check("#only-differences")
    expect(page.locator("#metric-diff tbody tr:visible")).to_have_count(1)


@pytest.fixture
def deployed(people):
    """Version 1 then version 2 deployed to production: v2 live, v1 retired."""
    admin = people["admin"]
    model = RegisteredModelFactory(team=people["team"], name="browser-model")
    v1, v2 = ModelVersionFactory(model=model), ModelVersionFactory(model=model)
    production = EnvironmentFactory(team=people["team"], name="production", position=0)
    registry_services.deploy(user=admin, version=v1, environment=production)
    current = registry_services.deploy(user=admin, version=v2, environment=production)
    registry_services.monitoring_ingest(
        user=admin,
        deployment=current,
        metrics=[
            {"key": "latency_ms", "value": 40 + i, "timestamp": int(time.time() * 1000) - 1000 * (20 - i)}
            for i in range(20)
        ],
    )
    return current


def test_roll_back_a_deployment(page, sign_in, people, deployed):
    sign_in(page, people["admin"], "/deployments/")
    page.get_by_role("link", name="Monitor").click()
    expect(page.locator('section[data-metric-key="latency_ms"] .chart')).to_have_attribute("data-points", "20")
    page.click("#rollback-button")
    page.fill("#id_comment", "latency regression")
    page.click("#confirm-rollback")
    expect(page.locator(".messages")).to_contain_text("back to browser-model version 1")
    expect(page.locator("#deployment-status")).to_have_text("live")
    live = Deployment.objects.get(status=DeploymentStatus.LIVE)
    assert live.version.version == 1
    assert page.url.endswith(f"/deployments/{live.pk}/")


def test_monitoring_points_and_alerts_arrive_live(page, sign_in, people, deployed, base_url):
    AlertRuleFactory(deployment=deployed, metric="error_rate", comparison="gt", threshold=0.05, window_seconds=300)
    sign_in(page, people["viewer"], f"/deployments/{deployed.pk}/")
    expect(page.locator("#live-indicator")).to_have_text("Live")
    _, token = api_token_create(user=people["editor"], name="browser")
    now = int(time.time() * 1000)
    points = [
        {"key": "latency_ms", "value": 300.0, "timestamp": now},
        {"key": "error_rate", "value": 0.5, "timestamp": now},
    ]
    api_post(base_url, token, f"/api/v1/deployments/{deployed.pk}/metrics/", {"metrics": points})
    latency = page.locator('section[data-metric-key="latency_ms"] .chart')
    expect(latency).to_have_attribute("data-points", "21", timeout=2000)
    expect(page.locator('section[data-metric-key="error_rate"] .chart')).to_have_attribute("data-points", "1")
    expect(page.locator("#alerts-table tbody tr").first.locator("[data-alert-state]")).to_have_text("firing")


def test_viewer_cannot_roll_back(page, sign_in, people, deployed, expected_console_errors):
    expected_console_errors.append("status of 403 (Forbidden)")
    sign_in(page, people["viewer"], f"/deployments/{deployed.pk}/")
    expect(page.locator("#rollback-button")).to_have_count(0)
    response = page.goto(f"/deployments/{deployed.pk}/rollback/")
    assert response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")


def test_phone_width_keeps_the_runs_table_usable(page, sign_in, people, experiment):
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    expect(page.get_by_role("link", name="live-run")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"


@pytest.fixture
def run_with_artifact(people, experiment, base_url):
    """The live run with a text artifact uploaded through the server's API (so it lands in the server's store)."""
    run = experiment.runs.get(name="live-run")
    _, token = api_token_create(user=people["admin"], name="browser")
    url = f"{base_url}/api/v1/runs/{run.run_uuid}/artifacts/notes/readme.txt"
    api_request(url, token, "PUT", b"hello")
    yield run
    api_request(url, token, "DELETE")


def test_registry_and_artifact_pages_render_without_console_errors(page, sign_in, people, run_with_artifact, deployed):
    run = run_with_artifact
    version = deployed.version
    sign_in(page, people["viewer"], "/models/")
    for path, heading in (
        ("/models/", "Models"),
        (f"/models/{version.model_id}/", "browser-model"),
        (f"/models/{version.model_id}/versions/{version.version}/", "browser-model · version 2"),
        ("/deployments/", "Deployments"),
        (f"/runs/{run.run_uuid}/artifacts/?path=notes", "Artifacts"),
        (f"/runs/{run.run_uuid}/artifacts/?file=notes/readme.txt", "notes/readme.txt"),
    ):
        page.goto(path)
        expect(page.locator("h1")).to_contain_text(heading)


# Every table must fit its panel or scroll inside its own box; the page itself must never scroll sideways.
OVERFLOW_PROBLEMS_JS = """() => {
  const problems = [];
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > width + 1) {
    problems.push(`page is ${document.documentElement.scrollWidth}px wide in a ${width}px window`);
  }
  const scrolls = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  for (const table of document.querySelectorAll("main table")) {
    const box = table.closest(".panel, .chart-card, main");
    if (table.getBoundingClientRect().right <= box.getBoundingClientRect().right + 1) continue;
    let el = table.parentElement;
    while (el && el !== box && !scrolls(el)) el = el.parentElement;
    if (!el || el === box) problems.push(`table ${table.id || table.rows[0].innerText.slice(0, 30)} overflows its box`);
  }
  return problems;
}"""


def test_phone_width_pages_do_not_scroll_sideways(page, sign_in, people, experiment, deployed):
    editor = people["editor"]
    # Names and values as long as real ones (a sweep's run names, a firing alert) widen the tables.
    for number, optimizer in enumerate(("adamw", "sgd", "adam")):
        run = services.run_create(user=editor, experiment=experiment, name=f"{optimizer}-lr0.003-bs128-{number:02d}")
        services.log_batch(
            user=editor,
            run=run,
            metrics=[{"key": "val_loss", "value": 0.123456 + number, "timestamp": 1_700_000_000_000, "step": 0}],
            params=[{"key": "learning_rate_schedule", "value": f"cosine-warmup-{number}"}],
        )
    AlertRuleFactory(deployment=deployed, metric="latency_ms", comparison="gt", threshold=10, window_seconds=300)
    now = int(time.time() * 1000)
    registry_services.monitoring_ingest(
        user=people["admin"], deployment=deployed, metrics=[{"key": "latency_ms", "value": 99.0, "timestamp": now}]
    )
    runs = {run.name: run.run_uuid for run in experiment.runs.all()}
    version = deployed.version
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, people["admin"], "/")
    problems = {}
    for path in (
        "/",
        f"/experiments/{experiment.pk}/",
        f"/experiments/{experiment.pk}/?filter=metrics.acc+%3E%3E+1",
        f"/runs/{runs['live-run']}/",
        "/compare/?" + "&".join(f"runs={run_id}" for name, run_id in runs.items() if "-lr" in name),
        "/models/",
        f"/models/{version.model_id}/",
        f"/models/{version.model_id}/versions/{version.version}/",
        "/deployments/",
        f"/deployments/{deployed.pk}/",
        f"/deployments/{deployed.pk}/rollback/",
    ):
        page.goto(path)
        found = page.evaluate(OVERFLOW_PROBLEMS_JS)
        if found:
            problems[path] = found
    assert not problems


def tab_to(page, selector: str, presses: int = 60, key: str = "Tab") -> None:
    """Press Tab (or ``key``) until the element matching ``selector`` has the focus (fails when it never gets it)."""
    for _ in range(presses):
        page.keyboard.press(key)
        if page.evaluate("(selector) => document.activeElement.matches(selector)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with the Tab key")


def test_runs_table_controls_work_from_the_keyboard(page, sign_in, people, experiment):
    sign_in(page, people["viewer"], f"/experiments/{experiment.pk}/")
    expect(page.locator("#live-indicator")).to_have_text("Live")
    # The column chooser opens with Enter and its checkboxes toggle with Space.
    tab_to(page, "#column-chooser summary")
    page.keyboard.press("Enter")
    tab_to(page, '[data-col-toggle="params.optimizer"]')
    page.keyboard.press("Space")
    expect(page.locator('th[data-col="params.optimizer"]')).to_be_hidden()
    # Ticking two runs with Space enables the compare button, which Enter presses.
    tab_to(page, 'input[name="runs"][aria-label^="Select low"]')
    page.keyboard.press("Space")
    tab_to(page, 'input[name="runs"][aria-label^="Select high"]')
    page.keyboard.press("Space")
    expect(page.locator("#compare-button")).to_have_text("Compare 2 runs")
    tab_to(page, "#compare-button", key="Shift+Tab")
    page.keyboard.press("Enter")
    page.wait_for_url("**/compare/**")
    # A sort link is reachable and followed with Enter.
    page.go_back()
    tab_to(page, 'a[title="Sort by metrics.acc"]')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"sort=-metrics\.acc"))


def test_run_chart_controls_work_from_the_keyboard(page, sign_in, people, experiment):
    run = experiment.runs.get(name="live-run")
    sign_in(page, people["viewer"], f"/runs/{run.run_uuid}/")
    tab_to(page, "[data-control=x-axis]")
    page.keyboard.press("ArrowDown")
    tab_to(page, "[data-control=smoothing]")
    page.keyboard.press("ArrowRight")
    expect(page.locator("[data-control=smoothing-value]")).to_have_text("0.01")
    tab_to(page, "[data-control=log]")
    page.keyboard.press("Space")
    expect(page.locator("[data-control=log]")).to_be_checked()
