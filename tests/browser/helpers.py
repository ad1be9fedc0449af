"""Helpers shared by the browser tests and the screenshot tool: launch Chromium, log in, call the API."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless (pip's playwright cannot download its own browsers here)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def login(page: Any, username: str, password: str, next_path: str = "/") -> None:
    """Sign in through the login form and wait for the landing page."""
    page.goto(f"/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_path}")


def api_post(base_url: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST JSON to the native API with a Bearer API token; returns the decoded answer."""
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def api_request(url: str, token: str, method: str, body: bytes | None = None) -> int:
    """Send raw bytes (or nothing) to the API with a Bearer API token; returns the status."""
    request = urllib.request.Request(url, data=body, method=method, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status
