"""Playwright against Debian's Chromium and a real daphne server on the test database.

pip's playwright cannot download browsers here, so the system Chromium is launched by path
(``scripts/ensure-chromium`` installs it; ``make test`` runs that). Every page collects console
errors and uncaught exceptions, and a test fails on any; a failing test leaves a full-page
screenshot in ``test-results/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.test import Client, override_settings
from django.utils.crypto import get_random_string
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from accounts.models import Role, User
from accounts.tests.factories import DEFAULT_PASSWORD, MembershipFactory, TeamFactory
from tests.browser.helpers import CHROMIUM, launch_chromium

RESULTS = Path(__file__).resolve().parents[2] / "test-results"
TIMEOUT_MS = 10_000


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    """Remember each phase's report on the item so the page fixture knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(scope="module")
def browser(daphne_server) -> Iterator[Browser]:
    """One Chromium per browser test module.

    The sync Playwright API runs an event loop in the test thread while it is active. Keeping it
    module-scoped (and the browser tests in one xdist group) ends that loop before other modules'
    async tests run in the same worker; while it runs, the tests' own synchronous ORM calls need
    Django's async-safety guard lifted. The daphne server is started first so it never inherits that.
    """
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.fail("Chromium is missing: run `bash scripts/ensure-chromium` (make test does).")
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = launch_chromium(playwright)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def base_url(daphne_server, transactional_db) -> str:
    """The daphne server's address (tests using it commit their data so the server sees it)."""
    return daphne_server.url


@pytest.fixture
def expected_console_errors() -> list[str]:
    """Substrings of console errors a test provokes on purpose (e.g. the status line of a 403 page)."""
    return []


@pytest.fixture
def page(
    browser: Browser, base_url: str, request: pytest.FixtureRequest, expected_console_errors: list[str]
) -> Iterator[Page]:
    """A fresh browser context and page; console errors fail the test, failures leave a screenshot."""
    context = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text} ({message.location.get('url', '')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"uncaught exception: {error}"))
    yield page
    failed = getattr(request.node, "report_call", None) is not None and request.node.report_call.failed
    unexpected = [p for p in problems if not any(expected in p for expected in expected_console_errors)]
    if failed or unexpected:
        RESULTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)[-150:]
        page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)
    context.close()
    problems = [p for p in problems if not any(expected in p for expected in expected_console_errors)]
    assert not problems, "The browser reported errors:\n" + "\n".join(problems)


@pytest.fixture(autouse=True)
def no_channel_layer_here(settings) -> None:
    """Writes made by the tests themselves announce nothing: only the daphne process's layer reaches browsers.

    (Publishing from this thread would also fail, since Playwright runs an event loop in it.)
    """
    settings.CHANNEL_LAYERS = {}


def server_password_hash(password: str) -> str:
    """A hash the server can check: it runs the production hashers, the tests only MD5 (cheap iterations here)."""
    return PBKDF2PasswordHasher().encode(password, get_random_string(16), iterations=1000)


@pytest.fixture
def people(transactional_db) -> dict[str, Any]:
    """A team with a viewer, an editor and an admin (password DEFAULT_PASSWORD)."""
    team = TeamFactory(name="browser-team")
    members = {}
    for role in (Role.VIEWER, Role.EDITOR, Role.ADMIN):
        user = MembershipFactory(team=team, role=role).user
        User.objects.filter(pk=user.pk).update(password=server_password_hash(DEFAULT_PASSWORD))
        user.refresh_from_db()
        members[role] = user
    return {"team": team, "viewer": members[Role.VIEWER], "editor": members[Role.EDITOR], "admin": members[Role.ADMIN]}


@pytest.fixture
def sign_in(live_server_env: dict[str, str], base_url: str) -> Callable[[Page, Any, str], None]:
    """Put a session of ``user`` in the page's cookies and open ``path`` (the login form has its own test).

    The session is written to the shared test database, signed with the server's secret key.
    """

    def sign_in(page: Page, user: Any, path: str = "/") -> None:
        client = Client()
        with override_settings(SECRET_KEY=live_server_env["SECRET_KEY"]):
            client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
        page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": base_url}])
        page.goto(path)

    return sign_in
