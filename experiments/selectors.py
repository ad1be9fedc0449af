"""Every read for experiments and runs: lookups with permission checks, search, history, catch-up.

Run lists and details load params, tags and latest metrics with a fixed number of queries
(``prefetch_related``), whatever the number of runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import math
import operator
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Team
from accounts.permissions import Action, authorize, restrict_to_visible
from experiments import search
from experiments.downsample import MIN_POINTS, lttb_indices
from experiments.live import group_points, run_state
from experiments.models import Experiment, ExperimentTag, LatestMetric, LifecycleStage, Metric, Param, Run, RunTag
from mlplatform.errors import InvalidInput, NotFound
from mlplatform.nonfinite import encode_float
from mlplatform.sql import fetch_all

RUN_UUID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_SEARCH_RESULTS = 1000
DEFAULT_SEARCH_RESULTS = 100
MAX_HISTORY_PAGE = 25_000
DEFAULT_HISTORY_PAGE = 10_000
MAX_DOWNSAMPLED_POINTS = 10_000
MAX_BULK_SERIES = 200
RUN_VIEWS = {
    "active": [LifecycleStage.ACTIVE],
    "active_only": [LifecycleStage.ACTIVE],
    "deleted": [LifecycleStage.DELETED],
    "deleted_only": [LifecycleStage.DELETED],
    "all": [LifecycleStage.ACTIVE, LifecycleStage.DELETED],
}


# Experiments -----------------------------------------------------------------------------------


def team_get(*, team_id: int) -> Team:
    """A team by id (permission checks are the caller's service's job); unknown ids are a 404."""
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise NotFound("Team not found.")
    return team


def experiment_list(
    *, user: Any, name: str | None = None, team_id: int | None = None, view: str = "active", exact: bool = False
) -> QuerySet[Experiment]:
    """Experiments the user may read, newest first; ``name`` matches a substring (or exactly)."""
    queryset = restrict_to_visible(Experiment.objects.all(), user)
    stages = _stages(view)
    queryset = queryset.filter(lifecycle_stage__in=stages)
    if name:
        queryset = queryset.filter(name=name) if exact else queryset.filter(name__icontains=name)
    if team_id is not None:
        queryset = queryset.filter(team_id=team_id)
    return queryset.select_related("team", "created_by").prefetch_related("tags").order_by("-id")


def experiment_get(*, user: Any, experiment_id: Any, action: Action = Action.READ) -> Experiment:
    """One experiment by id, checked for ``action`` (404 for outsiders, 403 for too-low roles)."""
    try:
        pk = int(experiment_id)
    except (TypeError, ValueError):
        raise NotFound("Experiment not found.") from None
    experiment = (
        Experiment.objects.select_related("team", "created_by")
        .prefetch_related(Prefetch("tags", queryset=ExperimentTag.objects.order_by("key")))
        .filter(pk=pk)
        .first()
    )
    if experiment is None:
        raise NotFound("Experiment not found.")
    authorize(user, action, experiment, label="Experiment")
    return experiment


# Runs ------------------------------------------------------------------------------------------


def _stages(view: str) -> list[str]:
    stages = RUN_VIEWS.get(str(view).lower())
    if stages is None:
        raise InvalidInput(
            f"view must be one of active, deleted, all; got {view!r}.", details={"view": ["Invalid choice."]}
        )
    return stages


@dataclass(frozen=True, slots=True)
class KeyValue:
    """A param or tag row as a run page shows it."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class LatestValue:
    """A latest-metric row as a run page shows it; ``float_value`` is the value with NaN restored."""

    key: str
    value: float
    is_nan: bool
    timestamp: int
    step: int

    @property
    def float_value(self) -> float:
        """The logged value, NaN included."""
        return math.nan if self.is_nan else self.value


def with_run_details(queryset: QuerySet[Run]) -> QuerySet[Run]:
    """Load what a run table shows: user, experiment, params, tags and latest metrics (3 extra queries)."""
    return queryset.select_related("user", "experiment").prefetch_related(
        Prefetch("params", queryset=Param.objects.order_by("key")),
        Prefetch("tags", queryset=RunTag.objects.order_by("key")),
        Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key")),
    )


