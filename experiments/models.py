"""Experiments, runs and what runs log: params, tags, metric history and latest metric values.

Index choices (search over ~100k runs filters by metric/param/tag and orders by metric or start time):
- ``Run (experiment, lifecycle_stage, start_time)``: the default run table, newest first, per experiment.
- ``Run (team, lifecycle_stage, start_time)``: run lists across every visible experiment.
- ``LatestMetric`` unique ``(run, key)`` answers the correlated ``EXISTS``/join per run; ``(key, is_nan, value)``
  lets ``metrics.acc > 0.9`` find candidate runs without touching history, and (with its descending mirror
  on PostgreSQL) lets a search ordered by that metric walk runs in order and stop after one page.
- ``Param``/``RunTag`` unique ``(run, key)`` serve the same per-run lookups; ``(key)`` narrows a search to
  one key. Values are not indexed: they may be 6000/8000 characters, over PostgreSQL's btree row limit.
- ``Metric (run, key, step)`` serves history reads in step order; ``(run, seq)`` serves live catch-up.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.db import models


class LifecycleStage(models.TextChoices):
    """Soft-delete state, spelled as MLflow spells it."""

    ACTIVE = "active", "active"
    DELETED = "deleted", "deleted"


class RunStatus(models.TextChoices):
    """A run's status, as in MLflow."""

    RUNNING = "RUNNING", "RUNNING"
    SCHEDULED = "SCHEDULED", "SCHEDULED"
    FINISHED = "FINISHED", "FINISHED"
    FAILED = "FAILED", "FAILED"
    KILLED = "KILLED", "KILLED"


TERMINAL_STATUSES = frozenset({RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED})


class Experiment(models.Model):
    """A named group of runs owned by a team."""

    # PROTECT: deleting a team must not silently delete its experiments (the service answers 409).
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="experiments")
    name = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    artifact_location = models.CharField(max_length=1000, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="experiment_unique_team_name")]
        indexes = [models.Index(fields=["team", "lifecycle_stage"], name="experiment_team_stage")]

    def __str__(self) -> str:
        return self.name


class ExperimentTag(models.Model):
    """A key/value tag on an experiment."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["experiment", "key"], name="experimenttag_unique_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class Run(models.Model):
    """One execution of training code: its status, times and everything it logs."""

    run_uuid = models.CharField(max_length=32, unique=True, help_text="Public id (32 hex digits).")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    # Denormalised from the experiment so permission checks need no join.
    team = models.ForeignKey("accounts.Team", on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=250, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.BigIntegerField(help_text="Milliseconds since the epoch.")
    end_time = models.BigIntegerField(null=True, blank=True, help_text="Milliseconds since the epoch.")
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.ACTIVE)
    artifact_uri = models.CharField(max_length=1000, blank=True)
    locked = models.BooleanField(
        default=False, help_text="A locked (finished) run accepts no more metrics, params or tags."
    )
    last_seq = models.BigIntegerField(default=0, help_text="Bumped by every committed change; live events carry it.")

    class Meta:
        ordering = ["-start_time", "-id"]
        indexes = [
            models.Index(fields=["experiment", "lifecycle_stage", "start_time"], name="run_exp_stage_start"),
            models.Index(fields=["team", "lifecycle_stage", "start_time"], name="run_team_stage_start"),
        ]

    def __str__(self) -> str:
        return self.name or self.run_uuid

    @property
    def is_active(self) -> bool:
        """True unless soft-deleted."""
        return self.lifecycle_stage == LifecycleStage.ACTIVE


class Param(models.Model):
    """An immutable run parameter."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_unique_run_key")]
        indexes = [models.Index(fields=["key"], name="param_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


class RunTag(models.Model):
    """A settable, deletable key/value tag on a run."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField(blank=True)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="runtag_unique_run_key")]
        indexes = [models.Index(fields=["key"], name="runtag_key")]

    def __str__(self) -> str:
        return f"{self.key}={self.value[:50]}"


def _float_value(point: Metric | LatestMetric) -> float:
    """The logged value, NaN included.

    SQLite cannot store NaN (it reads back as NULL), so NaN is ``is_nan=True`` with ``value=0``, as MLflow does.
    """
    return math.nan if point.is_nan else point.value


class Metric(models.Model):
    """One logged metric point; history is append-only."""

    # No index of its own: (run, key, step) and (run, seq) start with it, and every index costs each insert.
    # No database constraint either (PostgreSQL, migration 0004): checking it cost 40 % of the database's
    # time per inserted point. Every insert locks its run row first (services._bump_seq and the one-statement
    # path), and the hard deletes lock the run rows before deleting, so no point can outlive its run.
    # Deleting a run still deletes its history (Django's CASCADE).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics", db_index=False, db_constraint=False)
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField(help_text="Milliseconds since the epoch.")
    step = models.BigIntegerField(default=0)
    seq = models.BigIntegerField(default=0, help_text="The run's last_seq of the batch that wrote this point.")

    float_value = property(_float_value)

    class Meta:
        indexes = [
            models.Index(fields=["run", "key", "step"], name="metric_run_key_step"),
            models.Index(fields=["run", "seq"], name="metric_run_seq"),
        ]

    def __str__(self) -> str:
        return f"{self.key}[{self.step}]={self.float_value}"


class LatestMetric(models.Model):
    """A run's latest point per key: highest step, ties broken by timestamp then value."""

    # No index of its own: the (run, key) unique constraint starts with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="latest_metrics", db_index=False)
    key = models.CharField(max_length=250)
    value = models.FloatField()
    is_nan = models.BooleanField(default=False)
    timestamp = models.BigIntegerField()
    step = models.BigIntegerField(default=0)

    float_value = property(_float_value)

    class Meta:
        ordering = ["key"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="latestmetric_unique_run_key")]
        # (key, is_nan, value) answers ``metrics.x > v`` and, scanned forward, ``ORDER BY metrics.x ASC``.
        # Migration 0002 adds its mirror for ``DESC`` on PostgreSQL (explicit NULLS FIRST, which SQLite's
        # CREATE INDEX cannot spell and Django cannot declare per database).
        indexes = [models.Index(fields=["key", "is_nan", "value"], name="latestmetric_key_nan_value")]

    def __str__(self) -> str:
        return f"{self.key}={self.float_value}"
