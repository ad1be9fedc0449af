"""Reads that only the browser pages need: the experiment list with activity, and the keyset-paged runs table.

The runs table must stay fast at 100k runs, so it never uses OFFSET: every sort is the tuple
``(rank, value, start_time DESC, id DESC)`` and a page token holds the last row's tuple. ``rank`` puts
runs missing the sort value (and NaN metrics) after the others, as the API's ``order_by`` does.
The filter box uses the API's parser (``experiments.search``), so one grammar serves both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Case,
    Count,
    F,
    FilteredRelation,
    IntegerField,
    Max,
    Q,
    QuerySet,
    Value,
    When,
)

from accounts.permissions import Action, authorize, restrict_to_visible
from experiments import search
from experiments.models import Experiment, LatestMetric, LifecycleStage, Param, Run, RunTag
from mlplatform.errors import InvalidInput

RUNS_PAGE_SIZE = 50
KEY_SAMPLE_RUNS = 1000
# Sortable run attributes: column name in the page -> Run field.
SORT_ATTRIBUTES = {"run_name": "name", "status": "status", "start_time": "start_time", "end_time": "end_time"}
ENTITY_PREFIXES = {"metrics": "metric", "params": "param", "tags": "tag"}


def experiments_for_list(*, user: Any, team_id: int | None = None, query: str = "") -> QuerySet[Experiment]:
    """Active experiments the user may read, with ``run_count`` and ``last_activity`` (ms), busiest first."""
    experiments = restrict_to_visible(Experiment.objects.filter(lifecycle_stage=LifecycleStage.ACTIVE), user)
    if team_id is not None:
        experiments = experiments.filter(team_id=team_id)
    if query:
        experiments = experiments.filter(name__icontains=query)
    active_runs = Q(runs__lifecycle_stage=LifecycleStage.ACTIVE)
    return (
        experiments.select_related("team")
        .annotate(
            run_count=Count("runs", filter=active_runs),
            running_count=Count("runs", filter=active_runs & Q(runs__status="RUNNING")),
            last_run_start=Max("runs__start_time", filter=active_runs),
        )
        .order_by(F("last_run_start").desc(nulls_last=True), "-id")
    )


@dataclass(frozen=True)
class Column:
    """A chooseable column of the runs table: ``metrics.acc``, ``params.lr``, ``tags.team``."""

    entity: str  # metrics | params | tags
    key: str

    @property
    def name(self) -> str:
        """The column's id, also its sort key and its name in the filter language."""
        return f"{self.entity}.{self.key}"


def run_columns(*, experiment: Experiment) -> dict[str, list[Column]]:
    """Metric, param and tag keys seen in the experiment's newest runs (bounded, so 100k runs stay fast)."""
    recent = Run.objects.filter(experiment=experiment, lifecycle_stage=LifecycleStage.ACTIVE).order_by(
        "-start_time", "-id"
    )[:KEY_SAMPLE_RUNS]
    recent_ids = recent.values("id")
    found: dict[str, list[Column]] = {}
    for entity, model in (("metrics", LatestMetric), ("params", Param), ("tags", RunTag)):
        keys = model.objects.filter(run_id__in=recent_ids).values_list("key", flat=True).distinct().order_by("key")
        found[entity] = [Column(entity, key) for key in keys if not (entity == "tags" and key.startswith("mlflow."))]
    return found


@dataclass(frozen=True)
class Sort:
    """The runs table's sort: a column name (``start_time``, ``metrics.acc``...) and a direction."""

    column: str = "start_time"
    ascending: bool = False

    @property
    def signature(self) -> str:
        """Ties a page token to the sort it was made for."""
        return hashlib.sha256(f"{self.column}|{self.ascending}".encode()).hexdigest()[:12]


def parse_sort(raw: str | None) -> Sort:
    """``-metrics.acc`` (descending) / ``params.lr`` (ascending); unknown columns are a 400."""
    if not raw:
        return Sort()
    ascending = not raw.startswith("-")
    column = raw.lstrip("-")
    entity, dot, key = column.partition(".")
    if column in SORT_ATTRIBUTES or (dot and entity in ENTITY_PREFIXES and key):
        return Sort(column, ascending)
    raise InvalidInput(f"Cannot sort by {column!r}.", details={"sort": ["Unknown column."]})