def _check_run_uuid(run_uuid: Any) -> None:
    """A run id that is not 32 lowercase hex digits names no run: 404, without a query."""
    if not isinstance(run_uuid, str) or not RUN_UUID_RE.match(run_uuid):
        raise NotFound("Run not found.")


def _run_by_uuid(run_uuid: str) -> Run | None:
    """The run (with experiment and user) or None; ``run_uuid`` is unique, so no ORDER BY (``first()`` adds one)."""
    return next(iter(Run.objects.select_related("experiment", "user").filter(run_uuid=run_uuid).order_by()[:1]), None)


# In the model's field order, as Model.from_db expects the values.
RUN_IDENTITY_FIELDS = tuple(
    field.attname
    for field in Run._meta.concrete_fields
    if field.attname in {"id", "run_uuid", "team_id", "experiment_id"}
)


def run_for_logging(*, user: Any, run_uuid: str) -> Run:
    """A run to log to, checked for READ like ``run_get``, with only its identity fields loaded.

    The logging endpoints need only the run's id, team (authorization) and experiment (live events):
    the write statement itself locks the row and refuses a deleted or locked run. One short
    statement with no ORM compilation and no joins; other fields are deferred (reading one loads it).
    """
    _check_run_uuid(run_uuid)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in RUN_IDENTITY_FIELDS)
    sql = f"SELECT {columns} FROM {quote(Run._meta.db_table)} WHERE run_uuid = %s"  # noqa: S608
    found = fetch_all(sql, [run_uuid], prepare=True)
    if not found:
        raise NotFound("Run not found.")
    run = Run.from_db(connection.alias, RUN_IDENTITY_FIELDS, found[0])
    authorize(user, Action.READ, run, label="Run")
    return run


def run_get(*, user: Any, run_uuid: str, action: Action = Action.READ) -> Run:
    """One run by its public id, checked for ``action``."""
    _check_run_uuid(run_uuid)
    run = _run_by_uuid(run_uuid)
    if run is None:
        raise NotFound("Run not found.")
    authorize(user, action, run, label="Run")
    return run


def run_detail(*, user: Any, run_uuid: str) -> Run:
    """One run with its params, tags and latest metrics (a fixed number of queries)."""
    _check_run_uuid(run_uuid)
    run = _run_by_uuid(run_uuid)
    if run is None:
        raise NotFound("Run not found.")
    authorize(user, Action.READ, run, label="Run")
    return attach_run_details([run])[0]


def run_list(*, user: Any, experiment_ids: Sequence[Any] = (), run_view: str = "active") -> QuerySet[Run]:
    """Runs the user may read (newest first) with params, tags and latest metrics prefetched."""
    queryset = restrict_to_visible(Run.objects.all(), user).filter(lifecycle_stage__in=_stages(run_view))
    if experiment_ids:
        queryset = queryset.filter(experiment_id__in=_readable_experiment_ids(user, experiment_ids))
    return with_run_details(queryset.order_by("-start_time", "-id"))


def _readable_experiment_ids(user: Any, experiment_ids: Sequence[Any]) -> list[int]:
    """Check READ on each experiment with one query; any unknown or invisible id is a 404."""
    try:
        wanted = list(dict.fromkeys(int(pk) for pk in experiment_ids))
    except (TypeError, ValueError):
        raise NotFound("Experiment not found.") from None
    found = {e.pk: e for e in Experiment.objects.filter(pk__in=wanted).only("pk", "team_id")}
    for pk in wanted:
        if pk not in found:
            raise NotFound(f"Experiment {pk} not found.")
        authorize(user, Action.READ, found[pk], label="Experiment")
    return wanted


@dataclass
class RunPage:
    """One page of search results and the token for the next page (None on the last)."""

    runs: list[Run]
    next_page_token: str | None


