"""Writes for MLflow 3 logged models and run inputs/outputs. Keyword-only, one transaction each.

Rules shared with runs come from the same places: ``accounts.permissions.authorize`` (editor role to
write into an experiment or run) and ``experiments.limits`` (key and value limits).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from accounts import audit
from accounts.permissions import Action, authorize
from experiments import limits
from experiments import services as tracking
from experiments.mlflow.models import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelParam,
    LoggedModelStatus,
    LoggedModelTag,
    RunDatasetInput,
    RunModelLink,
)
from experiments.mlflow.selectors import logged_point_keys, point_key
from experiments.models import Experiment, LifecycleStage, Run
from mlplatform.errors import InvalidInput, NotFound

MAX_MODEL_NAME_LENGTH = 250
# MLflow's dataset limits (mlflow/utils/validation.py)
DATASET_LIMITS = {"name": 500, "digest": 36, "source_type": 36, "source": 65535, "schema": 1048575, "profile": 16384}
MAX_DATASETS_PER_CALL = 1000


def _require_active(experiment: Experiment) -> None:
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"Experiment {experiment.pk} is deleted; restore it first.")


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("Logged model name must be a non-empty string.")
    if len(name) > MAX_MODEL_NAME_LENGTH:
        raise InvalidInput(f"Logged model name is over the limit of {MAX_MODEL_NAME_LENGTH} characters.")
    if "/" in name or ":" in name:
        raise InvalidInput("Logged model name must not contain '/' or ':'.")
    return name


def _touch(model: LoggedModel) -> None:
    model.last_updated_timestamp = limits.now_ms()
    LoggedModel.objects.filter(pk=model.pk).update(last_updated_timestamp=model.last_updated_timestamp)


def _upsert_tags(model: LoggedModel, tags: dict[str, str]) -> None:
    LoggedModelTag.objects.bulk_create(
        [LoggedModelTag(model=model, key=key, value=value) for key, value in tags.items()],
        update_conflicts=True,
        unique_fields=["model", "key"],
        update_fields=["value"],
    )


def _add_params(model: LoggedModel, params: dict[str, str]) -> None:
    existing = dict(LoggedModelParam.objects.filter(model=model, key__in=list(params)).values_list("key", "value"))
    for key, value in params.items():
        if key in existing and existing[key] != value:
            raise InvalidInput(f"Param {key!r} of logged model {model.model_id} is immutable; it is {existing[key]!r}.")
    LoggedModelParam.objects.bulk_create(
        [LoggedModelParam(model=model, key=key, value=value) for key, value in params.items() if key not in existing]
    )


@transaction.atomic
def logged_model_create(
    *,
    user: Any,
    experiment: Experiment,
    name: str | None = None,
    model_type: str = "",
    source_run: Run | None = None,
    params: Iterable[Mapping[str, Any]] = (),
    tags: Iterable[Mapping[str, Any]] = (),
) -> LoggedModel:
    """Create a PENDING logged model in ``experiment``; its artifact location follows MLflow's layout."""
    authorize(user, Action.WRITE, experiment, label="Experiment")
    _require_active(experiment)
    if source_run is not None:
        authorize(user, Action.READ, source_run, label="Run")
        if source_run.experiment_id != experiment.pk:
            raise InvalidInput(f"Run {source_run.run_uuid} does not belong to experiment {experiment.pk}.")
    clean_name = _clean_name(name) if name else f"model-{uuid.uuid4().hex[:8]}"
    clean_params = limits.clean_params(list(params))
    clean_tags = limits.clean_tags(list(tags))
    if not isinstance(model_type, str) or len(model_type) > MAX_MODEL_NAME_LENGTH:
        raise InvalidInput("model_type must be a string of at most 250 characters.")
    model_id = f"m-{uuid.uuid4().hex}"
    now = limits.now_ms()
    model = LoggedModel.objects.create(
        model_id=model_id,
        experiment=experiment,
        team_id=experiment.team_id,
        name=clean_name,
        model_type=model_type,
        source_run=source_run,
        artifact_location=f"{experiment.artifact_location.rstrip('/')}/models/{model_id}/artifacts",
        created_by=user if getattr(user, "is_authenticated", False) else None,
        creation_timestamp=now,
        last_updated_timestamp=now,
    )
    _add_params(model, clean_params)
    _upsert_tags(model, clean_tags)
    return model


