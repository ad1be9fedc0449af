"""The MLflow REST API 2.0 calls the workloads make, identical for every server under test."""

from __future__ import annotations

from typing import Any

import orjson

from bench.driver import Client, Response

PREFIX = "/api/2.0/mlflow"


def metric(key: str, value: float, step: int, timestamp: int) -> dict[str, Any]:
    """One metric point in MLflow's JSON shape."""
    return {"key": key, "value": value, "timestamp": timestamp, "step": step}


def log_batch_body(run_id: str, metrics: list[dict[str, Any]], params: list[dict[str, str]] | None = None) -> bytes:
    """A serialised ``runs/log-batch`` request (built before the clock starts)."""
    return orjson.dumps({"run_id": run_id, "metrics": metrics, "params": params or [], "tags": []})


class Tracking:
    """MLflow tracking calls over one :class:`Client`."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def create_experiment(self, name: str) -> str:
        """Create an experiment; returns its id."""
        return str(self.client.post(f"{PREFIX}/experiments/create", {"name": name}).json()["experiment_id"])

    def create_run(self, experiment_id: str, *, name: str, start_time: int) -> str:
        """Start a run; returns its id."""
        answer = self.client.post(
            f"{PREFIX}/runs/create", {"experiment_id": experiment_id, "run_name": name, "start_time": start_time}
        )
        info = answer.json()["run"]["info"]
        return info.get("run_id") or info["run_uuid"]

    def log_metric(self, run_id: str, key: str, value: float, *, step: int, timestamp: int) -> Response:
        """Log one point."""
        return self.client.post(
            f"{PREFIX}/runs/log-metric",
            {"run_id": run_id, "key": key, "value": value, "step": step, "timestamp": timestamp},
        )

    def log_batch(self, body: bytes) -> Response:
        """Send a pre-serialised log-batch body."""
        return self.client.post(f"{PREFIX}/runs/log-batch", body=body)

    def get_run(self, run_id: str) -> Response:
        """Fetch one run."""
        return self.client.get(f"{PREFIX}/runs/get", {"run_id": run_id})

    def search_runs(
        self, experiment_id: str, *, filter_string: str = "", order_by: list[str] | None = None, max_results: int = 100
    ) -> Response:
        """One page of run search."""
        payload: dict[str, Any] = {"experiment_ids": [experiment_id], "max_results": max_results}
        if filter_string:
            payload["filter"] = filter_string
        if order_by:
            payload["order_by"] = order_by
        return self.client.post(f"{PREFIX}/runs/search", payload)

    def metric_history(self, run_id: str, key: str) -> tuple[int, float, int]:
        """Read a whole metric history, following page tokens; returns (points, seconds, requests)."""
        points, seconds, requests = 0, 0.0, 0
        token = ""
        while True:
            query = {"run_id": run_id, "metric_key": key}
            if token:
                query["page_token"] = token
            answer = self.client.get(f"{PREFIX}/metrics/get-history", query)
            data = answer.json()
            points += len(data.get("metrics", []))
            seconds += answer.seconds
            requests += 1
            token = data.get("next_page_token") or ""
            if not token:
                return points, seconds, requests

    def metric_history_sampled(self, run_id: str, key: str, max_results: int) -> Response:
        """MLflow's own downsampled read (``get-history-bulk-interval``), which the MLflow UI charts use."""
        return self.client.get(
            f"{PREFIX}/metrics/get-history-bulk-interval",
            {"run_ids": run_id, "metric_key": key, "max_results": max_results},
        )
