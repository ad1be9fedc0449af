"""Every read for experiments and runs: lookups with permission checks, search, history, catch-up.

Run lists and details load params, tags and latest metrics with a fixed number of queries
(``prefetch_related``), whatever the number of runs.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Prefetch, Q, QuerySet

from accounts.models import Team
from accounts.permissions import Action, authorize, restrict_to_visible
from experiments import search
from experiments.downsample import MIN_POINTS, lttb_indices
from experiments.live import group_points, run_state
from experiments.models import Experiment, ExperimentTag, LatestMetric, LifecycleStage, Metric, Param, Run, RunTag
from mlplatform.errors import InvalidInput, NotFound
from mlplatform.nonfinite import encode_float

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


def with_run_details(queryset: QuerySet[Run]) -> QuerySet[Run]:
    """Load what a run table shows: user, experiment, params, tags and latest metrics (3 extra queries)."""
    return queryset.select_related("user", "experiment").prefetch_related(
        Prefetch("params", queryset=Param.objects.order_by("key")),
        Prefetch("tags", queryset=RunTag.objects.order_by("key")),
        Prefetch("latest_metrics", queryset=LatestMetric.objects.order_by("key")),
    )


def run_get(*, user: Any, run_uuid: str, action: Action = Action.READ) -> Run:
    """One run by its public id, checked for ``action``."""
    if not isinstance(run_uuid, str) or not RUN_UUID_RE.match(run_uuid):
        raise NotFound("Run not found.")
    run = Run.objects.select_related("experiment", "user").filter(run_uuid=run_uuid).first()
    if run is None:
        raise NotFound("Run not found.")
    authorize(user, action, run, label="Run")
    return run


def run_detail(*, user: Any, run_uuid: str) -> Run:
    """One run with its params, tags and latest metrics (a fixed number of queries)."""
    if not isinstance(run_uuid, str) or not RUN_UUID_RE.match(run_uuid):
        raise NotFound("Run not found.")
    run = with_run_details(Run.objects.filter(run_uuid=run_uuid)).first()
    if run is None:
        raise NotFound("Run not found.")
    authorize(user, Action.READ, run, label="Run")
    return run


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
    """Search runs with the filter language; ``experiment_ids`` empty means every visible experiment."""
    tree = search.parse_filter(filter_string)
    keys = search.parse_order_by(list(order_by or ()))
    max_results = DEFAULT_SEARCH_RESULTS if max_results is None else max_results
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise InvalidInput(
            f"max_results must be between 1 and {MAX_SEARCH_RESULTS}.", details={"max_results": ["Out of range."]}
        )
    offset = search.decode_page_token(page_token)
    queryset = restrict_to_visible(Run.objects.all(), user).filter(lifecycle_stage__in=_stages(run_view))
    if experiment_ids:
        queryset = queryset.filter(experiment_id__in=_readable_experiment_ids(user, experiment_ids))
    else:
        queryset = queryset.filter(experiment__lifecycle_stage=LifecycleStage.ACTIVE)
    queryset = search.apply_order_by(queryset.filter(search.compile_filter(tree)), keys)
    runs = list(with_run_details(queryset)[offset : offset + max_results + 1])
    next_token = search.encode_page_token(offset + max_results) if len(runs) > max_results else None
    return RunPage(runs=runs[:max_results], next_page_token=next_token)


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


def _points(rows: Sequence[tuple[int, int, float, bool]]) -> list[dict[str, Any]]:
    return [{"step": step, "timestamp": ts, "value": math.nan if is_nan else value} for step, ts, value, is_nan in rows]


def _downsample_rows(rows: list[tuple[int, int, float, bool]], max_points: int) -> list[tuple[int, int, float, bool]]:
    if len(rows) <= max_points:
        return rows
    steps, _, values, nans = (np.asarray(col) for col in zip(*rows, strict=True))
    y = np.where(nans.astype(bool), np.nan, values.astype(float))
    return [rows[i] for i in lttb_indices(steps.astype(float), y, max_points)]


def metric_history(
    *,
    run: Run,
    key: str,
    since_step: int | None = None,
    max_points: int | None = None,
    page_size: int | None = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    """A run's history for one key, in step order.

    With ``max_points`` the whole (or ``since_step``) series comes back LTTB-downsampled in one
    response; otherwise it is paged (``page_size`` points, ``next_page_token``).
    Points are ``{step, timestamp, value}`` with float values (NaN/±inf included).
    """
    queryset = Metric.objects.filter(run_id=run.pk, key=key)
    if since_step is not None:
        if isinstance(since_step, bool) or not isinstance(since_step, int):
            raise InvalidInput("since_step must be an integer.", details={"since_step": ["Must be an integer."]})
        queryset = queryset.filter(step__gt=since_step)
    columns = ("step", "timestamp", "value", "is_nan")
    if max_points is not None:
        max_points = _positive_int(max_points, name="max_points", minimum=MIN_POINTS, maximum=MAX_DOWNSAMPLED_POINTS)
        rows = list(queryset.order_by("step", "timestamp", "id").values_list(*columns))
        return {"key": key, "points": _points(_downsample_rows(rows, max_points)), "next_page_token": None}
    page_size = DEFAULT_HISTORY_PAGE if page_size is None else page_size
    page_size = _positive_int(page_size, name="page_size", maximum=MAX_HISTORY_PAGE)
    cursor = _decode_history_token(page_token)
    if cursor is not None:
        step, pk = cursor
        queryset = queryset.filter(Q(step__gt=step) | Q(step=step, id__gt=pk))
    rows = list(queryset.order_by("step", "id").values_list(*columns, "id")[: page_size + 1])
    next_token = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_token = f"{rows[-1][0]}.{rows[-1][4]}"
    return {"key": key, "points": _points([row[:4] for row in rows]), "next_page_token": next_token}


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
    """History of every (run, key) pair in one query, for compare views: ``[{run_id, key, points}]``.

    Series are grouped with numpy (boundaries where run or key changes), not a per-point loop.
    """
    if not runs or not keys:
        return []
    if len(runs) * len(keys) > MAX_BULK_SERIES:
        raise InvalidInput(
            f"At most {MAX_BULK_SERIES} series (runs x keys) per request; got {len(runs) * len(keys)}.",
            details={"keys": ["Too many series."]},
        )
    if max_points is not None:
        max_points = _positive_int(max_points, name="max_points", minimum=MIN_POINTS, maximum=MAX_DOWNSAMPLED_POINTS)
    uuid_of = {run.pk: run.run_uuid for run in runs}
    rows = list(
        Metric.objects.filter(run_id__in=list(uuid_of), key__in=list(keys))
        .order_by("run_id", "key", "step", "timestamp", "id")
        .values_list("run_id", "key", "step", "timestamp", "value", "is_nan")
    )
    found: dict[tuple[int, str], list[tuple[int, int, float, bool]]] = {}
    if rows:
        run_ids, row_keys = (np.asarray(col, dtype=object) for col in list(zip(*rows, strict=True))[:2])
        change = np.flatnonzero((run_ids[1:] != run_ids[:-1]) | (row_keys[1:] != row_keys[:-1])) + 1
        bounds = np.concatenate(([0], change, [len(rows)]))
        for start, end in itertools.pairwise(bounds):
            found[(rows[start][0], rows[start][1])] = [row[2:] for row in rows[start:end]]
    result = []
    for run in runs:
        for key in keys:
            series = found.get((run.pk, key), [])
            if max_points is not None:
                series = _downsample_rows(series, max_points)
            result.append({"run_id": run.run_uuid, "key": key, "points": _points(series)})
    return result


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
