"""Release-engineering scenario against a running server: registry, deployments, webhooks, live stream.

How to run: start the server (``make run``, which serves daphne on http://127.0.0.1:8000 and prints the
admin password), create an API token (``curl -u admin:PASSWORD -X POST -H 'Content-Type: application/json'
-d '{"name": "demo"}' http://127.0.0.1:8000/api/v1/tokens/`` and copy ``token``), then run
``.venv/bin/python bench/demo_registry_scenario.py http://127.0.0.1:8000 mlp_...`` (or set
``MLPLATFORM_URL`` / ``MLPLATFORM_TOKEN``; ``--user``/``--password`` works too and creates a token). The
script creates a fresh team, an experiment with two runs that log a model artifact, a webhook pointing at a
receiver it starts on 127.0.0.1, and the staging → production path; then it registers v1 and v2 from the
runs, deploys v1 to staging, promotes it to production, deploys v2 to production, rolls back to v1, adds an
alert rule and posts monitoring metrics that raise and then resolve an alert. A WebSocket subscriber prints
every live message of each deployment and the receiver prints every signed webhook it gets (checking the
signature). Everything it did stays visible in the API and in the admin (Deployments, Webhook deliveries,
Audit events). Only the standard library and ``websockets`` are used; exits non-zero when a step's effect
is not seen.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from websockets.asyncio.client import connect

EVENT_TYPES = [
    "model_version.created",
    "model_version.stage_changed",
    "model_version.alias_changed",
    "deployment.changed",
    "monitoring.alert",
]


def verify_signature(secret: str, body: bytes, header: str, tolerance: int = 300, now: float | None = None) -> bool:
    """Receiver side: True when ``header`` signs ``body`` with ``secret`` and is at most ``tolerance`` s old."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        received = parts["v1"]
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)


class Api:
    """A tiny JSON client for the native API."""

    def __init__(self, base_url: str, authorization: str) -> None:
        self.base = base_url.rstrip("/") + "/api/v1/"
        self.authorization = authorization

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None, expect_error: int = 0) -> Any:
        """Send one request; stop with the server's error envelope on an unexpected status."""
        headers = {"Authorization": self.authorization}
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif raw is not None:
            headers["Content-Type"] = "application/octet-stream"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            if exc.code == expect_error:
                return json.loads(text)
            raise SystemExit(f"{method} {path} -> {exc.code}: {text}") from exc
        if expect_error:
            raise SystemExit(f"{method} {path}: expected HTTP {expect_error}, got success")
        return json.loads(payload) if payload else None


class Receiver:
    """Webhook receiver on 127.0.0.1: verifies and prints every delivery."""

    def __init__(self, host: str) -> None:
        self.secret = ""
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = verify_signature(receiver.secret, body, self.headers.get("X-Mlplatform-Signature", ""))
                event = json.loads(body)
                receiver.events.append(event)
                receiver.bad_signatures += 0 if ok else 1
                print(f"  [webhook] {event['type']:<28} signature {'ok' if ok else 'INVALID'}  {summarise(event)}")
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/mlplatform-webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def summarise(event: dict[str, Any]) -> str:
    """One line about a webhook payload."""
    data = event.get("data", {})
    if "deployment" in data and "action" in data:
        d = data["deployment"]
        return f"{data['action']}: {d['model']} v{d['version']} in {d['environment']} is {d['status']}"
    if "alert" in data:
        a = data["alert"]
        return f"{a['metric']} alert {a['state']} (mean {a['value']})"
    if "model_version" in data:
        v = data["model_version"]
        return f"{v['name']} v{v['version']} stage {v['current_stage']}"
    if "alias" in data:
        return f"@{data['alias']} -> v{data['to_version']}"
    return ""


class LiveStream:
    """WebSocket subscribers, one per deployment, on a background event loop."""

    def __init__(self, base_url: str, token: str) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self.ws_base = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.token = token
        self.messages: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def subscribe(self, deployment_id: int) -> None:
        """Start printing a deployment's live messages (replaying from seq 0, so nothing is missed)."""
        started = threading.Event()
        task = asyncio.run_coroutine_threadsafe(self._listen(deployment_id, started), self.loop)
        if not started.wait(10):
            error = task.exception(timeout=1) if task.done() else "no answer"
            raise SystemExit(f"could not open the live stream of deployment {deployment_id}: {error}")

    async def _listen(self, deployment_id: int, started: threading.Event) -> None:
        query = urllib.parse.urlencode({"since": 0, "token": self.token})
        url = f"{self.ws_base}/ws/deployments/{deployment_id}/?{query}"
        async with connect(url, origin=self.origin) as socket:
            started.set()
            async for raw in socket:
                message = json.loads(raw)
                self.messages.append(message)
                print(f"  [ws d{deployment_id}] {describe(message)}")