def search_runs(
    *,
    user: Any,
    experiment_ids: Sequence[Any] = (),
    filter_string: str | None = "",
    order_by: Sequence[str] | None = (),
    run_view: str = "active",
    max_results: int | None = DEFAULT_SEARCH_RESULTS,
    page_token: str | None = None,
) -> RunPage:
    """Search runs with the filter language; ``experiment_ids`` empty means every visible experiment.

    Each run comes with its user, params, tags and latest metrics loaded; not its experiment (neither API
    renders more than ``experiment_id``, and loading it cost a quarter of a 100-run page).
    Pages are keyset pages: the token holds the last row's sort position (``search.Position``) and is
    tied to this filter, order_by, view and experiments; the next page is the rows strictly after it,
    so runs created or re-sorted while a client pages are neither repeated nor skipped, and no page
    pays for an OFFSET. A token made for another search, or altered, is a 400.
    """
    tree = search.parse_filter(filter_string)
    keys = search.parse_order_by(list(order_by or ()))
    max_results = DEFAULT_SEARCH_RESULTS if max_results is None else max_results
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise InvalidInput(
            f"max_results must be between 1 and {MAX_SEARCH_RESULTS}.", details={"max_results": ["Out of range."]}
        )
    stages = _stages(run_view)
    signature = search.keyset_signature(
        filter_string or "", search.order_signature(keys), stages, sorted({str(pk) for pk in experiment_ids})
    )
    position = search.decode_position(page_token, signature, keys, model=Run)
    queryset = restrict_to_visible(Run.objects.all(), user).filter(lifecycle_stage__in=stages)
    if experiment_ids:
        queryset = queryset.filter(experiment_id__in=_readable_experiment_ids(user, experiment_ids))
    else:
        queryset = queryset.filter(experiment__lifecycle_stage=LifecycleStage.ACTIVE)
    queryset = search.apply_order_by(queryset.filter(search.compile_filter(tree)), keys)
    condition = _order_metric_condition(tree, keys)
    if position is not None:
        after = search.order_after(position, keys, model=Run)
        condition = after if condition is None else condition & after
    if condition is not None:
        # One filter() call: a second one naming the sort join would join latestmetric once more.
        queryset = queryset.filter(condition)
    runs = attach_run_details(list(queryset.select_related("user")[: max_results + 1]))
    next_token = None
    if len(runs) > max_results:
        next_token = search.encode_position(sort_position(runs[max_results - 1], keys), signature)
    return RunPage(runs=runs[:max_results], next_page_token=next_token)


def sort_position(run: Run, keys: Sequence[search.OrderKey]) -> search.Position:
    """Where ``run`` sits in ``search.apply_order_by(keys)``'s order, read from what the page loaded.

    Attributes come from the run (and its ``select_related`` user), params, tags and latest metrics
    from ``attach_run_details``' cache: the page's SQL needs no extra column. A metric's value is the
    stored one (0 for NaN, as the ordering sees it), with rank 1 when it is NaN.
    """
    found: list[tuple[int, Any]] = []
    for key in keys:
        ident = key.identifier
        if ident.entity == "attribute":
            value: Any = run
            for name in search.RUNS.attributes[ident.key].field.split("__"):
                value = None if value is None else getattr(value, name)
            found.append((search.RANK_MISSING, None) if value is None else (search.RANK_VALUE, value))
            continue
        relation = search.RUNS.entities[ident.entity].related_name or ""
        row = next((item for item in run_details(run, relation) if item.key == ident.key), None)
        if row is None:
            found.append((search.RANK_MISSING, None))
        elif ident.entity == "metric":
            found.append((search.RANK_NAN if row.is_nan else search.RANK_VALUE, row.value))
        else:
            found.append((search.RANK_VALUE, row.value))
    return search.Position(tuple(found), tuple(getattr(run, name.lstrip("-")) for name in search.RUNS.tiebreak))


