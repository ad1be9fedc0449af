"""Operators' console for the registry: models with versions, deployments with events, webhooks with deliveries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.permissions import Action, can
from mlplatform.errors import ServiceError
from registry import services, webhooks
from registry.models import (
    SOURCE_MAX,
    Alert,
    AlertRule,
    Alias,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Environment,
    ModelVersion,
    ModelVersionTag,
    MonitoringMetric,
    RegisteredModel,
    RegisteredModelTag,
    StageTransition,
    Webhook,
    WebhookDelivery,
)


class NoAddMixin:
    """For rows only services create (versions, deployments, events, alerts…): the admin shows and filters them.

    An add form would bypass the service's rules (numbering, one live deployment, events) and its required
    read-only fields would make it fail anyway.
    """

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False


class TeamFixedOnChangeMixin:
    """``team`` is chosen when the row is created, then read-only: children denormalise it (``team_id``)."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Sequence[str]:
        fields = list(super().get_readonly_fields(request, obj))  # type: ignore[misc]
        return [*fields, "team"] if obj is not None and "team" not in fields else fields


class DeleteEachMixin:
    """Bulk delete ("delete selected") goes through ``delete_model`` for each row, so each is a service call."""

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for obj in queryset:
            self.delete_model(request, obj)  # type: ignore[attr-defined]


class KeepDeploymentHistoryMixin(DeleteEachMixin):
    """Delete through the service (role check, audit event) and say why a deployed model/version is kept.

    ``Deployment.model``/``version`` are PROTECT, so Django's delete page already lists the deployments in
    the way and deletes nothing; this adds the service's explanation (its 409 message) above that list.
    """

    def _deployments(self, obj: Any) -> QuerySet:
        raise NotImplementedError

    def _label(self, obj: Any) -> str:
        raise NotImplementedError

    def _delete(self, request: HttpRequest, obj: Any) -> None:
        raise NotImplementedError

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None) -> Any:
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is not None:
            conflict = services.deployment_history_conflict(self._deployments(obj), self._label(obj))
            if conflict is not None:
                self.message_user(request, conflict.message, messages.ERROR)  # type: ignore[attr-defined]
        return super().delete_view(request, object_id, extra_context)  # type: ignore[misc]

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        try:
            self._delete(request, obj)
        except ServiceError as exc:
            self.message_user(request, exc.message, messages.ERROR)  # type: ignore[attr-defined]


class RegisteredModelTagInline(admin.TabularInline):
    """A model's tags."""

    model = RegisteredModelTag
    extra = 0