@transaction.atomic
def logged_model_finalize(*, user: Any, model: LoggedModel, status: str) -> LoggedModel:
    """Mark a logged model READY or UPLOAD_FAILED."""
    authorize(user, Action.WRITE, model, label="Logged model")
    if status not in LoggedModelStatus.values:
        raise InvalidInput(f"status must be one of {', '.join(LoggedModelStatus.values)}; got {status!r}.")
    model.status = status
    model.save(update_fields=["status"])
    _touch(model)
    return model


@transaction.atomic
def logged_model_set_tags(*, user: Any, model: LoggedModel, tags: Iterable[Mapping[str, Any]]) -> LoggedModel:
    """Set (create or overwrite) tags on a logged model."""
    authorize(user, Action.WRITE, model, label="Logged model")
    _upsert_tags(model, limits.clean_tags(list(tags)))
    _touch(model)
    return model


@transaction.atomic
def logged_model_delete_tag(*, user: Any, model: LoggedModel, key: str) -> None:
    """Delete a tag of a logged model; an unknown key is a 404."""
    authorize(user, Action.WRITE, model, label="Logged model")
    deleted, _ = LoggedModelTag.objects.filter(model=model, key=key).delete()
    if not deleted:
        raise NotFound(f"Tag {key!r} not found on logged model {model.model_id}.")
    _touch(model)


@transaction.atomic
def logged_model_log_params(*, user: Any, model: LoggedModel, params: Iterable[Mapping[str, Any]]) -> None:
    """Add immutable params to a logged model."""
    authorize(user, Action.WRITE, model, label="Logged model")
    _add_params(model, limits.clean_params(list(params)))
    _touch(model)


@transaction.atomic
def logged_model_delete(*, user: Any, model: LoggedModel, request: Any = None) -> None:
    """Soft-delete a logged model (admin role), as MLflow does."""
    authorize(user, Action.DELETE, model, label="Logged model")
    model.lifecycle_stage = LifecycleStage.DELETED
    model.save(update_fields=["lifecycle_stage"])
    _touch(model)
    audit.record_event(action="logged_model.delete", actor=user, request=request, target=model)


def _writable_run(user: Any, run: Run) -> None:
    authorize(user, Action.WRITE, run, label="Run")
    if run.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"Run {run.run_uuid} is deleted; restore it before writing to it.")


def _link_models(run: Run, models: Iterable[tuple[LoggedModel, int]], direction: str) -> None:
    RunModelLink.objects.bulk_create(
        [RunModelLink(run=run, model=model, direction=direction, step=step) for model, step in models],
        update_conflicts=True,
        unique_fields=["run", "model", "direction"],
        update_fields=["step"],
    )


def _clean_dataset(raw: Any, index: int) -> dict[str, Any]:
    where = f"datasets[{index}]"
    if not isinstance(raw, Mapping) or not isinstance(raw.get("dataset"), Mapping):
        raise InvalidInput(f"{where}: an object with a 'dataset' is required.")
    dataset = raw["dataset"]
    cleaned: dict[str, Any] = {}
    for field, limit in DATASET_LIMITS.items():
        value = dataset.get(field, "")
        required = field in {"name", "digest", "source_type", "source"}
        if not isinstance(value, str) or (required and not value):
            need = "a non-empty string" if required else "a string"
            raise InvalidInput(f"{where}.dataset.{field}: {need} is required.")
        if len(value) > limit:
            raise InvalidInput(f"{where}.dataset.{field} is {len(value)} characters, over the limit of {limit}.")
        cleaned[field] = value
    tags = limits.clean_tags(raw.get("tags") or [])
    cleaned["tags"] = [{"key": key, "value": value} for key, value in tags.items()]
    return cleaned


@transaction.atomic
def run_log_inputs(*, user: Any, run: Run, datasets: Iterable[Any] = (), models: Iterable[LoggedModel] = ()) -> None:
    """Record datasets (``{dataset: {...}, tags: [...]}``) and logged models a run used; repeats are merged."""
    _writable_run(user, run)
    items = list(datasets)
    if len(items) > MAX_DATASETS_PER_CALL:
        raise InvalidInput(f"At most {MAX_DATASETS_PER_CALL} datasets per call; got {len(items)}.")
    cleaned = [_clean_dataset(raw, index) for index, raw in enumerate(items)]
    model_list = list(models)
    for model in model_list:
        authorize(user, Action.READ, model, label="Logged model")
    RunDatasetInput.objects.bulk_create(
        [RunDatasetInput(run=run, **item) for item in cleaned],
        update_conflicts=True,
        unique_fields=["run", "name", "digest"],
        update_fields=["source_type", "source", "schema", "profile", "tags"],
    )
    _link_models(run, [(model, 0) for model in model_list], RunModelLink.Direction.INPUT)