def _order_metric_condition(tree: Any, keys: Sequence[search.OrderKey]) -> Q | None:
    """The filter's own tests on the first sort metric, restated on the sort join (or None).

    87 ms → 7 ms for a page over 100k runs on PostgreSQL (``search.metric_tests_on`` says why).
    """
    if not keys or keys[0].identifier.entity != "metric":
        return None
    condition = search.metric_tests_on(tree, keys[0].identifier.key, "_order_0")
    return None if condition is None else condition & Q(_order_0__is_nan=False)


def attach_run_details(runs: list[Run]) -> list[Run]:
    """Load params, tags and latest metrics of ``runs`` in one query (``UNION ALL``), grouped in dicts.

    ``run.params.all()``, ``run.tags.all()`` and ``run.latest_metrics.all()`` then answer from memory,
    as after ``prefetch_related``, but from one round trip instead of three, with light rows instead of
    model instances, and without a cloned queryset per run and relation (which cost more than the SQL
    for a page of 100 runs).
    """
    by_pk: dict[int, Run] = {run.pk: run for run in runs}
    if not by_pk:
        return runs
    caches: dict[int, dict[str, list[Any]]] = {pk: {"params": [], "tags": [], "latest_metrics": []} for pk in by_pk}
    quote = connection.ops.quote_name
    marks = ", ".join(["%s"] * len(by_pk))
    param, tag, latest = (quote(model._meta.db_table) for model in (Param, RunTag, LatestMetric))
    # Typed NULLs: PostgreSQL resolves each UNION's column types pairwise, left to right.
    no_number = "CAST(NULL AS DOUBLE PRECISION), CAST(NULL AS BOOLEAN), CAST(NULL AS BIGINT), CAST(NULL AS BIGINT)"
    sql = (
        f"SELECT 0 AS kind, run_id, key, value, {no_number} FROM {param} WHERE run_id IN ({marks}) "  # noqa: S608
        f"UNION ALL SELECT 1, run_id, key, value, {no_number} FROM {tag} WHERE run_id IN ({marks}) "
        f"UNION ALL SELECT 2, run_id, key, CAST(NULL AS TEXT), value, is_nan, timestamp, step FROM {latest} "
        f"WHERE run_id IN ({marks}) ORDER BY kind, key"
    )
    pks = list(by_pk)
    with connection.cursor() as cursor:
        cursor.execute(sql, pks * 3)
        rows = cursor.fetchall()
    relation = ("params", "tags", "latest_metrics")
    for kind, run_id, key, text_value, value, is_nan, timestamp, step in rows:
        if kind == 2:
            caches[run_id]["latest_metrics"].append(LatestValue(key, value, bool(is_nan), timestamp, step))
        else:
            caches[run_id][relation[kind]].append(KeyValue(key, text_value))
    for pk, run in by_pk.items():
        run._prefetched_objects_cache = caches[pk]
    return runs


def run_details(run: Run, relation: str) -> Iterable[Any]:
    """``run.<relation>.all()`` (params, tags or latest_metrics), straight from ``attach_run_details``' cache.

    Going through ``run.params`` builds a related-manager object per run and relation; for a page of 100
    runs that was 300 managers and 1 ms of rendering.
    """
    prefetched = getattr(run, "_prefetched_objects_cache", None)
    if prefetched is not None and relation in prefetched:
        return prefetched[relation]
    return getattr(run, relation).all()


def latest_metrics_for_runs(runs: Iterable[Run]) -> dict[int, dict[str, LatestMetric]]:
    """``{run.pk: {key: LatestMetric}}`` in one query (for views not using ``with_run_details``)."""
    result: dict[int, dict[str, LatestMetric]] = {}
    for row in LatestMetric.objects.filter(run__in=list(runs)):
        result.setdefault(row.run_id, {})[row.key] = row
    return result


# Metric history --------------------------------------------------------------------------------


def _positive_int(value: Any, *, name: str, maximum: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidInput(
            f"{name} must be an integer between {minimum} and {maximum}.", details={name: ["Out of range."]}
        )
    return value


Point = tuple[int, int, float]  # (step, timestamp, value), NaN as float("nan")


# One series point as PostgreSQL's binary send functions write it: int8 step, int8 timestamp, float8 value.
_SENT_POINT = np.dtype([("step", ">i8"), ("ts", ">i8"), ("value", ">f8")])


Series = tuple[np.ndarray, np.ndarray, np.ndarray]  # steps, timestamps, values (NaN restored)


def _empty_series() -> Series:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)