@dataclass
class RunsPage:
    """One page of the runs table."""

    runs: list[Run]
    next_token: str | None
    metrics: dict[int, dict[str, LatestMetric]] = field(default_factory=dict)
    params: dict[int, dict[str, str]] = field(default_factory=dict)
    tags: dict[int, dict[str, str]] = field(default_factory=dict)


def _sort_annotations(queryset: QuerySet, sort: Sort) -> QuerySet:
    """Annotate ``_rank`` (0 value, 2 missing) and ``_value`` for a run attribute, param or tag sort column."""
    if sort.column == "start_time":
        return queryset.annotate(_rank=Value(0, output_field=IntegerField()), _value=F("start_time"))
    if sort.column in SORT_ATTRIBUTES:
        column = F(SORT_ATTRIBUTES[sort.column])
        return queryset.annotate(
            _rank=Case(
                When(**{f"{SORT_ATTRIBUTES[sort.column]}__isnull": True}, then=Value(2)),
                default=Value(0),
                output_field=IntegerField(),
            ),
            _value=column,
        )
    # Params and tags (metrics have their own reader, ``_metric_sorted_rows``).
    entity, _, key = sort.column.partition(".")
    relation = {"params": "params", "tags": "tags"}[entity]
    queryset = queryset.annotate(_sorted=FilteredRelation(relation, condition=Q(**{f"{relation}__key": key})))
    return queryset.annotate(
        _rank=Case(When(_sorted__id__isnull=True, then=Value(2)), default=Value(0), output_field=IntegerField()),
        _value=F("_sorted__value"),
    )


def _after(cursor: dict[str, Any], sort: Sort) -> Q:
    """Rows strictly after the cursor row in ``(rank, value, start_time DESC, id DESC)`` order."""
    if sort.column == "start_time":
        # Never null, so the tuple is just (start_time, id DESC): plain column tests the run index can serve.
        beyond = Q(start_time__gt=cursor["v"]) if sort.ascending else Q(start_time__lt=cursor["v"])
        return beyond | Q(start_time=cursor["v"], id__lt=cursor["i"])
    tie = Q(start_time__lt=cursor["s"]) | Q(start_time=cursor["s"], id__lt=cursor["i"])
    if cursor["r"] == 0:
        beyond = Q(_value__gt=cursor["v"]) if sort.ascending else Q(_value__lt=cursor["v"])
        same_rank = beyond | (Q(_value=cursor["v"]) & tie)
    else:
        same_rank = tie
    return Q(_rank__gt=cursor["r"]) | (Q(_rank=cursor["r"]) & same_rank)


def _metric_sorted_rows(
    runs: QuerySet, sort: Sort, cursor: dict[str, Any] | None, limit: int, *, restated: Q | None = None
) -> list[Run]:
    """Up to ``limit`` runs in a metric's order, read one rank at a time from the cursor's rank on.

    Runs with a value come first, walked in value order (the ``latestmetric (key, is_nan, value)``
    index serves it, so a page over 100k runs stops after its rows instead of sorting them all), then
    runs whose value is NaN, then runs without the metric, each newest first. The rows carry the
    ``_rank``/``_value`` a page token is made of, like ``_sort_annotations``' single query.
    ``restated``: the filter's own tests on the sort metric; only runs with a value can pass them.
    """
    key = sort.column.partition(".")[2]
    runs = runs.annotate(_sorted=FilteredRelation("latest_metrics", condition=Q(latest_metrics__key=key)))
    newest = ["-start_time", "-id"]
    value = F("_sorted__value")
    with_value = Q(_sorted__is_nan=False) if restated is None else Q(_sorted__is_nan=False) & restated
    segments: list[tuple[int, Q, list[Any]]] = [
        (0, with_value, [value.asc() if sort.ascending else value.desc(), *newest]),
    ]
    if restated is None:
        segments += [(1, Q(_sorted__is_nan=True), newest), (2, Q(_sorted__id__isnull=True), newest)]
    rows: list[Run] = []
    for rank, condition, ordering in segments:
        if cursor is not None and rank < cursor["r"]:
            continue
        if cursor is not None and rank == cursor["r"]:
            tie = Q(start_time__lt=cursor["s"]) | Q(start_time=cursor["s"], id__lt=cursor["i"])
            if rank == 0:
                beyond = Q(_sorted__value__gt=cursor["v"]) if sort.ascending else Q(_sorted__value__lt=cursor["v"])
                tie = beyond | (Q(_sorted__value=cursor["v"]) & tie)
            condition &= tie
        # One filter() call: each further call on the relation would join latestmetric once more.
        queryset = runs.filter(condition)
        if rank == 0:
            queryset = queryset.annotate(_value=value)
        found = list(queryset.select_related("user").order_by(*ordering)[: limit - len(rows)])
        for run in found:
            run._rank = rank
            if rank:
                run._value = None
        rows += found
        if len(rows) >= limit:
            break
    return rows


