"""Operators' console for experiments and runs.

Records are read-only here: every change goes through a service (soft delete, restore, lock, hard
delete as actions), so limits, permissions, audit and live events apply as they do for the API.
Hard delete is for superusers and asks for confirmation first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join

from experiments import services
from experiments.models import Experiment, ExperimentTag, LatestMetric, Metric, Param, Run, RunTag
from mlplatform.errors import ServiceError
from mlplatform.nonfinite import encode_float


class ReadOnlyMixin:
    """No add/change through admin forms; views and actions only."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Objects are created by training code and the API, not in admin."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Changes go through actions (services)."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Deletes go through the audited actions, never Django's plain delete."""
        return False


class ReadOnlyInline(ReadOnlyMixin, admin.TabularInline):
    """An inline that only shows rows."""

    extra = 0
    can_delete = False
    show_change_link = False


def run_service_action(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, service: Callable[..., Any], verb: str
) -> None:
    """Apply a service to each selected object, reporting successes and refusals."""
    done, refused = 0, []
    for obj in queryset:
        try:
            service(obj)
        except ServiceError as exc:
            refused.append(f"{obj}: {exc.message}")
        else:
            done += 1
    if done:
        modeladmin.message_user(request, f"{verb} {done} object(s).", messages.SUCCESS)
    for message in refused:
        modeladmin.message_user(request, message, messages.ERROR)


def confirm_hard_delete(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet, delete: Callable[[Any], None]
) -> HttpResponse | None:
    """Show a confirmation page; on confirmation delete each object through ``delete`` (audited)."""
    if not request.user.is_superuser:
        modeladmin.message_user(request, "Only superusers may delete permanently.", messages.ERROR)
        return None
    if request.POST.get("confirm") == "yes":
        run_service_action(modeladmin, request, queryset, delete, "Permanently deleted")
        return None
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Delete permanently?",
        "objects": queryset,
        "opts": modeladmin.model._meta,
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
    }
    return TemplateResponse(request, "admin/experiments/confirm_hard_delete.html", context)


class ExperimentTagInline(ReadOnlyInline):
    """An experiment's tags."""

    model = ExperimentTag
    fields = ["key", "value"]
    readonly_fields = ["key", "value"]


@admin.register(Experiment)
class ExperimentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Experiments with their tags."""

    list_display = ["name", "team", "lifecycle_stage", "created_by", "created_at"]
    list_filter = ["lifecycle_stage", "team", "created_by", "created_at"]
    search_fields = ["name", "team__name", "description"]
    list_select_related = ["team", "created_by"]
    inlines = [ExperimentTagInline]
    actions = ["soft_delete", "restore", "hard_delete"]

    @admin.action(description="Soft-delete selected experiments (and their runs)")
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        """Soft-delete through the service (admins of the team or superusers)."""
        run_service_action(
            self,
            request,
            queryset,
            lambda e: services.experiment_delete(user=request.user, experiment=e, request=request),
            "Deleted",
        )

    @admin.action(description="Restore selected experiments (and their runs)")
    def restore(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        """Restore through the service."""
        run_service_action(
            self,
            request,
            queryset,
            lambda e: services.experiment_restore(user=request.user, experiment=e, request=request),
            "Restored",
        )

    @admin.action(description="Delete selected experiments permanently (superusers)")
    def hard_delete(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> HttpResponse | None:
        """Ask, then delete for good (audited)."""
        return confirm_hard_delete(
            self,
            request,
            queryset,
            lambda e: services.experiment_hard_delete(user=request.user, experiment=e, request=request),
        )


class ParamInline(ReadOnlyInline):
    """A run's params (immutable)."""

    model = Param
    fields = ["key", "value"]
    readonly_fields = ["key", "value"]


class RunTagInline(ReadOnlyInline):
    """A run's tags."""

    model = RunTag
    fields = ["key", "value"]
    readonly_fields = ["key", "value"]


class LatestMetricInline(ReadOnlyInline):
    """A run's latest metric values."""

    model = LatestMetric
    fields = ["key", "shown_value", "step", "timestamp"]
    readonly_fields = ["key", "shown_value", "step", "timestamp"]

    @admin.display(description="value")
    def shown_value(self, obj: LatestMetric) -> Any:
        """The value, NaN included."""
        return encode_float(obj.float_value)