def _series_arrays_many(
    run_ids: Sequence[int], keys: Sequence[str], since_step: int | None = None
) -> dict[tuple[int, str], Series]:
    """``{(run_id, key): (steps, timestamps, values)}`` of every series, each in (step, timestamp, id) order.

    One query. PostgreSQL packs each series into one ``bytea`` (``int8send``/``float8send`` per point,
    concatenated in order, one row per series), which numpy reads in place: no Python object per point,
    about half the time of fetching the rows (or of a binary ``COPY``, which psycopg yields row by row).
    Other databases go through ``values_list``.
    """
    table = connection.ops.quote_name(Metric._meta.db_table)
    run_marks, key_marks = ", ".join(["%s"] * len(run_ids)), ", ".join(["%s"] * len(keys))
    since = "" if since_step is None else " AND step > %s"
    params: list[Any] = [*run_ids, *keys] + ([] if since_step is None else [since_step])
    where = f"run_id IN ({run_marks}) AND key IN ({key_marks}){since}"
    found: dict[tuple[int, str], Series] = {}
    if connection.vendor == "postgresql":
        value = "CASE WHEN is_nan THEN 'NaN'::float8 ELSE value END"
        rows = _fetch_rows(
            f"SELECT run_id, key, string_agg(int8send(step) || int8send(timestamp) || float8send({value}), '' "  # noqa: S608
            f"ORDER BY step, timestamp, id) FROM {table} WHERE {where} GROUP BY run_id, key",
            params,
        )
        for run_id, key, packed in rows:
            points = np.frombuffer(packed, dtype=_SENT_POINT)
            found[(run_id, key)] = (
                points["step"].astype(np.int64),
                points["ts"].astype(np.int64),
                points["value"].astype(np.float64),
            )
        return found
    rows = _fetch_rows(
        f"SELECT run_id, key, step, timestamp, value, is_nan FROM {table} WHERE {where} "  # noqa: S608
        "ORDER BY run_id, key, step, timestamp, id",
        params,
    )
    for (run_id, key), group in itertools.groupby(rows, key=operator.itemgetter(0, 1)):
        _, _, steps, stamps, raw_values, nans = zip(*group, strict=True)
        values = np.where(np.asarray(nans, dtype=bool), np.nan, np.asarray(raw_values, dtype=np.float64))
        found[(run_id, key)] = (np.asarray(steps, dtype=np.int64), np.asarray(stamps, dtype=np.int64), values)
    return found


def _series_arrays(run: Run, key: str, since_step: int | None) -> Series:
    """(steps, timestamps, values with NaN) of one series in (step, timestamp, id) order, as numpy arrays."""
    return _series_arrays_many([run.pk], [key], since_step).get((run.pk, key)) or _empty_series()


def _downsampled(series: Series, max_points: int | None) -> list[Point]:
    """The series as ``(step, timestamp, value)`` tuples, LTTB-downsampled to ``max_points`` when given."""
    steps, stamps, values = series
    if max_points is not None and len(steps) > max_points:
        keep = lttb_indices(steps.astype(float), values, max_points)
        steps, stamps, values = steps[keep], stamps[keep], values[keep]
    return list(zip(steps.tolist(), stamps.tolist(), values.tolist(), strict=True))


def _fetch_rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """All rows of a read query; on PostgreSQL in binary format (~40% less client CPU for numbers)."""
    return fetch_all(sql, params, binary=True)


DOWNSAMPLE_CACHE_SECONDS = 600