def encode_cursor(run: Any, sort: Sort) -> str:
    """A page token after ``run`` (which carries the ``_rank``/``_value`` annotations)."""
    data = {"k": sort.signature, "r": run._rank, "v": run._value, "s": run.start_time, "i": run.id}
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str | None, sort: Sort) -> dict[str, Any] | None:
    """The cursor in a page token; malformed or made for another sort → a 400."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        valid = (
            isinstance(data, dict)
            and data.get("k") == sort.signature
            and data.get("r") in (0, 1, 2)
            and isinstance(data.get("s"), int)
            and isinstance(data.get("i"), int)
            and (data.get("v") is None or isinstance(data["v"], (int, float, str)))
        )
    except (ValueError, TypeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidInput("This page link is out of date; start again from the first page.")
    return data


def runs_page(
    *,
    user: Any,
    experiment: Experiment,
    filter_string: str = "",
    sort: Sort | None = None,
    page_token: str | None = None,
    page_size: int = RUNS_PAGE_SIZE,
) -> RunsPage:
    """One keyset page of the experiment's active runs, filtered with the API's grammar, with their values."""
    authorize(user, Action.READ, experiment, label="Experiment")
    sort = sort or Sort()
    tree = search.parse_filter(filter_string)
    condition = search.compile_filter(tree)
    cursor = decode_cursor(page_token, sort)
    runs = Run.objects.filter(experiment=experiment, lifecycle_stage=LifecycleStage.ACTIVE).filter(condition)
    if sort.column.startswith("metrics."):
        rows = _metric_sorted_rows(
            runs,
            sort,
            cursor,
            page_size + 1,
            restated=search.metric_tests_on(tree, sort.column.partition(".")[2], "_sorted"),
        )
    else:
        runs = _sort_annotations(runs, sort)
        if cursor is not None:
            runs = runs.filter(_after(cursor, sort))
        if sort.column == "start_time":
            # The default table order, straight off the (experiment, lifecycle_stage, start_time) index.
            ordering = ["start_time" if sort.ascending else "-start_time", "-id"]
        else:
            ordering = ["_rank", F("_value").asc() if sort.ascending else F("_value").desc(), "-start_time", "-id"]
        rows = list(runs.select_related("user").order_by(*ordering)[: page_size + 1])
    next_token = encode_cursor(rows[page_size - 1], sort) if len(rows) > page_size else None
    rows = rows[:page_size]
    return RunsPage(runs=rows, next_token=next_token, **run_values(run_ids=[run.id for run in rows]))


def run_values(*, run_ids: list[int]) -> dict[str, dict[int, dict[str, Any]]]:
    """Latest metrics, params and tags of the given runs, by run id (three queries)."""
    metrics: dict[int, dict[str, LatestMetric]] = {run_id: {} for run_id in run_ids}
    params: dict[int, dict[str, str]] = {run_id: {} for run_id in run_ids}
    tags: dict[int, dict[str, str]] = {run_id: {} for run_id in run_ids}
    if run_ids:
        for metric in LatestMetric.objects.filter(run_id__in=run_ids):
            metrics[metric.run_id][metric.key] = metric
        for run_id, key, value in Param.objects.filter(run_id__in=run_ids).values_list("run_id", "key", "value"):
            params[run_id][key] = value
        for run_id, key, value in RunTag.objects.filter(run_id__in=run_ids).values_list("run_id", "key", "value"):
            tags[run_id][key] = value
    return {"metrics": metrics, "params": params, "tags": tags}


def active_run_count(*, experiment: Experiment) -> int:
    """How many active runs the experiment has."""
    return Run.objects.filter(experiment=experiment, lifecycle_stage=LifecycleStage.ACTIVE).count()
