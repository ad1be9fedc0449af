"""Authorization matrix declarations for every experiments route (viewer reads, editor writes, admin deletes)."""

from __future__ import annotations

from experiments.artifacts import run_artifact_dir
from experiments.models import LifecycleStage
from experiments.tests.authz_routes_mlflow import MLFLOW_ROUTES
from experiments.tests.factories import ExperimentFactory, ExperimentTagFactory, RunFactory, RunTagFactory
from tests.authz import Route, World, statuses

SIGNED_IN_OK = statuses(401, 200, 200, 200, 200, 200, 200)
READ = statuses(401, 404, 200, 200, 200, 200, 200)
WRITE = statuses(401, 404, 403, 200, 200, 200, 403)
CREATE = statuses(401, 404, 403, 201, 201, 201, 403)
WRITE_NO_CONTENT = statuses(401, 404, 403, 204, 204, 204, 403)
DELETE = statuses(401, 404, 403, 403, 204, 204, 403)
RESTORE = statuses(401, 404, 403, 403, 200, 200, 403)
OTHER_TEAMS_OBJECT = statuses(401, 200, 404, 404, 404, 404, 200)


def experiment(world: World) -> dict:
    return {"experiment_id": ExperimentFactory(team=world.team).pk}


def deleted_experiment(world: World) -> dict:
    return {"experiment_id": ExperimentFactory(team=world.team, lifecycle_stage=LifecycleStage.DELETED).pk}


def experiment_tag(world: World) -> dict:
    tag = ExperimentTagFactory(experiment=ExperimentFactory(team=world.team), key="owner")
    return {"experiment_id": tag.experiment_id, "key": "owner"}


def _run(world: World, **fields: object):
    return RunFactory(experiment=ExperimentFactory(team=world.team), **fields)


def run(world: World) -> dict:
    return {"run_uuid": _run(world).run_uuid}


def other_teams_run(world: World) -> dict:
    return {"run_uuid": RunFactory(experiment=ExperimentFactory(team=world.other_team)).run_uuid}


def deleted_run(world: World) -> dict:
    return {"run_uuid": _run(world, lifecycle_stage=LifecycleStage.DELETED).run_uuid}


def run_tag(world: World) -> dict:
    tag = RunTagFactory(run=_run(world), key="stage")
    return {"run_uuid": tag.run.run_uuid, "key": "stage"}


def metric_key(world: World) -> dict:
    return {"run_uuid": _run(world).run_uuid, "key": "loss"}


def artifact(world: World) -> dict:
    run = _run(world)
    folder = run_artifact_dir(run)
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text("weights")
    return {"run_uuid": run.run_uuid, "path": "model.txt"}


def new_artifact(world: World) -> dict:
    return {"run_uuid": _run(world).run_uuid, "path": "plots/loss.json"}


def bulk_history_query(world: World) -> dict:
    return {"run_id": _run(world).run_uuid, "key": "loss"}


ROUTES = [
    Route("GET", "experiment-list", SIGNED_IN_OK),
    # No team given: the experiment goes to the caller's personal team, so every signed-in user may create.
    Route("POST", "experiment-list", statuses(401, 201, 201, 201, 201, 201, 201), body=lambda w: {"name": "new"}),
    Route("POST", "experiment-list", CREATE, body=lambda w: {"name": "new", "team": w.team.pk}),
    Route("GET", "experiment-detail", READ, kwargs=experiment),
    Route("PATCH", "experiment-detail", WRITE, kwargs=experiment, body=lambda w: {"description": "better"}),
    Route("DELETE", "experiment-detail", DELETE, kwargs=experiment),
    Route("POST", "experiment-restore", RESTORE, kwargs=deleted_experiment),
    Route("POST", "experiment-tags", WRITE, kwargs=experiment, body=lambda w: {"key": "k", "value": "v"}),
    Route("DELETE", "experiment-tag-detail", WRITE_NO_CONTENT, kwargs=experiment_tag),
    Route("GET", "run-list", SIGNED_IN_OK),
    Route("POST", "run-list", CREATE, body=lambda w: {"experiment_id": ExperimentFactory(team=w.team).pk}),
    Route("GET", "run-detail", READ, kwargs=run),
    Route("GET", "run-detail", OTHER_TEAMS_OBJECT, kwargs=other_teams_run),
    Route("PATCH", "run-detail", WRITE, kwargs=run, body=lambda w: {"status": "FINISHED"}),
    Route("DELETE", "run-detail", DELETE, kwargs=run),
    Route("POST", "run-restore", RESTORE, kwargs=deleted_run),
    Route(
        "POST",
        "run-log-batch",
        WRITE,
        kwargs=run,
        body=lambda w: {"metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 1}]},
    ),
    Route("POST", "run-tags", WRITE, kwargs=run, body=lambda w: {"key": "k", "value": "v"}),
    Route("DELETE", "run-tag-detail", WRITE_NO_CONTENT, kwargs=run_tag),
    Route("GET", "run-events", READ, kwargs=run),
    Route("GET", "run-metric-history", READ, kwargs=metric_key),
    Route("GET", "metric-history-bulk", READ, body=bulk_history_query),
    Route("GET", "run-artifacts", READ, kwargs=run),
    Route("GET", "run-artifact", READ, kwargs=artifact),
    Route("PUT", "run-artifact", CREATE, kwargs=new_artifact, body=lambda w: {"any": "bytes"}),
    Route("DELETE", "run-artifact", DELETE, kwargs=artifact),
    # The MLflow façade's routes (unnamed; declared by route).
    *MLFLOW_ROUTES,
]
