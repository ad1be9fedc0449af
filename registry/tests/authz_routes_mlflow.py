"""Authorization matrix declarations for the MLflow façade's registry routes (registered models, versions)."""

from __future__ import annotations

from experiments.tests.authz_routes_mlflow import ADMIN, READ, SIGNED_IN, WRITE, get, post, send, team_header
from registry.models import Alias
from registry.tests.factories import ModelVersionFactory, RegisteredModelFactory
from tests.authz import World


def _model(world: World):
    return RegisteredModelFactory(team=world.team, name="fraud")


def _version(world: World):
    return ModelVersionFactory(model=_model(world))


def _alias(world: World):
    version = _version(world)
    Alias.objects.create(model=version.model, alias="champion", version=version)
    return version


def _tagged_model(world: World):
    model = _model(world)
    model.tags.create(key="k", value="v")
    return model


def _tagged_version(world: World):
    version = _version(world)
    version.tags.create(key="k", value="v")
    return version


def version_params(version, **extra: object) -> dict:
    return {"name": version.model.name, "version": str(version.version), **extra}


REGISTRY_ROUTES = [
    post("registered-models/create", WRITE, lambda w: {"name": "new"}, headers=team_header),
    get("registered-models/get", READ, lambda w: {"name": _model(w).name}),
    post("registered-models/rename", WRITE, lambda w: {"name": _model(w).name, "new_name": "renamed"}),
    send("PATCH", "registered-models/update", WRITE, lambda w: {"name": _model(w).name, "description": "d"}),
    send("DELETE", "registered-models/delete", ADMIN, lambda w: {"name": _model(w).name}),
    get("registered-models/search", SIGNED_IN, lambda w: {"max_results": 10}),
    get("registered-models/get-latest-versions", READ, lambda w: {"name": _version(w).model.name}),
    post("registered-models/get-latest-versions", READ, lambda w: {"name": _version(w).model.name}),
    post("registered-models/set-tag", WRITE, lambda w: {"name": _model(w).name, "key": "k", "value": "v"}),
    send("DELETE", "registered-models/delete-tag", WRITE, lambda w: {"name": _tagged_model(w).name, "key": "k"}),
    get("registered-models/alias", READ, lambda w: {"name": _alias(w).model.name, "alias": "champion"}),
    post("registered-models/alias", WRITE, lambda w: version_params(_version(w), alias="champion")),
    send("DELETE", "registered-models/alias", WRITE, lambda w: {"name": _alias(w).model.name, "alias": "champion"}),
    post("model-versions/create", WRITE, lambda w: {"name": _model(w).name, "source": "s3://bucket/model"}),
    get("model-versions/get", READ, lambda w: version_params(_version(w))),
    send("PATCH", "model-versions/update", WRITE, lambda w: version_params(_version(w), description="d")),
    send("DELETE", "model-versions/delete", ADMIN, lambda w: version_params(_version(w))),
    post("model-versions/transition-stage", WRITE, lambda w: version_params(_version(w), stage="Staging")),
    get("model-versions/search", SIGNED_IN, lambda w: {"filter": "name='fraud'"}),
    get("model-versions/get-download-uri", READ, lambda w: version_params(_version(w))),
    post("model-versions/set-tag", WRITE, lambda w: version_params(_version(w), key="k", value="v")),
    send("DELETE", "model-versions/delete-tag", WRITE, lambda w: version_params(_tagged_version(w), key="k")),
]
