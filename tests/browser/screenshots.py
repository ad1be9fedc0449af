"""``make screenshots``: seed a throwaway SQLite database, start daphne, capture the main pages as PNGs.

Writes ``docs/screenshots/{runs-table,run-live,compare,deployment,deployments}.png``. The live run shot is taken
after logging points through the API while the page is open, so it shows a chart that moved live.
Run from the repository root: ``.venv/bin/python tests/browser/screenshots.py``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "docs" / "screenshots"
USERNAME, PASSWORD = "demo", "demo-password"
VIEWPORT = {"width": 1280, "height": 860}


def demo_env(var_dir: Path) -> dict[str, str]:
    """Settings for the throwaway database (DEBUG on, so no secret key is needed)."""
    return {"DEBUG": "1", "MLPLATFORM_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "mlplatform.settings"}


def manage(var_dir: Path, *args: str) -> None:
    """Run a management command against the throwaway database."""
    env = {**os.environ, **demo_env(var_dir)}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def demo_ids(var_dir: Path) -> dict:
    """Ids the shots need and an API token for the demo user, read with Django against the throwaway database."""
    os.environ.update(demo_env(var_dir))
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from accounts.models import User
    from accounts.services import api_token_create
    from experiments.models import Experiment, LatestMetric, Param, Run
    from registry.models import Deployment

    experiment = Experiment.objects.get(name="mnist-cnn")
    running = Run.objects.get(experiment=experiment, status="RUNNING")
    finished = list(Run.objects.filter(experiment=experiment, status="FINISHED").order_by("start_time")[:3])
    live = Deployment.objects.filter(status="live", environment__name="production").get()
    latest = {m.key: m for m in LatestMetric.objects.filter(run=running)}
    params = dict(Param.objects.filter(run=running).values_list("key", "value"))
    _, token = api_token_create(user=User.objects.get(username=USERNAME), name="screenshots")
    return {
        "experiment": experiment.pk,
        "running": {
            "id": running.run_uuid,
            "last_step": latest["loss"].step,
            "loss": latest["loss"].value,
            "accuracy": latest["accuracy"].value,
            "val_loss": latest["val_loss"].value,
            "lr": float(params["learning_rate"]),
            "total_steps": int(params["total_steps"]),
        },
        "compare": [run.run_uuid for run in finished],
        "deployment": live.pk,
        "token": token,
    }


def log_points(base_url: str, token: str, run: dict, count: int) -> None:
    """Continue the running run's curves through the API (one batch per step), as its training would."""
    import random
    import urllib.request

    rng = random.Random(3)
    loss, acc, val = run["loss"], run["accuracy"], run["val_loss"]
    for step in range(run["last_step"] + 1, run["last_step"] + 1 + count):
        loss = loss * 0.996 + rng.gauss(0, 0.004)
        rate = run["lr"] * 0.5 * (1 + math.cos(math.pi * step / run["total_steps"]))
        metrics = [{"key": "loss", "value": loss, "step": step}, {"key": "learning_rate", "value": rate, "step": step}]
        if step % 5 == 0:
            acc += (0.97 - acc) * 0.03 + rng.gauss(0, 0.002)
            val = val * 0.998 + rng.gauss(0, 0.003)
            metrics.append({"key": "accuracy", "value": acc, "step": step})
            metrics.append({"key": "val_loss", "value": val, "step": step})
        request = urllib.request.Request(
            f"{base_url}/api/v1/runs/{run['id']}/log-batch/",
            data=json.dumps({"metrics": metrics}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass
        time.sleep(0.05)


def main() -> None:
    """Seed, serve, shoot."""
    from playwright.sync_api import sync_playwright

    from tests.browser.helpers import launch_chromium, login
    from tests.server import server_env, start_daphne

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlp-screenshots-") as tmp:
        var_dir = Path(tmp)
        manage(var_dir, "migrate", "--noinput", "-v0")
        manage(var_dir, "seed_demo")
        ids = demo_ids(var_dir)
        env = server_env(f"sqlite:///{var_dir / 'db.sqlite3'}", MLPLATFORM_VAR_DIR=str(var_dir))
        env.pop("REDIS_URL", None)
        server = start_daphne(env, var_dir / "daphne.log")
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
        try:
            with sync_playwright() as playwright:
                browser = launch_chromium(playwright)
                context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(str(e)))
                login(page, USERNAME, PASSWORD)

                # Pick the columns a reviewer would, as many as fit a laptop-width table without scrolling
                # sideways (the choice is remembered in localStorage), and tick two runs.
                columns = ["metrics.accuracy", "metrics.loss", "metrics.val_loss", "params.learning_rate"]
                columns += ["params.optimizer"]
                page.goto(f"/experiments/{ids['experiment']}/")
                page.evaluate(
                    "([key, value]) => localStorage.setItem(key, JSON.stringify(value))",
                    [f"mlp.runs.columns.{ids['experiment']}", columns],
                )
                page.reload()
                page.wait_for_selector("#live-indicator.connected")
                for box in page.locator('input[name="runs"]').all()[1:3]:
                    box.check()
                wrap = page.locator("#runs-table").locator("xpath=..")
                if wrap.evaluate("el => el.scrollWidth > el.clientWidth"):
                    raise SystemExit("The runs table scrolls sideways: pick fewer columns for its screenshot.")
                page.screenshot(path=str(OUT / "runs-table.png"), full_page=True)
                print("runs-table.png")

                running = ids["running"]
                page.goto(f"/runs/{running['id']}/")
                page.wait_for_selector("#live-indicator.connected")
                log_points(server.url, ids["token"], running, 60)
                page.wait_for_function(
                    "Number(document.querySelector('[data-metric-key=loss] .chart').dataset.points) >= "
                    f"{running['last_step'] + 61}"
                )
                page.screenshot(path=str(OUT / "run-live.png"), full_page=True)
                print("run-live.png")

                page.goto("/compare/?" + "&".join(f"runs={run}" for run in ids["compare"]))
                page.wait_for_selector("[data-compare-chart] canvas")
                page.screenshot(path=str(OUT / "compare.png"), full_page=True)
                print("compare.png")

                page.goto(f"/deployments/{ids['deployment']}/")
                page.wait_for_selector("#live-indicator.connected")
                page.screenshot(path=str(OUT / "deployment.png"), full_page=True)
                print("deployment.png")

                page.goto("/deployments/")
                page.screenshot(path=str(OUT / "deployments.png"), full_page=True)
                print("deployments.png")
                browser.close()
                if errors:
                    raise SystemExit("The browser reported errors:\n" + "\n".join(errors))
        finally:
            server.stop()
    print(f"Screenshots written to {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
