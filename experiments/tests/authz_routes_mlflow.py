"""Authorization matrix declarations for the MLflow façade's tracking routes (unnamed: declared with ``path``).

Tracking, artifacts, logged models and /api/3.0/; the registry's MLflow routes are in
registry/tests/authz_routes_mlflow.py and reuse the helpers here.
MLflow statuses: anonymous 401, not a member 404 (RESOURCE_DOES_NOT_EXIST), role too low 403
(PERMISSION_DENIED); an unsupported feature answers the same status to every signed-in caller.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from experiments.artifacts import run_artifact_dir
from experiments.models import LifecycleStage
from experiments.tests.factories import (
    ExperimentFactory,
    ExperimentTagFactory,
    MetricFactory,
    RunFactory,
    RunTagFactory,
)
from tests.authz import Route, World, statuses

M = "/api/2.0/mlflow"
A = "/api/2.0/mlflow-artifacts"
SIGNED_IN = statuses(401, 200, 200, 200, 200, 200, 200)
READ = statuses(401, 404, 200, 200, 200, 200, 200)
WRITE = statuses(401, 404, 403, 200, 200, 200, 403)
ADMIN = statuses(401, 404, 403, 403, 200, 200, 403)


def q(url: str, **params: object) -> str:
    return f"{url}?{urlencode(params)}" if params else url


def _experiment(world: World, **fields: object):
    return ExperimentFactory(team=world.team, **fields)


def _run(world: World, **fields: object):
    return RunFactory(experiment=_experiment(world), **fields)


def _logged_model(world: World):
    from experiments.mlflow.services import logged_model_create

    run = _run(world)
    return logged_model_create(user=world.users["owner"], experiment=run.experiment, name="clf", source_run=run)


def _tagged_logged_model(world: World):
    from experiments.mlflow.services import logged_model_set_tags

    model = _logged_model(world)
    return logged_model_set_tags(user=world.users["owner"], model=model, tags=[{"key": "k", "value": "v"}])


def outputs_body(world: World) -> dict:
    model = _logged_model(world)
    return {"run_id": model.source_run.run_uuid, "models": [{"model_id": model.model_id, "step": 0}]}


def run_with_file(world: World):
    run = _run(world)
    folder = run_artifact_dir(run)
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text("weights")
    return run


def proxied(run, name: str = "model.txt") -> str:
    """The mlflow-artifacts path of a run's file: <experiment id>/<run uuid>/artifacts/<name>."""
    return f"{run.experiment_id}/{run.run_uuid}/artifacts/{name}"


def team_header(world: World) -> dict[str, str]:
    return {"X-Team": world.team.slug}


def post(route: str, expect: dict, body, **extra) -> Route:
    return Route("POST", f"api/2.0/mlflow/{route}", expect, path=lambda w: f"{M}/{route}", body=body, **extra)


def get(route: str, expect: dict, query, **extra) -> Route:
    return Route("GET", f"api/2.0/mlflow/{route}", expect, path=lambda w: q(f"{M}/{route}", **query(w)), **extra)


def send(method: str, route: str, expect: dict, body) -> Route:
    return Route(method, f"api/2.0/mlflow/{route}", expect, path=lambda w: f"{M}/{route}", body=body)