def _cached_downsample(run: Run, key: str, since_step: int | None, max_points: int) -> list[Point]:
    """LTTB-downsampled history, kept in the shared cache under the run's sequence number.

    Every write to a run bumps its ``last_seq`` in the same transaction as its points, so an answer
    stored under the seq this request read is never missing a committed point: a finished run's charts
    are read once and then served from the cache, a live run's recomputed after each write. Reading
    the series costs PostgreSQL a scan and sort of every point (about 60 ms for 100k points); the cached
    answer is one cache round trip. A cache outage only costs the recomputation.
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    cache_key = f"history-lttb:{run.run_uuid}:{run.last_seq}:{since_step}:{max_points}:{digest}"
    try:
        cached = cache.get(cache_key)
    except Exception:  # cache down: compute
        cached = None
    if cached is not None:
        return cached
    points = _downsampled(_series_arrays(run, key, since_step), max_points)
    with contextlib.suppress(Exception):
        cache.set(cache_key, points, DOWNSAMPLE_CACHE_SECONDS)
    return points


def history_points(
    *,
    run: Run,
    key: str,
    since_step: int | None = None,
    max_points: int | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
) -> tuple[list[Point], str | None]:
    """A run's history for one key in step order as ``(step, timestamp, value)`` tuples, and the next page token.

    With ``max_points`` the whole (or ``since_step``) series comes back LTTB-downsampled in one
    response; otherwise it is paged (``page_size`` points, ``next_page_token``). Values are floats,
    NaN/±inf included. No model instances and no dict per point: the history endpoints encode these
    tuples straight to JSON.
    """
    if since_step is not None and (isinstance(since_step, bool) or not isinstance(since_step, int)):
        raise InvalidInput("since_step must be an integer.", details={"since_step": ["Must be an integer."]})
    if max_points is not None:
        max_points = _positive_int(max_points, name="max_points", minimum=MIN_POINTS, maximum=MAX_DOWNSAMPLED_POINTS)
        return _cached_downsample(run, key, since_step, max_points), None
    page_size = DEFAULT_HISTORY_PAGE if page_size is None else page_size
    page_size = _positive_int(page_size, name="page_size", maximum=MAX_HISTORY_PAGE)
    cursor_position = _decode_history_token(page_token)
    table = connection.ops.quote_name(Metric._meta.db_table)
    where = ["run_id = %s", "key = %s"]
    params: list[Any] = [run.pk, key]
    if since_step is not None:
        where.append("step > %s")
        params.append(since_step)
    if cursor_position is not None:
        where.append("(step > %s OR (step = %s AND id > %s))")
        params.extend([cursor_position[0], cursor_position[0], cursor_position[1]])
    postgres = connection.vendor == "postgresql"
    # PostgreSQL stores NaN, so it can hand the value back ready; SQLite cannot (NULL), hence is_nan.
    value = "CASE WHEN is_nan THEN 'NaN'::float8 ELSE value END" if postgres else "value"
    sql = (
        f"SELECT step, timestamp, {value}, id, is_nan FROM {table} WHERE {' AND '.join(where)} "  # noqa: S608
        "ORDER BY step, id LIMIT %s"
    )
    rows = _fetch_rows(sql, [*params, page_size + 1])
    next_token = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_token = f"{rows[-1][0]}.{rows[-1][3]}"
    if postgres:
        return list(map(operator.itemgetter(0, 1, 2), rows)), next_token  # C-level, no Python per row
    nan = math.nan
    return [(step, ts, nan if is_nan else value) for step, ts, value, _, is_nan in rows], next_token


def metric_history(
    *,
    run: Run,
    key: str,
    since_step: int | None = None,
    max_points: int | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    """``history_points`` as ``{key, points: [{step, timestamp, value}], next_page_token}`` (pages, compare)."""
    points, next_token = history_points(
        run=run, key=key, since_step=since_step, max_points=max_points, page_size=page_size, page_token=page_token
    )
    return {
        "key": key,
        "points": [{"step": step, "timestamp": ts, "value": value} for step, ts, value in points],
        "next_page_token": next_token,
    }


def _decode_history_token(token: str | None) -> tuple[int, int] | None:
    if not token:
        return None
    match = re.fullmatch(r"(-?\d{1,19})\.(\d{1,19})", token)
    if match is None:
        raise InvalidInput("Invalid page token.", details={"page_token": ["Malformed."]})
    return int(match.group(1)), int(match.group(2))


def metric_history_bulk(
    *, runs: Sequence[Run], keys: Sequence[str], max_points: int | None = None
) -> list[dict[str, Any]]:
    """History of every (run, key) pair in one query, for compare views: ``[{run_id, key, points}]``."""
    if not runs or not keys:
        return []
    if len(runs) * len(keys) > MAX_BULK_SERIES:
        raise InvalidInput(
            f"At most {MAX_BULK_SERIES} series (runs x keys) per request; got {len(runs) * len(keys)}.",
            details={"keys": ["Too many series."]},
        )
    if max_points is not None:
        max_points = _positive_int(max_points, name="max_points", minimum=MIN_POINTS, maximum=MAX_DOWNSAMPLED_POINTS)
    found = _series_arrays_many([run.pk for run in runs], list(dict.fromkeys(keys)))
    return [
        {
            "run_id": run.run_uuid,
            "key": key,
            "points": [
                {"step": step, "timestamp": ts, "value": value}
                for step, ts, value in _downsampled(found.get((run.pk, key)) or _empty_series(), max_points)
            ],
        }
        for run in runs
        for key in keys
    ]


def runs_for_compare(*, user: Any, run_uuids: Sequence[str]) -> list[Run]:
    """Runs by public id for compare views, each checked for READ (404 for any not visible)."""
    unique = list(dict.fromkeys(run_uuids))
    if not all(isinstance(u, str) and RUN_UUID_RE.match(u) for u in unique):
        raise NotFound("Run not found.")
    by_uuid = {run.run_uuid: run for run in Run.objects.filter(run_uuid__in=unique)}
    runs = []
    for run_uuid in unique:
        run = by_uuid.get(run_uuid)
        if run is None:
            raise NotFound(f"Run {run_uuid} not found.")
        authorize(user, Action.READ, run, label="Run")
        runs.append(run)
    return runs


# Live catch-up ---------------------------------------------------------------------------------


def run_events_since(run: Run, seq: int, *, max_points: int = 100_000) -> dict[str, Any]:
    """What a reconnecting live client missed: metric points with ``seq > n``, grouped like events.

    Answers ``{run_id, experiment_id, seq, run, metrics: {key: [[step, timestamp, value], ...]}, truncated}``;
    ``seq`` is the run's current sequence, to resume from. When anything was missed, the final chunk also
    carries the run's current ``params`` and ``tags`` (whole maps: they replace what the client holds).
    """
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidInput("since must be a non-negative integer.", details={"since": ["Must be an integer ≥ 0."]})
    current = Run.objects.filter(pk=run.pk).values_list("last_seq", flat=True).first() or 0
    rows = list(
        Metric.objects.filter(run_id=run.pk, seq__gt=seq, seq__lte=current)
        .order_by("seq", "id")
        .values_list("seq", "key", "step", "timestamp", "value", "is_nan")[: max_points + 1]
    )
    truncated = len(rows) > max_points
    resume = current
    if truncated:
        # Stop before the last (possibly partial) batch so resuming from ``seq`` misses nothing.
        resume = rows[max_points][0] - 1
        rows = [row for row in rows[:max_points] if row[0] <= resume]
    events = {
        "run_id": run.run_uuid,
        "experiment_id": run.experiment_id,
        "seq": resume,
        "run": run_state(run),
        "metrics": group_points((key, step, ts, math.nan if nan else value) for _, key, step, ts, value, nan in rows),
        "truncated": truncated,
    }
    if seq < current and not truncated:
        # Params and tags set while the client was away: their current values (the last chunk carries them).
        events["params"] = dict(Param.objects.filter(run_id=run.pk).values_list("key", "value"))
        events["tags"] = dict(RunTag.objects.filter(run_id=run.pk).values_list("key", "value"))
    return events


def encode_points(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History points ready for JSON (non-finite values as strings)."""
    return [{**point, "value": encode_float(point["value"])} for point in points]
