"""Reads for logged models and run inputs/outputs, with permission checks."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import Prefetch, QuerySet

from accounts.permissions import Action, authorize, restrict_to_visible
from experiments.mlflow.models import LoggedModel, LoggedModelParam, LoggedModelTag, RunDatasetInput, RunModelLink
from experiments.models import LifecycleStage, Metric, Run
from mlplatform.errors import NotFound
from mlplatform.nonfinite import encode_float

# A metric point as (key, step, timestamp, value); NaN and ±inf as MLflow's strings, so points compare equal.
PointKey = tuple[str, int, int, float | str]

MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")


def with_model_details(queryset: QuerySet[LoggedModel]) -> QuerySet[LoggedModel]:
    """Load tags, params and the source run (3 extra queries for any number of models)."""
    return queryset.select_related("source_run").prefetch_related(
        Prefetch("tags", queryset=LoggedModelTag.objects.order_by("key")),
        Prefetch("params", queryset=LoggedModelParam.objects.order_by("key")),
    )


def logged_model_get(
    *, user: Any, model_id: str, action: Action = Action.READ, allow_deleted: bool = False
) -> LoggedModel:
    """A logged model by its public id, checked for ``action``; deleted ones only with ``allow_deleted``."""
    if not isinstance(model_id, str) or not MODEL_ID_RE.match(model_id):
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    model = with_model_details(LoggedModel.objects.filter(model_id=model_id)).first()
    if model is None or (model.lifecycle_stage != LifecycleStage.ACTIVE and not allow_deleted):
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    authorize(user, action, model, label="Logged model")
    return model


def logged_models_visible(*, user: Any, experiment_ids: Iterable[int]) -> QuerySet[LoggedModel]:
    """Active logged models of the given experiments that the user may read."""
    queryset = restrict_to_visible(LoggedModel.objects.all(), user).filter(
        experiment_id__in=list(experiment_ids), lifecycle_stage=LifecycleStage.ACTIVE
    )
    return with_model_details(queryset)


def point_key(key: str, step: int, timestamp: int, value: float) -> PointKey:
    """A point's identity, as MLflow's metric table has it (its primary key is key, step, timestamp, value)."""
    return (key, step, timestamp, encode_float(float(value)))


def logged_point_keys(*, run: Run, keys: Iterable[str], steps: Iterable[int]) -> set[PointKey]:
    """The identities of the run's points with one of ``keys`` at one of ``steps`` (one query)."""
    rows = Metric.objects.filter(run=run, key__in=set(keys), step__in=set(steps))
    return {
        point_key(m.key, m.step, m.timestamp, m.float_value)
        for m in rows.only("key", "step", "timestamp", "value", "is_nan")
    }


def runs_inputs_outputs(runs: Iterable[Run]) -> dict[int, tuple[dict[str, Any], dict[str, Any]]]:
    """``{run.pk: (inputs, outputs)}`` in MLflow's RunInputs/RunOutputs shapes, in one to three queries.

    Most runs have neither dataset inputs nor model links: one raw query says which tables have rows
    for these runs, and only those are loaded (get-run and search pages skip two ORM queries).
    """
    run_list = list(runs)
    result: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {run.pk: ({}, {}) for run in run_list}
    if not run_list:
        return result
    quote = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(run_list))
    inputs_table, links_table = quote(RunDatasetInput._meta.db_table), quote(RunModelLink._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS(SELECT 1 FROM {inputs_table} WHERE run_id IN ({marks})), "  # noqa: S608
            f"EXISTS(SELECT 1 FROM {links_table} WHERE run_id IN ({marks}))",
            [run.pk for run in run_list] * 2,
        )
        has_inputs, has_links = cursor.fetchone()
    for item in RunDatasetInput.objects.filter(run__in=run_list) if has_inputs else ():
        dataset = {
            "name": item.name,
            "digest": item.digest,
            "source_type": item.source_type,
            "source": item.source,
        }
        if item.schema:
            dataset["schema"] = item.schema
        if item.profile:
            dataset["profile"] = item.profile
        result[item.run_id][0].setdefault("dataset_inputs", []).append({"tags": item.tags, "dataset": dataset})
    if not has_links:
        return result
    links = (
        RunModelLink.objects.filter(run__in=run_list)
        .select_related("model")
        .only("run_id", "direction", "step", "model__model_id")
    )
    for link in links:
        inputs, outputs = result[link.run_id]
        if link.direction == RunModelLink.Direction.INPUT:
            inputs.setdefault("model_inputs", []).append({"model_id": link.model.model_id})
        else:
            outputs.setdefault("model_outputs", []).append({"model_id": link.model.model_id, "step": link.step})
    return result