class ModelVersionInline(admin.TabularInline):
    """A model's versions (read-only: versions are registered through the API)."""

    model = ModelVersion
    extra = 0
    fields = ["version", "current_stage", "status", "source", "run", "created_by", "created_at"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False
    ordering = ["-version"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AliasInline(admin.TabularInline):
    """A model's aliases."""

    model = Alias
    extra = 0
    fields = ["alias", "version", "updated_by", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(KeepDeploymentHistoryMixin, TeamFixedOnChangeMixin, admin.ModelAdmin):
    """Registered models with their versions, aliases and tags."""

    list_display = ["name", "team", "last_version", "created_by", "updated_at"]
    list_filter = ["team"]
    search_fields = ["name", "description"]
    readonly_fields = ["last_version", "created_by", "created_at", "updated_at"]
    inlines = [ModelVersionInline, AliasInline, RegisteredModelTagInline]

    def _deployments(self, obj: RegisteredModel) -> QuerySet:
        return obj.deployments.all()

    def _label(self, obj: RegisteredModel) -> str:
        return f"Registered model {obj.name!r}"

    def _delete(self, request: HttpRequest, obj: RegisteredModel) -> None:
        services.registered_model_delete(user=request.user, model=obj, request=request)


class ModelVersionTagInline(admin.TabularInline):
    """A version's tags."""

    model = ModelVersionTag
    extra = 0


class StageTransitionInline(admin.TabularInline):
    """A version's stage history."""

    model = StageTransition
    extra = 0
    fields = ["created_at", "from_stage", "to_stage", "user", "comment"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(KeepDeploymentHistoryMixin, NoAddMixin, admin.ModelAdmin):
    """Model versions with tags and stage history."""

    list_display = ["__str__", "team", "current_stage", "status", "created_by", "created_at"]
    list_filter = ["current_stage", "status", "team"]
    search_fields = ["model__name", "source", "run__run_uuid"]
    list_select_related = ["model", "team", "created_by"]
    readonly_fields = ["model", "team", "version", "run", "current_stage", "created_by", "created_at", "updated_at"]
    raw_id_fields = ["run"]
    inlines = [ModelVersionTagInline, StageTransitionInline]

    def _deployments(self, obj: ModelVersion) -> QuerySet:
        return obj.deployments.all()

    def _label(self, obj: ModelVersion) -> str:
        return f"Version {obj.version} of {obj.model.name!r}"

    def _delete(self, request: HttpRequest, obj: ModelVersion) -> None:
        services.model_version_delete(user=request.user, version=obj, request=request)


@admin.register(RegisteredModelTag)
class RegisteredModelTagAdmin(admin.ModelAdmin):
    """Model tags."""

    list_display = ["model", "key", "value"]
    search_fields = ["key", "model__name"]


@admin.register(ModelVersionTag)
class ModelVersionTagAdmin(admin.ModelAdmin):
    """Version tags."""

    list_display = ["version", "key", "value"]
    search_fields = ["key", "version__model__name"]


@admin.register(Alias)
class AliasAdmin(NoAddMixin, admin.ModelAdmin):
    """Aliases (moved through the API so the move is audited)."""

    list_display = ["__str__", "version", "updated_by", "updated_at"]
    search_fields = ["alias", "model__name"]
    readonly_fields = ["model", "alias", "version", "updated_by", "updated_at"]


@admin.register(StageTransition)
class StageTransitionAdmin(NoAddMixin, admin.ModelAdmin):
    """Stage transition history (read-only)."""

    list_display = ["version", "from_stage", "to_stage", "user", "created_at"]
    list_filter = ["to_stage"]
    readonly_fields = ["version", "from_stage", "to_stage", "user", "comment", "created_at"]


@admin.register(Environment)
class EnvironmentAdmin(TeamFixedOnChangeMixin, admin.ModelAdmin):
    """Environments in promotion order."""

    list_display = ["name", "team", "position", "created_at"]
    list_filter = ["team"]
    search_fields = ["name"]


class DeploymentEventInline(admin.TabularInline):
    """Every change of a deployment."""

    model = DeploymentEvent
    extra = 0
    fields = ["seq", "created_at", "kind", "from_status", "to_status", "actor", "message"]
    readonly_fields = fields
    can_delete = False
    ordering = ["seq"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class AlertRuleInline(admin.TabularInline):
    """A deployment's alert rules."""

    model = AlertRule
    extra = 0
    fields = ["metric", "comparison", "threshold", "window_seconds", "is_enabled"]


@admin.register(Deployment)
class DeploymentAdmin(NoAddMixin, admin.ModelAdmin):
    """Deployments with their events; the "rollback" action restores the previous live version.

    Every field is read-only: a deployment changes only through deploy/promote/rollback/status, which record
    a ``DeploymentEvent`` and an audit event (the API, the pages or the action below).
    """

    list_display = ["id", "model", "version", "environment", "status", "origin", "created_by", "created_at"]
    list_filter = ["status", "environment", "team", "origin"]
    search_fields = ["model__name"]
    list_select_related = ["model", "version", "environment", "created_by"]
    readonly_fields = [
        "team",
        "model",
        "version",
        "environment",
        "status",
        "origin",
        "source",
        "endpoint_url",
        "config",
        "created_by",
        "created_at",
        "updated_at",
        "went_live_at",
        "retired_at",
        "last_seq",
    ]
    inlines = [DeploymentEventInline, AlertRuleInline]
    actions = ["rollback"]

    def save_model(self, request: HttpRequest, obj: Deployment, form: forms.ModelForm, change: bool) -> None:
        """Nothing of the deployment itself is editable here (only its alert rules, saved as inlines).

        Re-saving the row would write back ``status`` and ``last_seq`` as read at the start of the request,
        racing a concurrent status change or metric batch.
        """

    def save_formset(self, request: HttpRequest, form: forms.ModelForm, formset: Any, change: bool) -> None:
        """Alert rules are created, changed and deleted through the services (firing alerts follow the rule)."""
        if formset.model is not AlertRule:
            super().save_formset(request, form, formset, change)
            return
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []  # for the change log
        for rule_form in formset.forms:
            if not rule_form.has_changed() and not formset._should_delete_form(rule_form):
                continue
            rule = rule_form.instance
            if formset._should_delete_form(rule_form):
                if rule.pk is not None:
                    _save_rule(self, request, rule, delete=True)
                continue
            rule.deployment = form.instance
            _save_rule(self, request, rule, changed=rule_form.changed_data)

    @admin.action(description="Roll back to the previously live version")
    def rollback(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Roll back each selected live (or failed) deployment's model and environment (audited like the API)."""
        for deployment in queryset.select_related("model", "environment"):
            if deployment.status not in (DeploymentStatus.LIVE, DeploymentStatus.FAILED):
                self.message_user(
                    request,
                    f"Deployment {deployment.pk} is {deployment.status}; only a live or failed one can be rolled "
                    "back; skipped.",
                    messages.WARNING,
                )
                continue
            try:
                restored = services.rollback(
                    user=request.user, model=deployment.model, environment=deployment.environment, request=request
                )
            except ServiceError as exc:
                self.message_user(request, f"Deployment {deployment.pk}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    f"{deployment.model.name} in {deployment.environment.name} rolled back: deployment {restored.pk} "
                    f"is live with version {restored.version.version}.",
                    messages.SUCCESS,
                )


@admin.register(DeploymentEvent)
class DeploymentEventAdmin(NoAddMixin, admin.ModelAdmin):
    """Deployment events (read-only)."""

    list_display = ["deployment", "seq", "kind", "from_status", "to_status", "actor", "created_at"]
    list_filter = ["kind"]
    readonly_fields = [
        "deployment",
        "seq",
        "kind",
        "from_status",
        "to_status",
        "message",
        "details",
        "actor",
        "created_at",
    ]


@admin.register(MonitoringMetric)
class MonitoringMetricAdmin(NoAddMixin, admin.ModelAdmin):
    """Monitoring points (read-only)."""

    list_display = ["deployment", "key", "value", "timestamp", "seq"]
    list_filter = ["key"]
    readonly_fields = ["deployment", "key", "value", "timestamp", "seq"]


RULE_FIELDS = ("metric", "comparison", "threshold", "window_seconds", "is_enabled")


def _save_rule(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    rule: AlertRule,
    *,
    changed: Sequence[str] = RULE_FIELDS,
    delete: bool = False,
) -> None:
    """Create, update or delete one alert rule through the services; a refusal becomes an error message."""
    try:
        if delete:
            services.alert_rule_delete(user=request.user, rule=AlertRule.objects.get(pk=rule.pk), request=request)
        elif rule.pk is None:
            created = services.alert_rule_create(
                user=request.user,
                deployment=rule.deployment,
                metric=rule.metric,
                comparison=rule.comparison,
                threshold=rule.threshold,
                window_seconds=rule.window_seconds,
                request=request,
            )
            if not rule.is_enabled:
                services.alert_rule_update(user=request.user, rule=created, is_enabled=False)
            rule.pk = created.pk
        else:
            stored = AlertRule.objects.select_related("deployment").get(pk=rule.pk)
            values = {field: getattr(rule, field) for field in RULE_FIELDS if field in changed}
            services.alert_rule_update(user=request.user, rule=stored, **values)
    except ServiceError as exc:
        model_admin.message_user(request, f"Alert rule {rule}: {exc.message}", messages.ERROR)


@admin.register(AlertRule)
class AlertRuleAdmin(DeleteEachMixin, NoAddMixin, admin.ModelAdmin):
    """Alert rules; changed and deleted through the services, so a firing alert is resolved or re-judged.

    New rules are added on their deployment's page (or through the API).
    """

    list_display = ["__str__", "deployment", "is_enabled", "created_at"]
    list_filter = ["is_enabled", "comparison"]
    fields = ["deployment", *RULE_FIELDS, "created_by", "created_at"]
    readonly_fields = ["deployment", "created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: AlertRule, form: forms.ModelForm, change: bool) -> None:
        _save_rule(self, request, obj, changed=form.changed_data)

    def delete_model(self, request: HttpRequest, obj: AlertRule) -> None:
        _save_rule(self, request, obj, delete=True)


@admin.register(Alert)
class AlertAdmin(NoAddMixin, admin.ModelAdmin):
    """Alerts raised and resolved (read-only)."""

    list_display = ["rule", "deployment", "state", "value", "raised_at", "resolved_at"]
    list_filter = ["state"]
    readonly_fields = ["rule", "deployment", "state", "value", "resolved_value", "raised_at", "resolved_at"]


class WebhookDeliveryInline(admin.TabularInline):
    """A webhook's delivery attempts."""

    model = WebhookDelivery
    extra = 0
    fields = ["created_at", "event_type", "attempt", "status", "status_code", "duration_ms", "error"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-id"]

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _service_check(check: Callable[[Any], Any], value: Any) -> Any:
    """Run a service validator on a form value; its InvalidInput becomes the field's error."""
    try:
        return check(value)
    except ServiceError as exc:
        raise ValidationError(exc.message) from exc


class WebhookAdminForm(forms.ModelForm):
    """Validates like the API (http(s) URL, known event types) and checks the caller's role on the team."""

    request: HttpRequest | None = None
    url = forms.URLField(max_length=SOURCE_MAX, assume_scheme="https")

    class Meta:
        model = Webhook
        fields = ["team", "name", "url", "event_types", "is_active"]

    def clean_url(self) -> str:
        return _service_check(services.clean_webhook_url, self.cleaned_data.get("url"))

    def clean_event_types(self) -> list[str]:
        return _service_check(services.clean_event_types, self.cleaned_data.get("event_types"))

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        team = cleaned.get("team") or (self.instance.team if self.instance.team_id else None)
        if team is not None and self.request is not None and not can(self.request.user, Action.MANAGE, team):
            raise ValidationError("Your role does not allow managing this team's webhooks; it needs the admin role.")
        return cleaned


@admin.register(Webhook)
class WebhookAdmin(DeleteEachMixin, TeamFixedOnChangeMixin, admin.ModelAdmin):
    """Webhooks with their deliveries; the secret is generated on creation, shown once, never displayed again.

    Create, change and delete go through the services, so they are validated and audited like the API.
    """

    form = WebhookAdminForm
    list_display = ["name", "team", "url", "is_active", "created_at"]
    list_filter = ["is_active", "team"]
    search_fields = ["name", "url"]
    exclude = ["secret"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = ["created_by", "created_at"]
    inlines = [WebhookDeliveryInline]
    actions = ["send_test_delivery"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> type:
        form = super().get_form(request, obj, change=change, **kwargs)
        form.request = request
        return form

    def save_model(self, request: HttpRequest, obj: Webhook, form: forms.ModelForm, change: bool) -> None:
        """Create through ``webhook_create`` (fresh secret, shown once) or update through ``webhook_update``."""
        values = {"name": obj.name, "url": obj.url, "event_types": obj.event_types, "is_active": obj.is_active}
        if change:
            services.webhook_update(user=request.user, webhook=obj, request=request, **values)
            return
        created = services.webhook_create(user=request.user, team=obj.team, request=request, **values)
        obj.pk = created.pk
        obj.refresh_from_db()
        obj._state.adding = False
        self.message_user(
            request,
            f"Signing secret of webhook {created.name!r}, shown only this once (configure your receiver with it): "
            f"{created.secret}",
            messages.WARNING,
        )

    def delete_model(self, request: HttpRequest, obj: Webhook) -> None:
        """Delete through the service (role check + audit event)."""
        try:
            services.webhook_delete(user=request.user, webhook=obj, request=request)
        except ServiceError as exc:
            self.message_user(request, f"{obj.name}: {exc.message}", messages.ERROR)

    @admin.action(description="Send a test delivery")
    def send_test_delivery(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Queue a signed test delivery to each selected webhook."""
        for webhook in queryset:
            try:
                services.webhook_send_test(user=request.user, webhook=webhook)
            except ServiceError as exc:
                self.message_user(request, f"{webhook.name}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"Test delivery to {webhook.name} queued.", messages.SUCCESS)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(NoAddMixin, admin.ModelAdmin):
    """Delivery attempts; "retry now" sends due pending ones."""

    list_display = ["webhook", "event_type", "attempt", "status", "status_code", "duration_ms", "created_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id", "webhook__name"]
    readonly_fields = [
        "webhook",
        "event_id",
        "event_type",
        "payload",
        "attempt",
        "status",
        "scheduled_at",
        "started_at",
        "finished_at",
        "status_code",
        "duration_ms",
        "error",
        "created_at",
    ]
    actions = ["deliver_now"]

    @admin.action(description="Deliver selected pending deliveries now (in the background)")
    def deliver_now(self, request: HttpRequest, queryset: QuerySet) -> None:
        """Make pending deliveries due now and hand them to the background pool."""
        pending = queryset.filter(status="pending")
        ids = list(pending.values_list("id", flat=True))
        pending.update(scheduled_at=timezone.now())
        transaction.on_commit(lambda: webhooks.submit(ids))
        self.message_user(request, f"{len(ids)} pending deliveries queued.", messages.SUCCESS)
