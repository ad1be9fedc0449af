"""Every write for experiments and runs. Keyword-only arguments, one transaction each.

Services check permissions themselves (``authorize``), so the native API, the MLflow façade,
admin and pages share one rule set. Every committed change to a run bumps ``run.last_seq`` and is
announced once, after commit (see ``experiments.live``).
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts import audit
from accounts.models import Team
from accounts.permissions import Action, authorize
from accounts.services import personal_team_for
from experiments import limits
from experiments.artifacts import delete_experiment_artifacts, delete_run_artifacts
from experiments.limits import MetricPoint
from experiments.live import publish_run_event
from experiments.models import (
    Experiment,
    ExperimentTag,
    LatestMetric,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
)
from experiments.names import generate_run_name
from mlplatform.errors import Conflict, InvalidInput, NotFound
from mlplatform.sql import fetch_all

RUN_NAME_TAG = "mlflow.runName"


# Experiments -----------------------------------------------------------------------------------


def _clean_experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("Experiment name must be a non-empty string.", details={"name": ["Required."]})
    name = name.strip()
    if len(name) > limits.MAX_EXPERIMENT_NAME_LENGTH:
        raise InvalidInput(
            f"Experiment name is {len(name)} characters, over the limit of {limits.MAX_EXPERIMENT_NAME_LENGTH}.",
            details={"name": [f"At most {limits.MAX_EXPERIMENT_NAME_LENGTH} characters."]},
        )
    return limits.check_storable_text(name, where="name")


def _clean_description(description: Any) -> str:
    if not isinstance(description, str):
        raise InvalidInput("description: a string is required.", details={"description": ["Must be a string."]})
    return limits.check_storable_text(description, where="description")


def _name_taken(team_id: int, name: str, *, exclude_pk: int | None = None) -> Conflict | None:
    clash = Experiment.objects.filter(team_id=team_id, name=name).exclude(pk=exclude_pk).first()
    if clash is None:
        return None
    state = " (in the deleted state; restore or rename it)" if clash.lifecycle_stage == LifecycleStage.DELETED else ""
    return Conflict(f"An experiment named {name!r} already exists in this team{state}.")


def _require_active_experiment(experiment: Experiment) -> None:
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"Experiment {experiment.pk} is deleted; restore it first.")


@transaction.atomic
def experiment_create(
    *,
    user: Any,
    team: Team | None = None,
    name: str,
    description: str = "",
    tags: Mapping[str, str] | Iterable[Mapping[str, Any]] | None = None,
    artifact_location: str | None = None,
) -> Experiment:
    """Create an experiment in ``team`` (the user's personal team when None)."""
    if team is None:
        if not getattr(user, "is_authenticated", False):
            raise NotFound("Team not found.")
        team = personal_team_for(user)
    authorize(user, Action.WRITE, team, label="Team")
    name = _clean_experiment_name(name)
    clean_tags = limits.tags_from(tags)
    description = _clean_description(description)
    if (clash := _name_taken(team.pk, name)) is not None:
        raise clash
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(
                team=team,
                name=name,
                description=description,
                artifact_location=artifact_location or "",
                created_by=user,
            )
    except IntegrityError as exc:  # lost a race with a creator of the same name
        raise Conflict(f"An experiment named {name!r} already exists in this team.") from exc
    if not artifact_location:
        # Served by this server's artifact store (MLflow's proxied-artifact scheme).
        experiment.artifact_location = f"mlflow-artifacts:/{experiment.pk}"
        experiment.save(update_fields=["artifact_location"])
    ExperimentTag.objects.bulk_create(
        [ExperimentTag(experiment=experiment, key=key, value=value) for key, value in clean_tags.items()]
    )
    return experiment


@transaction.atomic
def experiment_update(
    *, user: Any, experiment: Experiment, name: str | None = None, description: str | None = None
) -> Experiment:
    """Rename an experiment and/or change its description."""
    authorize(user, Action.WRITE, experiment, label="Experiment")
    _require_active_experiment(experiment)
    fields = ["updated_at"]
    if name is not None:
        name = _clean_experiment_name(name)
        if name != experiment.name and (clash := _name_taken(experiment.team_id, name, exclude_pk=experiment.pk)):
            raise clash
        experiment.name = name
        fields.append("name")
    if description is not None:
        experiment.description = _clean_description(description)
        fields.append("description")
    try:
        with transaction.atomic():
            experiment.save(update_fields=fields)
    except IntegrityError as exc:
        raise Conflict(f"An experiment named {name!r} already exists in this team.") from exc
    return experiment


@transaction.atomic
def experiment_delete(*, user: Any, experiment: Experiment, request: Any = None) -> Experiment:
    """Soft-delete an experiment and (as MLflow does) its active runs."""
    authorize(user, Action.DELETE, experiment, label="Experiment")
    if experiment.lifecycle_stage == LifecycleStage.DELETED:
        return experiment
    experiment.lifecycle_stage = LifecycleStage.DELETED
    experiment.save(update_fields=["lifecycle_stage", "updated_at"])
    count = Run.objects.filter(experiment=experiment, lifecycle_stage=LifecycleStage.ACTIVE).update(
        lifecycle_stage=LifecycleStage.DELETED, last_seq=F("last_seq") + 1
    )
    audit.record_event(
        action="experiment.delete", actor=user, request=request, target=experiment, details={"runs": count}
    )
    return experiment


@transaction.atomic
def experiment_restore(*, user: Any, experiment: Experiment, request: Any = None) -> Experiment:
    """Restore a soft-deleted experiment and (as MLflow does) its runs."""
    authorize(user, Action.DELETE, experiment, label="Experiment")
    if experiment.lifecycle_stage == LifecycleStage.ACTIVE:
        return experiment
    experiment.lifecycle_stage = LifecycleStage.ACTIVE
    experiment.save(update_fields=["lifecycle_stage", "updated_at"])
    count = Run.objects.filter(experiment=experiment, lifecycle_stage=LifecycleStage.DELETED).update(
        lifecycle_stage=LifecycleStage.ACTIVE, last_seq=F("last_seq") + 1
    )
    audit.record_event(
        action="experiment.restore", actor=user, request=request, target=experiment, details={"runs": count}
    )
    return experiment


@transaction.atomic
def experiment_set_tag(*, user: Any, experiment: Experiment, key: str, value: str) -> ExperimentTag:
    """Set (create or overwrite) an experiment tag."""
    authorize(user, Action.WRITE, experiment, label="Experiment")
    _require_active_experiment(experiment)
    clean = limits.clean_tags([{"key": key, "value": value}])
    key, value = next(iter(clean.items()))
    tag, _ = ExperimentTag.objects.update_or_create(experiment=experiment, key=key, defaults={"value": value})
    Experiment.objects.filter(pk=experiment.pk).update(updated_at=timezone.now())
    return tag


@transaction.atomic
def experiment_delete_tag(*, user: Any, experiment: Experiment, key: str) -> None:
    """Delete an experiment tag; unknown keys are a 404."""
    authorize(user, Action.WRITE, experiment, label="Experiment")
    _require_active_experiment(experiment)
    deleted, _ = ExperimentTag.objects.filter(experiment=experiment, key=key).delete()
    if not deleted:
        raise NotFound(f"Experiment tag {key!r} not found.")


# Runs ------------------------------------------------------------------------------------------


def _bump_seq(run: Run, *, allow_locked: bool) -> int:
    """Lock the run row and bump its sequence; refuse writes to deleted runs (and locked ones unless ``allow_locked``).

    ``UPDATE ... RETURNING`` takes the row lock first, so concurrent writers to one run queue here
    and everything after (param immutability check, latest-metric upsert) sees committed state.
    """
    table = connection.ops.quote_name(Run._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq, lifecycle_stage, locked",  # noqa: S608
            [run.pk],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound("Run not found.")
    seq, stage, locked = row
    if stage != LifecycleStage.ACTIVE:
        raise InvalidInput(f"Run {run.run_uuid} is deleted; restore it before writing to it.")
    if locked and not allow_locked:
        raise InvalidInput(f"Run {run.run_uuid} is finished and locked; it accepts no more data.")
    run.last_seq = seq
    return seq


def _clean_run_name(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidInput("name: a string is required.", details={"name": ["Must be a string."]})
    if len(name) > limits.MAX_RUN_NAME_LENGTH:
        raise InvalidInput(
            f"Run name is {len(name)} characters, over the limit of {limits.MAX_RUN_NAME_LENGTH}.",
            details={"name": [f"At most {limits.MAX_RUN_NAME_LENGTH} characters."]},
        )
    return limits.check_storable_text(name, where="name")


def _clean_status(status: Any) -> str:
    if status not in RunStatus.values:
        raise InvalidInput(
            f"status must be one of {', '.join(RunStatus.values)}; got {status!r}.",
            details={"status": ["Invalid choice."]},
        )
    return status


@transaction.atomic
def run_create(
    *,
    user: Any,
    experiment: Experiment,
    name: str | None = None,
    start_time: int | None = None,
    tags: Mapping[str, str] | Iterable[Mapping[str, Any]] | None = None,
    status: str = RunStatus.RUNNING,
) -> Run:
    """Start a run in an experiment; a name is generated when none is given."""
    authorize(user, Action.WRITE, experiment, label="Experiment")
    _require_active_experiment(experiment)
    clean_tags = limits.tags_from(tags)
    if not name:
        name = clean_tags.get(RUN_NAME_TAG) or generate_run_name()
    name = _clean_run_name(name)
    clean_tags[RUN_NAME_TAG] = name
    status = _clean_status(status)
    start_time = limits.int64_or_none(start_time, where="start_time")
    run_uuid = uuid.uuid4().hex
    run = Run.objects.create(
        run_uuid=run_uuid,
        experiment=experiment,
        team_id=experiment.team_id,
        name=name,
        user=user if getattr(user, "is_authenticated", False) else None,
        status=status,
        start_time=limits.now_ms() if start_time is None else start_time,
        artifact_uri=f"{experiment.artifact_location.rstrip('/')}/{run_uuid}/artifacts",
        last_seq=1,
    )
    RunTag.objects.bulk_create([RunTag(run=run, key=key, value=value) for key, value in clean_tags.items()])
    publish_run_event(run, seq=run.last_seq, kind="created", tags=clean_tags, include_run=True)
    return run


@transaction.atomic
def run_update(
    *, user: Any, run: Run, status: str | None = None, end_time: int | None = None, name: str | None = None
) -> Run:
    """Change a run's status, end time and/or name."""
    authorize(user, Action.WRITE, run, label="Run")
    changes: dict[str, Any] = {}
    if status is not None:
        changes["status"] = _clean_status(status)
    if end_time is not None:
        changes["end_time"] = limits.int64_or_none(end_time, where="end_time")
    if name is not None:
        changes["name"] = _clean_run_name(name)
    seq = _bump_seq(run, allow_locked=False)
    for field, value in changes.items():
        setattr(run, field, value)
    if changes:
        run.save(update_fields=list(changes))
    if name is not None:
        RunTag.objects.update_or_create(run=run, key=RUN_NAME_TAG, defaults={"value": name})
    publish_run_event(run, seq=seq, kind="status", include_run=True)
    return run


@transaction.atomic
def run_delete(*, user: Any, run: Run, request: Any = None) -> Run:
    """Soft-delete a run (restorable)."""
    authorize(user, Action.DELETE, run, label="Run")
    if run.lifecycle_stage == LifecycleStage.DELETED:
        return run
    seq = _bump_seq(run, allow_locked=True)
    run.lifecycle_stage = LifecycleStage.DELETED
    run.save(update_fields=["lifecycle_stage"])
    audit.record_event(action="run.delete", actor=user, request=request, target=run)
    publish_run_event(run, seq=seq, kind="deleted", include_run=True)
    return run


@transaction.atomic
def run_restore(*, user: Any, run: Run, request: Any = None) -> Run:
    """Restore a soft-deleted run; its experiment must be active."""
    authorize(user, Action.DELETE, run, label="Run")
    if run.lifecycle_stage == LifecycleStage.ACTIVE:
        return run
    if Experiment.objects.filter(pk=run.experiment_id, lifecycle_stage=LifecycleStage.DELETED).exists():
        raise InvalidInput("The run's experiment is deleted; restore the experiment first.")
    run.lifecycle_stage = LifecycleStage.ACTIVE
    run.save(update_fields=["lifecycle_stage"])
    seq = _bump_seq(run, allow_locked=True)
    audit.record_event(action="run.restore", actor=user, request=request, target=run)
    publish_run_event(run, seq=seq, kind="restored", include_run=True)
    return run


@transaction.atomic
def run_set_locked(*, user: Any, run: Run, locked: bool = True, request: Any = None) -> Run:
    """Lock a finished run against further logging (or unlock it). Admins only."""
    authorize(user, Action.DELETE, run, label="Run")
    if locked and run.status not in {RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED}:
        raise InvalidInput("Only a finished, failed or killed run can be locked.")
    seq = _bump_seq(run, allow_locked=True)
    run.locked = locked
    run.save(update_fields=["locked"])
    audit.record_event(action="run.lock" if locked else "run.unlock", actor=user, request=request, target=run)
    publish_run_event(run, seq=seq, kind="status", include_run=True)
    return run


def _lock_runs(runs: QuerySet[Run]) -> None:
    """Lock run rows until the transaction ends: a writer logging to them waits, then finds them gone (404).

    Metric history has no database foreign key (see ``Metric.run``), so a point committed between the
    deletion of a run's history and the deletion of the run would outlive it; with the run locked first,
    no point can be committed in between.
    """
    list(runs.select_for_update().order_by("pk").values_list("pk", flat=True))


@transaction.atomic
def run_hard_delete(*, user: Any, run: Run, request: Any = None) -> None:
    """Delete a run and everything it logged for good. Superusers only (the admin action)."""
    if not getattr(user, "is_superuser", False):
        authorize(user, Action.OWN, run, label="Run")
    audit.record_event(
        action="run.hard_delete",
        actor=user,
        request=request,
        target=run,
        details={"run_id": run.run_uuid, "experiment_id": run.experiment_id},
    )
    _lock_runs(Run.objects.filter(pk=run.pk))
    run.delete()  # keeps ``experiment_id`` and ``run_uuid`` on the instance, which name its folder
    transaction.on_commit(lambda: delete_run_artifacts(run))


@transaction.atomic
def experiment_hard_delete(*, user: Any, experiment: Experiment, request: Any = None) -> None:
    """Delete an experiment with all its runs for good. Superusers only (the admin action)."""
    if not getattr(user, "is_superuser", False):
        authorize(user, Action.OWN, experiment, label="Experiment")
    audit.record_event(
        action="experiment.hard_delete",
        actor=user,
        request=request,
        target=experiment,
        details={"name": experiment.name, "runs": experiment.runs.count()},
    )
    _lock_runs(Run.objects.filter(experiment=experiment))
    experiment_id = experiment.pk
    experiment.delete()
    transaction.on_commit(lambda: delete_experiment_artifacts(experiment_id))


# Logging (the hot path) ------------------------------------------------------------------------


def _sort_key(point: MetricPoint) -> tuple[int, int, float]:
    """MLflow's "latest" order: step, then timestamp, then value (NaN compares as its stored 0)."""
    return (point.step, point.timestamp, 0.0 if math.isnan(point.value) else point.value)


def _metric_rows(run: Run, seq: int, points: list[MetricPoint]) -> list[tuple[Any, ...]]:
    """History rows in column order; NaN is stored as value 0 with ``is_nan`` (SQLite cannot hold NaN)."""
    run_id = run.pk
    # ``v != v`` is True exactly for NaN.
    return [(run_id, key, 0.0 if v != v else v, v != v, ts, step, seq) for key, v, ts, step in points]


METRIC_COLUMNS = ("run_id", "key", "value", "is_nan", "timestamp", "step", "seq")
LATEST_COLUMNS = ("run_id", "key", "value", "is_nan", "timestamp", "step")
COPY_MIN_ROWS = 16


def _insert_metrics(run: Run, seq: int, points: list[MetricPoint]) -> None:
    """Append history rows without model instances: ``COPY`` on PostgreSQL, ``executemany`` elsewhere.

    A multi-row ``INSERT`` of 1000 points has 7000 placeholders; psycopg re-parses that text on every
    batch (it is too long for its query cache), which cost ~45 ms of CPU per 1000 points. ``COPY``
    streams the rows with no SQL to parse.
    """
    quote = connection.ops.quote_name
    table = quote(Metric._meta.db_table)
    columns = ", ".join(quote(c) for c in METRIC_COLUMNS)
    rows = _metric_rows(run, seq, points)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) > COPY_MIN_ROWS:
            sql = f"COPY {table} ({columns}) FROM STDIN"
            # The debug cursor (DEBUG, assertNumQueries) records the COPY like any other statement.
            recorded = cursor.debug_sql(sql) if hasattr(cursor, "debug_sql") else contextlib.nullcontext()
            # The raw psycopg cursor bypasses Django's error translation: wrap it, so a dropped connection
            # is a django.db.OperationalError (503 in both APIs) rather than an unhandled psycopg error.
            with connection.wrap_database_errors, recorded, cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        elif len(rows) <= COPY_MIN_ROWS:
            # A few points (log-metric): one short INSERT is one round trip; COPY takes two.
            values = ", ".join(["(" + ", ".join(["%s"] * len(METRIC_COLUMNS)) + ")"] * len(rows))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values}", [v for row in rows for v in row])  # noqa: S608
        else:
            placeholders = ", ".join(["%s"] * len(METRIC_COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)  # noqa: S608


def _best_per_key(points: list[MetricPoint]) -> dict[str, MetricPoint]:
    """Each key's latest point in MLflow's order (highest step, then timestamp, then value)."""
    best: dict[str, MetricPoint] = {}
    for point in points:
        current = best.get(point.key)
        # Steps usually differ: compare them first, the full order only on a tie.
        if (
            current is None
            or point.step > current.step
            or (point.step == current.step and _sort_key(point) > _sort_key(current))
        ):
            best[point.key] = point
    return best


def _upsert_latest(run: Run, points: list[MetricPoint]) -> None:
    """One upsert: insert new keys, overwrite existing ones only where the new point wins.

    PostgreSQL gets the rows as six arrays (``unnest``), so the statement text is the same for any
    batch size; elsewhere it is one multi-row ``VALUES`` (at most one row per key).
    """
    best = _best_per_key(points)
    quote = connection.ops.quote_name
    table = quote(LatestMetric._meta.db_table)
    run_id, key, value, is_nan, ts, step = (quote(c) for c in LATEST_COLUMNS)
    rows = [row[:6] for row in _metric_rows(run, 0, list(best.values()))]
    if connection.vendor == "postgresql":
        source = (
            "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::boolean[], %s::bigint[], %s::bigint[])"
        )
        params: list[Any] = [list(column) for column in zip(*rows, strict=True)]
    else:
        source = "VALUES " + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
        params = [value for row in rows for value in row]
    sql = (
        f"INSERT INTO {table} ({run_id}, {key}, {value}, {is_nan}, {ts}, {step}) {source} "
        f"ON CONFLICT ({run_id}, {key}) DO UPDATE SET {value} = excluded.{value}, {is_nan} = excluded.{is_nan}, "
        f"{ts} = excluded.{ts}, {step} = excluded.{step} "
        f"WHERE (excluded.{step}, excluded.{ts}, excluded.{value}) > ({table}.{step}, {table}.{ts}, {table}.{value})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _log_params(run: Run, params: dict[str, str]) -> None:
    existing = dict(Param.objects.filter(run_id=run.pk, key__in=list(params)).values_list("key", "value"))
    for key, value in params.items():
        if key in existing and existing[key] != value:
            raise InvalidInput(
                f"Param {key!r} was already logged with value {existing[key][:100]!r}; params are immutable and "
                f"cannot be changed to {value[:100]!r}.",
                details={"params": {key: ["Params are immutable."]}},
            )
    new = [Param(run_id=run.pk, key=key, value=value) for key, value in params.items() if key not in existing]
    if new:
        Param.objects.bulk_create(new)


def _log_tags(run: Run, tags: dict[str, str]) -> None:
    RunTag.objects.bulk_create(
        [RunTag(run_id=run.pk, key=key, value=value) for key, value in tags.items()],
        update_conflicts=True,
        unique_fields=["run", "key"],
        update_fields=["value"],
    )
    if RUN_NAME_TAG in tags:
        run.name = _clean_run_name(tags[RUN_NAME_TAG])
        Run.objects.filter(pk=run.pk).update(name=run.name)


def _log_points_in_one_statement(run: Run, points: list[MetricPoint]) -> int:
    """A few metric points on PostgreSQL in one statement: bump the run's seq, append history, upsert latest.

    The same writes as ``_bump_seq`` + ``_insert_metrics`` + ``_upsert_latest`` in one round trip and no
    BEGIN/COMMIT: a single statement is atomic by itself. Both inserts read the new seq from the
    ``UPDATE``, so the run row is locked before either runs, as in the general path. A run that is deleted
    or locked updates nothing, so nothing is written; ``_bump_seq`` then says why (in a transaction
    that is rolled back).
    """
    quote = connection.ops.quote_name
    run_table, metric_table, latest_table = (quote(model._meta.db_table) for model in (Run, Metric, LatestMetric))
    run_id, key, value, is_nan, ts, step = (quote(c) for c in LATEST_COLUMNS)
    rows = _metric_rows(run, 0, points)
    best = _best_per_key(points)
    latest = [row[:6] for row in _metric_rows(run, 0, list(best.values()))]
    arrays = "unnest(%s::text[], %s::float8[], %s::boolean[], %s::bigint[], %s::bigint[]) AS p(k, v, n, t, s)"
    sql = (
        f"WITH bumped AS (UPDATE {run_table} SET last_seq = last_seq + 1 WHERE id = %s "  # noqa: S608
        f"AND lifecycle_stage = %s AND NOT locked RETURNING last_seq), "
        f"history AS (INSERT INTO {metric_table} ({', '.join(quote(c) for c in METRIC_COLUMNS)}) "
        f"SELECT %s, k, v, n, t, s, bumped.last_seq FROM {arrays}, bumped), "
        f"latest AS (INSERT INTO {latest_table} ({run_id}, {key}, {value}, {is_nan}, {ts}, {step}) "
        f"SELECT %s, k, v, n, t, s FROM {arrays}, bumped "
        f"ON CONFLICT ({run_id}, {key}) DO UPDATE SET {value} = excluded.{value}, {is_nan} = excluded.{is_nan}, "
        f"{ts} = excluded.{ts}, {step} = excluded.{step} "
        f"WHERE (excluded.{step}, excluded.{ts}, excluded.{value}) > "
        f"({latest_table}.{step}, {latest_table}.{ts}, {latest_table}.{value})) "
        f"SELECT last_seq FROM bumped"
    )
    params: list[Any] = [run.pk, LifecycleStage.ACTIVE, run.pk]
    params += [list(column) for column in list(zip(*rows, strict=True))[1:6]]
    params.append(run.pk)
    params += [list(column) for column in list(zip(*latest, strict=True))[1:6]]
    found = fetch_all(sql, params, prepare=True)
    row = found[0] if found else None
    if row is None:
        with transaction.atomic():
            _bump_seq(run, allow_locked=False)  # raises NotFound/InvalidInput
            raise InvalidInput(f"Run {run.run_uuid} accepts no data.")  # pragma: no cover (the bump raised)
    run.last_seq = row[0]
    return row[0]


def log_batch(
    *,
    user: Any,
    run: Run,
    metrics: Iterable[Mapping[str, Any]] = (),
    params: Iterable[Mapping[str, Any]] = (),
    tags: Iterable[Mapping[str, Any]] = (),
) -> int:
    """Log metrics, params and tags atomically in a fixed number of queries; returns the new ``seq``.

    Metrics are ``{key, value, timestamp?, step?}`` (value may be NaN/±inf or "NaN"/"Infinity"/"-Infinity"),
    params and tags ``{key, value}``. Nothing is written unless everything is valid.
    """
    authorize(user, Action.WRITE, run, label="Run")
    metric_items = limits.as_list(metrics, name="metrics")
    param_items = limits.as_list(params, name="params")
    tag_items = limits.as_list(tags, name="tags")
    limits.check_batch_sizes(metrics=metric_items, params=param_items, tags=tag_items)
    points = limits.clean_metrics(metric_items)
    clean_params = limits.clean_params(param_items)
    clean_tags = limits.clean_tags(tag_items)
    if RUN_NAME_TAG in clean_tags:
        _clean_run_name(clean_tags[RUN_NAME_TAG])

    if (
        points
        and not clean_params
        and not clean_tags
        and connection.vendor == "postgresql"
        and len(points) <= COPY_MIN_ROWS
    ):
        seq = _log_points_in_one_statement(run, points)
    else:
        with transaction.atomic():
            seq = _bump_seq(run, allow_locked=False)
            if clean_params:
                _log_params(run, clean_params)
            if points:
                _insert_metrics(run, seq, points)
                _upsert_latest(run, points)
            if clean_tags:
                _log_tags(run, clean_tags)
    kind = "metrics" if points else "params" if clean_params else "tags"
    publish_run_event(run, seq=seq, kind=kind, metrics=points, params=clean_params, tags=clean_tags)
    return seq


def log_metric(
    *, user: Any, run: Run, key: str, value: float | str, timestamp: int | None = None, step: int | None = None
) -> int:
    """Log one metric point."""
    return log_batch(user=user, run=run, metrics=[{"key": key, "value": value, "timestamp": timestamp, "step": step}])


def log_param(*, user: Any, run: Run, key: str, value: str) -> int:
    """Log one (immutable) param."""
    return log_batch(user=user, run=run, params=[{"key": key, "value": value}])


def set_tag(*, user: Any, run: Run, key: str, value: str) -> int:
    """Set (create or overwrite) one run tag."""
    return log_batch(user=user, run=run, tags=[{"key": key, "value": value}])


@transaction.atomic
def delete_tag(*, user: Any, run: Run, key: str) -> int:
    """Delete one run tag; an unknown key is a 404."""
    authorize(user, Action.WRITE, run, label="Run")
    seq = _bump_seq(run, allow_locked=False)
    deleted, _ = RunTag.objects.filter(run_id=run.pk, key=key).delete()
    if not deleted:
        raise NotFound(f"Tag {key!r} not found on run {run.run_uuid}.")
    publish_run_event(run, seq=seq, kind="tags", tags={key: None})
    return seq
