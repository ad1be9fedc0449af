"""Registered models and versions in MLflow's JSON shapes (``mlflow.protos.model_registry_pb2``).

Versions are strings, times milliseconds, tags ``[{key, value}]``; a version lists its aliases by
name, a model lists ``{alias, version}`` pairs and its latest version per stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from experiments.mlflow.render import key_values, ms
from registry.models import ModelVersion, RegisteredModel

# A version registered from an MLflow 3 logged model has the source ``models:/m-<32 hex>``; MLflow names the
# model in the version's ``model_id`` too.
LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[0-9a-f]{32})(?:/|$)")


def _username(user: Any) -> str:
    return user.get_username() if user is not None else ""


def model_version_json(version: ModelVersion) -> dict[str, Any]:
    """A ``ModelVersion`` message; ``version`` comes from ``registry.selectors.version_queryset``."""
    data: dict[str, Any] = {
        "name": version.model.name,
        "version": str(version.version),
        "creation_timestamp": ms(version.created_at),
        "last_updated_timestamp": ms(version.updated_at),
        "user_id": _username(version.created_by),
        "current_stage": version.current_stage,
        "description": version.description,
        "source": version.source,
        "run_link": version.run_link,
        "status": version.status,
        "tags": key_values(version.tags.all()),
        "aliases": [alias.alias for alias in version.aliases.all()],
    }
    if version.run_id is not None and version.run is not None:
        data["run_id"] = version.run.run_uuid
    if version.status_message:
        data["status_message"] = version.status_message
    if logged_model := LOGGED_MODEL_SOURCE.match(version.source):
        data["model_id"] = logged_model.group(1)
    return data


def registered_model_json(model: RegisteredModel, latest: Iterable[ModelVersion] = ()) -> dict[str, Any]:
    """A ``RegisteredModel`` message; ``model`` comes from ``registry.selectors.model_queryset``."""
    return {
        "name": model.name,
        "creation_timestamp": ms(model.created_at),
        "last_updated_timestamp": ms(model.updated_at),
        "user_id": _username(model.created_by),
        "description": model.description,
        "latest_versions": [model_version_json(version) for version in latest],
        "tags": key_values(model.tags.all()),
        "aliases": [{"alias": alias.alias, "version": str(alias.version.version)} for alias in model.aliases.all()],
    }