@transaction.atomic
def run_log_outputs(*, user: Any, run: Run, models: Iterable[tuple[LoggedModel, int]]) -> None:
    """Record logged models a run produced, each at a step."""
    _writable_run(user, run)
    pairs = list(models)
    for model, step in pairs:
        authorize(user, Action.READ, model, label="Logged model")
        limits.int64_or_none(step, where="models.step")
    _link_models(run, pairs, RunModelLink.Direction.OUTPUT)


def _dataset_of(link: tuple[LoggedModel, Any, Any], where: str) -> tuple[str, str]:
    """A metric's ``dataset_name``/``dataset_digest``: both or neither, as MLflow's ``Metric`` requires."""
    _, name, digest = link
    name, digest = ("" if value is None else value for value in (name, digest))
    for field, value in (("dataset_name", name), ("dataset_digest", digest)):
        where_field, limit = f"{where}.{field}", DATASET_LIMITS[field.removeprefix("dataset_")]
        if not isinstance(value, str):
            raise InvalidInput(f"{where_field}: a string is required.", details={where_field: ["Not a string."]})
        if len(value) > limit:
            raise InvalidInput(
                f"{where_field}: over the limit of {limit} characters.", details={where_field: ["Too long."]}
            )
    if bool(name) != bool(digest):
        raise InvalidInput(
            f"{where}: both dataset_name and dataset_digest must be provided if one is provided.",
            details={where: ["dataset_name and dataset_digest go together."]},
        )
    return name, digest


def run_log_batch(
    *,
    user: Any,
    run: Run,
    metrics: list[Any],
    links: Mapping[int, tuple[LoggedModel, Any, Any]],
    params: Iterable[Mapping[str, Any]] = (),
    tags: Iterable[Mapping[str, Any]] = (),
) -> int:
    """``experiments.services.log_batch``, also linking ``metrics[i]`` to the model ``links[i]`` names.

    ``links`` maps a metric's index to ``(model, dataset_name, dataset_digest)``; the models come from
    ``selectors.logged_models_for_run`` (writable, in the run's experiment). A linked point is stored once
    per model (MLflow's ``logged_model_metrics``), and in the run's history unless it is there already:
    ``log_model`` re-sends the run's points only to link them, and MLflow's history keeps one row per
    identical point (so does a batch linking one point to several models). Everything is written in one
    transaction; returns the run's new ``seq``.
    """
    if not links:
        return tracking.log_batch(user=user, run=run, metrics=metrics, params=params, tags=tags)
    authorize(user, Action.WRITE, run, label="Run")
    items = limits.as_list(metrics, name="metrics")
    # Validated once here (errors name the item) so the run's point and the model's share their default times.
    points = limits.clean_metrics(items)
    datasets = {index: _dataset_of(link, f"metrics[{index}]") for index, link in links.items()}
    existing = logged_point_keys(run=run, keys={points[i].key for i in links}, steps={points[i].step for i in links})
    history, seen = [], set(existing)
    for index, point in enumerate(points):
        identity = point_key(point.key, point.step, point.timestamp, point.value)
        if index in links and identity in seen:
            continue  # already in the run's history (or earlier in this batch): only the link is new
        seen.add(identity)
        history.append(point)
    rows: dict[tuple[Any, ...], LoggedModelMetric] = {}
    for index, (model, _, _) in links.items():
        key, value, timestamp, step = points[index]
        is_nan = value != value  # NaN is stored as 0 with is_nan, as the run's history stores it
        stored = 0.0 if is_nan else value
        name, digest = datasets[index]
        rows.setdefault(
            (model.pk, key, step, timestamp, stored, is_nan),
            LoggedModelMetric(
                model=model,
                run=run,
                key=key,
                value=stored,
                is_nan=is_nan,
                timestamp=timestamp,
                step=step,
                dataset_name=name,
                dataset_digest=digest,
            ),
        )
    with transaction.atomic():
        seq = tracking.log_batch(user=user, run=run, metrics=[p._asdict() for p in history], params=params, tags=tags)
        # A point linked before (a retry, a second log_model) is already there: one row per distinct point.
        LoggedModelMetric.objects.bulk_create(list(rows.values()), ignore_conflicts=True)
    return seq