class StartedFilter(admin.SimpleListFilter):
    """Filter runs by start time (stored as epoch milliseconds)."""

    title = "started"
    parameter_name = "started"
    PERIODS = {"1d": ("Last 24 hours", 1), "7d": ("Last 7 days", 7), "30d": ("Last 30 days", 30)}

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        """The periods offered."""
        return [(key, label) for key, (label, _) in self.PERIODS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Run]) -> QuerySet[Run]:
        """Runs started within the chosen period."""
        period = self.PERIODS.get(self.value() or "")
        if period is None:
            return queryset
        since = timezone.now() - timedelta(days=period[1])
        return queryset.filter(start_time__gte=int(since.timestamp() * 1000))


@admin.register(Run)
class RunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Runs with params, tags and latest metrics."""

    list_display = ["run_uuid", "name", "experiment", "team", "status", "user", "lifecycle_stage", "locked", "started"]
    list_filter = ["status", "lifecycle_stage", "locked", StartedFilter, "team", "user"]
    search_fields = ["run_uuid", "name", "experiment__name", "user__username"]
    list_select_related = ["experiment", "team", "user"]
    readonly_fields = ["latest_metrics_table"]
    inlines = [ParamInline, RunTagInline, LatestMetricInline]
    actions = ["soft_delete", "restore", "lock", "unlock", "hard_delete"]

    @admin.display(description="started", ordering="start_time")
    def started(self, run: Run) -> str:
        """Start time as a readable UTC date."""
        return datetime.fromtimestamp(run.start_time / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="latest metrics")
    def latest_metrics_table(self, run: Run) -> str:
        """Latest metrics as ``key = value (step)`` lines."""
        rows = [(m.key, encode_float(m.float_value), m.step) for m in run.latest_metrics.all()]
        return format_html_join("\n", "<div>{} = {} (step {})</div>", rows) or "—"

    @admin.action(description="Soft-delete selected runs")
    def soft_delete(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        """Soft-delete through the service."""
        run_service_action(
            self, request, queryset, lambda r: services.run_delete(user=request.user, run=r, request=request), "Deleted"
        )

    @admin.action(description="Restore selected runs")
    def restore(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        """Restore through the service."""
        run_service_action(
            self,
            request,
            queryset,
            lambda r: services.run_restore(user=request.user, run=r, request=request),
            "Restored",
        )

    @admin.action(description="Lock selected finished runs against more logging")
    def lock(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        """Lock through the service."""
        run_service_action(
            self,
            request,
            queryset,
            lambda r: services.run_set_locked(user=request.user, run=r, locked=True, request=request),
            "Locked",
        )

    @admin.action(description="Unlock selected runs")
    def unlock(self, request: HttpRequest, queryset: QuerySet[Run]) -> None:
        """Unlock through the service."""
        run_service_action(
            self,
            request,
            queryset,
            lambda r: services.run_set_locked(user=request.user, run=r, locked=False, request=request),
            "Unlocked",
        )

    @admin.action(description="Delete selected runs permanently (superusers)")
    def hard_delete(self, request: HttpRequest, queryset: QuerySet[Run]) -> HttpResponse | None:
        """Ask, then delete for good (audited)."""
        return confirm_hard_delete(
            self, request, queryset, lambda r: services.run_hard_delete(user=request.user, run=r, request=request)
        )


@admin.register(Param)
class ParamAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Params, searchable by key."""

    list_display = ["key", "value", "run"]
    search_fields = ["key", "run__run_uuid"]
    raw_id_fields = ["run"]
    list_select_related = ["run"]


@admin.register(RunTag)
class RunTagAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Run tags, searchable by key."""

    list_display = ["key", "value", "run"]
    search_fields = ["key", "run__run_uuid"]
    raw_id_fields = ["run"]
    list_select_related = ["run"]


@admin.register(ExperimentTag)
class ExperimentTagAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Experiment tags, searchable by key."""

    list_display = ["key", "value", "experiment"]
    search_fields = ["key", "experiment__name"]
    list_select_related = ["experiment"]


@admin.register(LatestMetric)
class LatestMetricAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Latest metric values per run and key."""

    list_display = ["key", "value", "is_nan", "step", "timestamp", "run"]
    search_fields = ["key", "run__run_uuid"]
    raw_id_fields = ["run"]
    list_select_related = ["run"]


@admin.register(Metric)
class MetricAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Metric history (large: no full count, search by run id)."""

    list_display = ["key", "step", "value", "is_nan", "timestamp", "seq", "run"]
    search_fields = ["=run__run_uuid", "key"]
    raw_id_fields = ["run"]
    list_select_related = ["run"]
    show_full_result_count = False