TRACKING_ROUTES = [
    # experiments
    post("experiments/create", WRITE, lambda w: {"name": "new"}, headers=team_header),
    post("experiments/create", SIGNED_IN, lambda w: {"name": "new"}),  # no X-Team: the caller's personal team
    get("experiments/get", READ, lambda w: {"experiment_id": _experiment(w).pk}),
    get("experiments/get-by-name", READ, lambda w: {"experiment_name": _experiment(w, name="by-name").name}),
    get("experiments/search", SIGNED_IN, lambda w: {"max_results": 10}),
    post("experiments/search", SIGNED_IN, lambda w: {"max_results": 10}),
    post("experiments/update", WRITE, lambda w: {"experiment_id": str(_experiment(w).pk), "new_name": "renamed"}),
    post("experiments/delete", ADMIN, lambda w: {"experiment_id": str(_experiment(w).pk)}),
    post(
        "experiments/restore",
        ADMIN,
        lambda w: {"experiment_id": str(_experiment(w, lifecycle_stage=LifecycleStage.DELETED).pk)},
    ),
    post(
        "experiments/set-experiment-tag",
        WRITE,
        lambda w: {"experiment_id": str(_experiment(w).pk), "key": "k", "value": "v"},
    ),
    post(
        "experiments/delete-experiment-tag",
        WRITE,
        lambda w: {
            "experiment_id": str(ExperimentTagFactory(experiment=_experiment(w), key="k").experiment_id),
            "key": "k",
        },
    ),
    # runs
    post("runs/create", WRITE, lambda w: {"experiment_id": str(_experiment(w).pk), "start_time": 1}),
    post("runs/update", WRITE, lambda w: {"run_id": _run(w).run_uuid, "status": "FINISHED", "end_time": 2}),
    post("runs/delete", ADMIN, lambda w: {"run_id": _run(w).run_uuid}),
    post("runs/restore", ADMIN, lambda w: {"run_id": _run(w, lifecycle_stage=LifecycleStage.DELETED).run_uuid}),
    get("runs/get", READ, lambda w: {"run_id": _run(w).run_uuid}),
    post("runs/search", READ, lambda w: {"experiment_ids": [str(_experiment(w).pk)]}),
    post(
        "runs/log-metric",
        WRITE,
        lambda w: {"run_id": _run(w).run_uuid, "key": "loss", "value": 0.5, "timestamp": 1, "step": 0},
    ),
    post("runs/log-parameter", WRITE, lambda w: {"run_id": _run(w).run_uuid, "key": "lr", "value": "0.1"}),
    post("runs/set-tag", WRITE, lambda w: {"run_id": _run(w).run_uuid, "key": "k", "value": "v"}),
    post("runs/delete-tag", WRITE, lambda w: {"run_id": RunTagFactory(run=_run(w), key="k").run.run_uuid, "key": "k"}),
    post(
        "runs/log-batch",
        WRITE,
        lambda w: {"run_id": _run(w).run_uuid, "metrics": [{"key": "loss", "value": 1.0, "timestamp": 1, "step": 0}]},
    ),
    post(
        "runs/log-model",
        WRITE,
        lambda w: {"run_id": _run(w).run_uuid, "model_json": json.dumps({"artifact_path": "model", "flavors": {}})},
    ),
    post("runs/log-inputs", WRITE, lambda w: {"run_id": _run(w).run_uuid, "datasets": []}),
    post("runs/outputs", WRITE, outputs_body),
    # metrics and artifacts
    get(
        "metrics/get-history",
        READ,
        lambda w: {"run_id": MetricFactory(run=_run(w), key="loss").run.run_uuid, "metric_key": "loss"},
    ),
    get(
        "metrics/get-history-bulk-interval",
        READ,
        lambda w: {"run_ids": MetricFactory(run=_run(w), key="loss").run.run_uuid, "metric_key": "loss"},
    ),
    get("artifacts/list", READ, lambda w: {"run_id": run_with_file(w).run_uuid}),
    # logged models (MLflow 3)
    post("logged-models", WRITE, lambda w: {"experiment_id": str(_experiment(w).pk), "name": "clf"}),
    post("logged-models/search", READ, lambda w: {"experiment_ids": [str(_logged_model(w).experiment_id)]}),
    Route(
        "GET",
        "api/2.0/mlflow/logged-models/<str:model_id>",
        READ,
        path=lambda w: f"{M}/logged-models/{_logged_model(w).model_id}",
    ),
    Route(
        "PATCH",
        "api/2.0/mlflow/logged-models/<str:model_id>",
        WRITE,
        path=lambda w: f"{M}/logged-models/{_logged_model(w).model_id}",
        body=lambda w: {"status": "LOGGED_MODEL_READY"},
    ),
    Route(
        "DELETE",
        "api/2.0/mlflow/logged-models/<str:model_id>",
        ADMIN,
        path=lambda w: f"{M}/logged-models/{_logged_model(w).model_id}",
    ),
    Route(
        "PATCH",
        "api/2.0/mlflow/logged-models/<str:model_id>/tags",
        WRITE,
        path=lambda w: f"{M}/logged-models/{_logged_model(w).model_id}/tags",
        body=lambda w: {"tags": [{"key": "k", "value": "v"}]},
    ),
    Route(
        "DELETE",
        "api/2.0/mlflow/logged-models/<str:model_id>/tags/<path:tag_key>",
        WRITE,
        path=lambda w: f"{M}/logged-models/{_tagged_logged_model(w).model_id}/tags/k",
    ),
    Route(
        "POST",
        "api/2.0/mlflow/logged-models/<str:model_id>/params",
        WRITE,
        path=lambda w: f"{M}/logged-models/{_logged_model(w).model_id}/params",
        body=lambda w: {"params": [{"key": "lr", "value": "0.1"}]},
    ),
    Route(
        "GET",
        "api/2.0/mlflow/logged-models/<str:model_id>/artifacts/directories",
        READ,
        path=lambda w: f"{M}/logged-models/{_logged_model(w).model_id}/artifacts/directories",
    ),
    # proxied artifacts (mlflow-artifacts)
    Route(
        "GET",
        "api/2.0/mlflow-artifacts/artifacts",
        READ,
        path=lambda w: q(f"{A}/artifacts", path=proxied(run_with_file(w), "").rstrip("/")),
    ),
    Route(
        "GET",
        "api/2.0/mlflow-artifacts/artifacts/",
        READ,
        path=lambda w: q(f"{A}/artifacts/", path=proxied(run_with_file(w), "").rstrip("/")),
    ),
    Route(
        "GET",
        "api/2.0/mlflow-artifacts/artifacts/<path:artifact_path>",
        READ,
        path=lambda w: f"{A}/artifacts/{proxied(run_with_file(w))}",
    ),
    Route(
        "PUT",
        "api/2.0/mlflow-artifacts/artifacts/<path:artifact_path>",
        WRITE,
        path=lambda w: f"{A}/artifacts/{proxied(_run(w), 'new.txt')}",
        body=lambda w: {"any": "bytes"},
    ),
    Route(
        "DELETE",
        "api/2.0/mlflow-artifacts/artifacts/<path:artifact_path>",
        ADMIN,
        path=lambda w: f"{A}/artifacts/{proxied(run_with_file(w))}",
    ),
]


