"""XSS payloads stored in names, params, tags and descriptions never execute, on pages and in admin, and the
pages load under the Content-Security-Policy without a single violation. Checked in headless Chromium.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator

# The sync Playwright API runs an event loop in this thread; the ORM calls below stay synchronous.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

import pytest
from django.conf import settings
from django.test import Client, override_settings
from playwright.sync_api import Page, sync_playwright

from accounts.models import Role
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory
from experiments import services
from experiments.artifacts import artifact_write
from registry import services as registry_services
from tests.browser.helpers import CHROMIUM, launch_chromium

pytestmark = [pytest.mark.server, pytest.mark.browser, pytest.mark.xdist_group("browser")]

PAYLOADS = [
    "<script>window.__xss = 'script'</script>",
    "<img src=x onerror=\"window.__xss = 'img'\">",
    '"><svg onload="window.__xss = \'svg\'">',
    "javascript:window.__xss='href'",
    "</script><script>window.__xss = 'breakout'</script>",
]
WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
window.alert = window.confirm = window.prompt = () => { window.__xss = 'dialog'; };
"""


@pytest.fixture(autouse=True)
def no_channel_layer_here(settings) -> None:
    """Writes made here announce nothing (publishing from Playwright's thread would fail)."""
    settings.CHANNEL_LAYERS = {}


@pytest.fixture(scope="module")
def chromium() -> Iterator:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium is missing: run `bash scripts/ensure-chromium` (make test does).")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


@pytest.fixture
def hostile(transactional_db):
    """A team whose experiment, runs, params, tags, model and description all carry XSS payloads."""
    team = TeamFactory(name="xss <b>team</b>")
    admin = MembershipFactory(team=team, role=Role.ADMIN).user
    experiment = services.experiment_create(
        user=admin, team=team, name=PAYLOADS[0], description=" ".join(PAYLOADS), tags={"t": PAYLOADS[1]}
    )
    runs = []
    for index, payload in enumerate(PAYLOADS):
        run = services.run_create(user=admin, experiment=experiment, name=payload)
        services.log_batch(
            user=admin,
            run=run,
            metrics=[{"key": f"m{index}", "value": 1.0, "step": 0}],
            params=[{"key": f"p{index}", "value": payload}],
            tags=[{"key": "note", "value": payload}],
        )
        runs.append(run)
    artifact_write(user=admin, run=runs[0], path="<img src=x onerror=alert(1)>.html", stream=io.BytesIO(b"<script>"))
    model = registry_services.registered_model_create(user=admin, team=team, name="model <script>x</script>")
    superuser = UserFactory(is_staff=True, is_superuser=True)
    return {"admin": admin, "superuser": superuser, "experiment": experiment, "runs": runs, "model": model}


def open_as(browser, base_url: str, user, secret_key: str) -> Page:
    """A page whose context holds a session of ``user`` signed with the server's key."""
    client = Client()
    with override_settings(SECRET_KEY=secret_key):
        client.force_login(user)
    context = browser.new_context(base_url=base_url)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": base_url,
            }
        ]
    )
    context.add_init_script(WATCH)
    return context.new_page()


def visit(page: Page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{path}: {response and response.status}"
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__xss") is None, f"{path}: a payload executed ({page.evaluate('window.__xss')})"
    assert page.evaluate("window.__csp") == [], f"{path}: CSP violations {page.evaluate('window.__csp')}"


def test_payloads_never_execute_and_pages_pass_the_csp(chromium, daphne_server, live_server_env, hostile) -> None:
    page = open_as(chromium, daphne_server.url, hostile["admin"], live_server_env["SECRET_KEY"])
    experiment, runs = hostile["experiment"], hostile["runs"]
    paths = [
        "/",
        f"/experiments/{experiment.pk}/",
        *[f"/runs/{run.run_uuid}/" for run in runs],
        f"/runs/{runs[0].run_uuid}/artifacts/",
        "/compare/?" + "&".join(f"runs={run.run_uuid}" for run in runs[:3]),
        "/models/",
        f"/models/{hostile['model'].pk}/",
        "/deployments/",
    ]
    for path in paths:
        visit(page, path)
    page.goto(f"/runs/{runs[0].run_uuid}/")
    assert PAYLOADS[0] in page.inner_text("body")  # shown to the reader as text
    page.context.close()


def test_payloads_never_execute_in_admin(chromium, daphne_server, live_server_env, hostile) -> None:
    page = open_as(chromium, daphne_server.url, hostile["superuser"], live_server_env["SECRET_KEY"])
    run = hostile["runs"][0]
    paths = [
        "/admin/",
        "/admin/experiments/experiment/",
        f"/admin/experiments/experiment/{hostile['experiment'].pk}/change/",
        "/admin/experiments/run/",
        f"/admin/experiments/run/{run.pk}/change/",
        "/admin/registry/registeredmodel/",
    ]
    for path in paths:
        visit(page, path)
    page.context.close()


@pytest.mark.parametrize("path", ["/login/", "/api/v1/docs/"])
def test_public_pages_pass_the_csp(chromium, daphne_server, transactional_db, path: str) -> None:
    context = chromium.new_context(base_url=daphne_server.url)
    context.add_init_script(WATCH)
    page = context.new_page()
    visit(page, path)
    if path == "/api/v1/docs/":
        page.wait_for_selector(".swagger-ui .info", timeout=15_000)  # the UI rendered from its external script
    context.close()
