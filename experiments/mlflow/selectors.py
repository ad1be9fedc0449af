"""Reads for logged models and run inputs/outputs, with permission checks."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Case, F, OuterRef, Prefetch, QuerySet, Subquery, When

from accounts.permissions import Action, authorize, restrict_to_visible
from experiments import search
from experiments.mlflow.filters import LOGGED_MODELS
from experiments.mlflow.models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelTag,
    RunDatasetInput,
    RunModelLink,
)
from experiments.models import LifecycleStage, Metric, Run
from mlplatform.errors import InvalidInput, NotFound
from mlplatform.nonfinite import encode_float

# A metric point as (key, step, timestamp, value); NaN and ±inf as MLflow's strings, so points compare equal.
PointKey = tuple[str, int, int, float | str]

MODEL_ID_RE = re.compile(r"^m-[0-9a-f]{32}$")
# What ``logged_model_json`` renders of a model's metric rows (the run only for its public id).
METRIC_FIELDS = (
    "model",
    "key",
    "value",
    "is_nan",
    "timestamp",
    "step",
    "dataset_name",
    "dataset_digest",
    "run__run_uuid",
)


def with_model_details(queryset: QuerySet[LoggedModel]) -> QuerySet[LoggedModel]:
    """Load tags, params, metrics and the source run (4 extra queries for any number of models)."""
    return queryset.select_related("source_run").prefetch_related(
        Prefetch("tags", queryset=LoggedModelTag.objects.order_by("key")),
        Prefetch("params", queryset=LoggedModelParam.objects.order_by("key")),
        Prefetch("metrics", queryset=LoggedModelMetric.objects.select_related("run").only(*METRIC_FIELDS)),
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


def logged_models_for_run(*, user: Any, run: Run, model_ids: Iterable[str]) -> dict[str, LoggedModel]:
    """The logged models metric points of ``run`` name, by id: active, writable, in the run's experiment.

    An unknown id, or one of a model the caller may not see, is MLflow's "not found" for a logged model;
    a model of another experiment is an invalid value (MLflow keeps a model's metrics in its experiment).
    """
    wanted = list(dict.fromkeys(model_ids))
    # One query, without ``with_model_details``: a training loop may send a model id with every point.
    models = {
        model.model_id: model
        for model in LoggedModel.objects.filter(
            model_id__in=[m for m in wanted if MODEL_ID_RE.match(m)], lifecycle_stage=LifecycleStage.ACTIVE
        ).only("id", "model_id", "team_id", "experiment_id", "lifecycle_stage")
    }
    found: dict[str, LoggedModel] = {}
    for model_id in wanted:
        model = models.get(model_id)
        if model is None:
            raise NotFound(f"Logged model with ID '{model_id}' not found.")
        authorize(user, Action.WRITE, model, label="Logged model")
        if model.experiment_id != run.experiment_id:
            raise InvalidInput(
                f"Logged model '{model_id}' belongs to experiment {model.experiment_id}, but run"
                f" '{run.run_uuid}' is in experiment {run.experiment_id}.",
                details={"model_id": ["Not a model of the run's experiment."]},
            )
        found[model_id] = model
    return found


def logged_models_visible(*, user: Any, experiment_ids: Iterable[int]) -> QuerySet[LoggedModel]:
    """Active logged models of the given experiments that the user may read."""
    queryset = restrict_to_visible(LoggedModel.objects.all(), user).filter(
        experiment_id__in=list(experiment_ids), lifecycle_stage=LifecycleStage.ACTIVE
    )
    return with_model_details(queryset)


@dataclass(frozen=True)
class ModelOrder:
    """One ``order_by`` item of a logged-model search: a field, its direction and, for metrics, a dataset."""

    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None


def logged_models_search(
    *, user: Any, experiment_ids: Iterable[int], filter_string: str | None, order_by: Sequence[ModelOrder]
) -> QuerySet[LoggedModel]:
    """Visible active logged models of the experiments, filtered and ordered as MLflow's search does.

    The filter is ``filters.LOGGED_MODELS``' grammar. ``order_by`` takes attributes and, as MLflow,
    ``metrics.<key>``: the value of the model's latest point of that key (latest timestamp, then step;
    optionally only points of one dataset), models without one (or with NaN) last.
    """
    queryset = logged_models_visible(user=user, experiment_ids=experiment_ids)
    queryset = queryset.filter(search.compile_filter(search.parse_filter(filter_string, LOGGED_MODELS), LOGGED_MODELS))
    ordering: list[Any] = []
    latest: dict[str, Subquery] = {}
    for index, item in enumerate(order_by):
        ident = _metric_order_key(item.field_name, index)
        if ident is None:
            [key] = search.parse_order_by([(item.field_name, item.ascending)], LOGGED_MODELS)
            expression = F(LOGGED_MODELS.attributes[key.identifier.key].field)
        else:
            points = LoggedModelMetric.objects.filter(model=OuterRef("pk"), key=ident.key)
            if item.dataset_name:
                points = points.filter(dataset_name=item.dataset_name)
            if item.dataset_digest:
                points = points.filter(dataset_digest=item.dataset_digest)
            value = Case(When(is_nan=True, then=None), default=F("value"))
            alias = f"_metric_order_{index}"
            latest[alias] = Subquery(
                points.order_by("-timestamp", "-step", "run_id").annotate(latest=value).values("latest")[:1]
            )
            expression = F(alias)
        ordering.append(expression.asc(nulls_last=True) if item.ascending else expression.desc(nulls_last=True))
    if latest:
        queryset = queryset.annotate(**latest)
    return queryset.order_by(*(ordering or LOGGED_MODELS.default_order), *LOGGED_MODELS.tiebreak)


def _metric_order_key(field_name: str, index: int) -> search.Identifier | None:
    """``metrics.<key>`` (any spelling the filter grammar takes) as an identifier; None for other fields."""
    try:
        tokens = search.tokenize(field_name)
        ident = search.parse_identifier(tokens[0], LOGGED_MODELS)
    except InvalidInput:
        return None  # parse_order_by names the problem
    if ident.entity != "metric":
        return None
    if len(tokens) > 2:
        raise InvalidInput(
            f"order_by[{index}] {field_name!r}: expected the end after the name.", code="invalid_order_by"
        )
    return ident


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
