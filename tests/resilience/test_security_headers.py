"""Security headers, Host header checks, CSRF on pages, login open redirects and ``check --deploy``."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from accounts.tests.factories import DEFAULT_PASSWORD, UserFactory
from mlplatform.security import DEFAULT_CSP

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.fixture
def member(workspace):
    """The workspace's editor, with a password the login form accepts."""
    return workspace.editor


def test_pages_carry_the_csp_and_hardening_headers(client, member) -> None:
    client.force_login(member)
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == DEFAULT_CSP
    assert "script-src 'self'" in DEFAULT_CSP and "unsafe-inline" not in DEFAULT_CSP
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]


def test_api_and_error_responses_carry_the_headers_too(client, workspace) -> None:
    response = client.get("/api/v1/runs/" + "0" * 32 + "/", headers=workspace.headers())
    assert response.status_code == 404
    assert response["Content-Security-Policy"] == DEFAULT_CSP
    assert response["X-Content-Type-Options"] == "nosniff"


def test_artifact_downloads_keep_their_stricter_sandbox_policy(client, workspace) -> None:
    url = f"/api/v1/runs/{workspace.run.run_uuid}/artifacts/page.html"
    payload = b"<script>alert(1)</script>"
    assert client.generic("PUT", url, payload, headers=workspace.headers()).status_code == 201
    response = client.get(url, headers=workspace.headers())
    assert response["Content-Security-Policy"] == "sandbox"


def test_no_hsts_over_plain_http(client) -> None:
    assert "Strict-Transport-Security" not in client.get("/login/")


def test_hsts_over_https_when_configured(client, settings) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = client.get("/login/", secure=True)
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("host", ["evil.example.com", "127.0.0.1.evil.example.com", "localhost:80@evil.com"])
def test_spoofed_host_header_is_a_400(client, host: str) -> None:
    response = client.get("/login/", headers={"host": host})
    assert response.status_code == 400


def test_spoofed_host_cannot_poison_absolute_urls_in_the_api(client, workspace) -> None:
    response = client.get("/api/v1/runs/?page_size=1", headers={**workspace.headers(), "host": "evil.example.com"})
    assert response.status_code == 400
    assert b"evil.example.com" not in response.content


def test_login_form_without_csrf_token_is_refused(member) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login/", {"username": member.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_page_form_post_without_csrf_token_is_refused(member) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(member)
    response = client.post("/logout/")
    assert response.status_code == 403
    assert "_auth_user_id" in client.session


def test_login_with_csrf_token_works(member) -> None:
    client = Client(enforce_csrf_checks=True)
    client.get("/login/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/login/", {"username": member.username, "password": DEFAULT_PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/",
        "//evil.example.com/",
        "///evil.example.com/",
        "/\\evil.example.com/",
        "\\\\evil.example.com",
        "https:evil.example.com",
        "javascript:alert(1)",
        " https://evil.example.com",
        "http://testserver@evil.example.com/",
    ],
)
def test_login_never_redirects_off_site(client, target: str) -> None:
    user = UserFactory()
    response = client.post(f"/login/?next={target}", {"username": user.username, "password": DEFAULT_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/", response["Location"]


def test_login_follows_a_local_next(client) -> None:
    user = UserFactory()
    response = client.post("/login/?next=/compare/", {"username": user.username, "password": DEFAULT_PASSWORD})
    assert response["Location"] == "/compare/"


def test_team_switch_never_redirects_off_site(client, member, workspace) -> None:
    client.force_login(member)
    response = client.post("/team/switch/", {"team": workspace.team.pk, "next": "https://evil.example.com/"})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_check_deploy_is_clean_with_production_settings(tmp_path) -> None:
    # Not the test-only DJANGO_ALLOW_ASYNC_UNSAFE either (browser tests set it in this process): async.E001.
    dropped = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "mlplatform.settings",
            "DEBUG": "0",
            "HTTPS": "1",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "mlplatform.example.com",
            "MLPLATFORM_VAR_DIR": str(tmp_path),
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "System check identified no issues" in output