def describe(message: dict[str, Any]) -> str:
    """One line about a live message."""
    head = f"seq={message['seq']:<3} {message['kind']:<8}"
    if message["kind"] == "metrics":
        return head + " " + ", ".join(f"{k}: {len(v)} pts" for k, v in message["metrics"].items())
    event = message["event"]
    if message["kind"] == "alert":
        return head + " " + event["message"]
    return head + f" {event['kind']}: {event['from_status'] or '-'} -> {event['to_status'] or '-'}  {event['message']}"


def step(title: str) -> None:
    """Print a step header."""
    print(f"\n== {title}")


def wait_for(predicate: Any, what: str, timeout: float = 15) -> None:
    """Poll until ``predicate()`` is true, or stop with a message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def main() -> int:
    """Run the scenario; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", nargs="?", default=os.environ.get("MLPLATFORM_URL", "http://127.0.0.1:8000"))
    parser.add_argument("token", nargs="?", default=os.environ.get("MLPLATFORM_TOKEN", ""))
    parser.add_argument("--user", default=os.environ.get("MLPLATFORM_USERNAME", ""))
    parser.add_argument("--password", default=os.environ.get("MLPLATFORM_PASSWORD", ""))
    parser.add_argument("--receiver-host", default="127.0.0.1", help="Interface the webhook receiver listens on.")
    args = parser.parse_args()

    token = args.token
    if not token:
        if not (args.user and args.password):
            parser.error("give an API token (argument or MLPLATFORM_TOKEN) or --user and --password")
        basic = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
        token = Api(args.base_url, f"Basic {basic}").call("POST", "tokens/", {"name": "demo-registry-scenario"})[
            "token"
        ]
    api = Api(args.base_url, f"Bearer {token}")
    receiver = Receiver(args.receiver_host)
    live = LiveStream(args.base_url, token)
    stamp = time.strftime("%Y%m%d-%H%M%S")

    step("Set-up: team, webhook, environments, two training runs that log a model")
    team = api.call("POST", "teams/", {"name": f"release demo {stamp}"})
    hook = api.call(
        "POST",
        "webhooks/",
        {"team": team["id"], "name": "demo receiver", "url": receiver.url, "event_types": EVENT_TYPES},
    )
    receiver.secret = hook["secret"]
    staging = api.call("POST", "environments/", {"team": team["id"], "name": "staging"})
    production = api.call("POST", "environments/", {"team": team["id"], "name": "production"})
    experiment = api.call("POST", "experiments/", {"team": team["id"], "name": f"fraud training {stamp}"})
    runs = []
    for attempt in (1, 2):
        run = api.call("POST", "runs/", {"experiment_id": experiment["id"], "name": f"train-{attempt}"})
        api.call("PUT", f"runs/{run['run_id']}/artifacts/model/MLmodel", raw=b"flavors:\n  python_function: {}\n")
        runs.append(run["run_id"])
    print(f"  team {team['id']}, webhook {hook['id']} -> {receiver.url}, runs {', '.join(runs)}")
    hook_test = api.call("POST", f"webhooks/{hook['id']}/test/")
    print(f"  test delivery {hook_test['id']} queued")

    step("Register two versions from the runs")
    model = api.call("POST", "models/", {"team": team["id"], "name": f"fraud-detector-{stamp}"})
    for run_id in runs:
        version = api.call(
            "POST", f"models/{model['id']}/versions/", {"source": f"runs:/{run_id}/model", "run_id": run_id}
        )
        print(f"  registered v{version['version']} from run {version['run_id']} ({version['status']})")
    api.call("PUT", f"models/{model['id']}/aliases/champion/", {"version": 1})

    step("Deploy v1 to staging")
    d_staging = api.call(
        "POST",
        "deployments/",
        {
            "model": model["id"],
            "version": 1,
            "environment": staging["id"],
            "endpoint_url": "http://staging.local/predict",
        },
    )
    live.subscribe(d_staging["id"])
    api.call("POST", f"models/{model['id']}/versions/1/stage/", {"stage": "staging"})

    step("Promote v1 from staging to production")
    d_prod_v1 = api.call(
        "POST", f"deployments/{d_staging['id']}/promote/", {"endpoint_url": "http://prod.local/predict"}
    )
    live.subscribe(d_prod_v1["id"])
    api.call(
        "POST", f"models/{model['id']}/versions/1/stage/", {"stage": "production", "archive_existing_versions": True}
    )

    step("Deploy v2 to production (v1 is retired there)")
    d_prod_v2 = api.call("POST", "deployments/", {"model": model["id"], "version": 2, "environment": production["id"]})
    live.subscribe(d_prod_v2["id"])

    step("Roll production back to v1")
    d_rollback = api.call("POST", f"deployments/{d_prod_v2['id']}/rollback/", {"comment": "v2 misbehaves"})
    live.subscribe(d_rollback["id"])
    print(f"  production now serves v{d_rollback['version']} (deployment {d_rollback['id']}, {d_rollback['origin']})")
    refused = api.call("POST", f"deployments/{d_staging['id']}/rollback/", {}, expect_error=409)
    print(f"  rolling back staging is refused: {refused['error']['message']}")

    step("Monitoring: an alert rule, then metrics that trip it and clear it")
    api.call(
        "POST",
        f"deployments/{d_rollback['id']}/alert-rules/",
        {"metric": "latency_ms", "comparison": "gt", "threshold": 200, "window_seconds": 60},
    )
    now = int(time.time() * 1000)

    def batch(values: list[float], offset: int) -> dict[str, Any]:
        points = [{"key": "latency_ms", "value": v, "timestamp": now + offset + i} for i, v in enumerate(values)]
        points += [{"key": "error_rate", "value": 0.01, "timestamp": now + offset}]
        return {"metrics": points}

    for values, offset in (([50.0] * 10, 0), ([900.0] * 10, 1000), ([10.0] * 60, 2000)):
        result = api.call("POST", f"deployments/{d_rollback['id']}/metrics/", batch(values, offset))
        print(f"  posted {result['count']} points (seq {result['seq']})")
    alerts = api.call("GET", f"deployments/{d_rollback['id']}/alerts/")["results"]
    print(f"  alerts on the deployment: {[(a['metric'], a['state'], round(a['value'], 1)) for a in alerts]}")

    step("Checking what the receiver, the live stream and the API saw")
    expected_webhooks = {
        "webhook.test": 1,
        "model_version.created": 2,
        "model_version.alias_changed": 1,
        "model_version.stage_changed": 2,
        "deployment.changed": 4,
        "monitoring.alert": 2,
    }
    # Deliveries run in the server's background pool, in any order: wait for all of them, not just the last.
    wait_for(
        lambda: all(Counter(e["type"] for e in receiver.events)[t] >= n for t, n in expected_webhooks.items()),
        "every webhook delivery",
    )
    wait_for(lambda: Counter(m["kind"] for m in live.messages)["alert"] >= 2, "the alerts on the live stream")
    kinds = Counter(event["type"] for event in receiver.events)
    live_kinds = Counter(message["kind"] for message in live.messages)
    print(f"  webhooks: {dict(kinds)}; bad signatures: {receiver.bad_signatures}")
    print(f"  live messages: {dict(live_kinds)}")
    listing = api.call("GET", f"deployments/?model={model['id']}&status=live")["results"]
    print(
        "  live now: " + "; ".join(f"v{d['version']} in {d['environment_name']} by {d['created_by']}" for d in listing)
    )
    events = api.call("GET", f"deployments/{d_rollback['id']}/events/")["results"]
    print("  events of the rolled-back deployment (API): " + ", ".join(f"#{e['seq']} {e['kind']}" for e in events))

    def recorded_statuses() -> Counter:
        deliveries = api.call("GET", f"webhooks/{hook['id']}/deliveries/?page_size=100")["results"]
        return Counter(d["status"] for d in deliveries)

    # The server records an attempt just after the receiver has answered it.
    all_succeeded = Counter({"succeeded": sum(expected_webhooks.values())})
    wait_for(lambda: recorded_statuses() == all_succeeded, "every delivery recorded as succeeded")
    delivered = recorded_statuses()
    print(f"  webhook deliveries recorded (API): {dict(delivered)}")
    problems = []
    for event_type, count in expected_webhooks.items():
        if kinds[event_type] != count:
            problems.append(f"expected {count} {event_type} webhook(s), the receiver got {kinds[event_type]}")
    if [e["kind"] for e in events] != ["rolled_back", "alert_raised", "alert_resolved"]:
        problems.append("the API should list rolled_back, alert_raised, alert_resolved for the restored deployment")
    if delivered != all_succeeded:
        problems.append("every delivery should be recorded as succeeded")
    if receiver.bad_signatures:
        problems.append("some webhook signatures did not verify")
    if not (live_kinds["status"] and live_kinds["metrics"] and live_kinds["alert"] >= 2):
        problems.append("the live stream missed status, metrics or alert messages")
    if sorted((d["environment_name"], d["version"]) for d in listing) != [("production", 1), ("staging", 1)]:
        problems.append("v1 should be live in staging and production")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    print("\nDone." if not problems else "\nFailed.")
    admin = args.base_url.rstrip("/") + "/admin/registry/"
    print(f"Admin: {admin}deployment/?model__id__exact={model['id']} (open one for its events; 'Roll back' action)")
    print(f"       {admin}registeredmodel/{model['id']}/change/ (versions inline)")
    print(f"       {admin}webhook/{hook['id']}/change/ (deliveries inline)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