NOT_IMPLEMENTED = statuses(401, 501, 501, 501, 501, 501, 501)

UNSUPPORTED_AND_V3_ROUTES = [
    # Features MLflow's local-storage server does not offer either: the same 501 for every signed-in caller.
    post("artifacts/presigned-upload-url", NOT_IMPLEMENTED, lambda w: {"run_id": _run(w).run_uuid, "path": "x"}),
    post("artifacts/presigned-download-url", NOT_IMPLEMENTED, lambda w: {"run_id": _run(w).run_uuid, "path": "x"}),
    *(
        Route(
            "POST",
            f"api/2.0/mlflow-artifacts/mpu/{step}/<path:artifact_path>",
            NOT_IMPLEMENTED,
            path=lambda w, step=step: f"{A}/mpu/{step}/{proxied(_run(w), 'big.bin')}",
            body=lambda w: {},
        )
        for step in ("create", "complete", "abort")
    ),
    Route(
        "GET",
        "api/2.0/mlflow-artifacts/presigned/<path:artifact_path>",
        NOT_IMPLEMENTED,
        path=lambda w: f"{A}/presigned/{proxied(run_with_file(w))}",
    ),
    # server-info is public, like MLflow's own.
    Route(
        "GET",
        "api/3.0/mlflow/server-info",
        statuses(200, 200, 200, 200, 200, 200, 200),
        path=lambda w: "/api/3.0/mlflow/server-info",
    ),
    Route(
        "GET",
        "api/3.0/mlflow/metrics/get-history",
        READ,
        path=lambda w: q(
            "/api/3.0/mlflow/metrics/get-history",
            run_id=MetricFactory(run=_run(w), key="loss").run.run_uuid,
            metric_key="loss",
        ),
    ),
]

MLFLOW_ROUTES = [*TRACKING_ROUTES, *UNSUPPORTED_AND_V3_ROUTES]
