"""Registry API routes under /api/v1/ (every one named; the authorization matrix refers to the names)."""

from django.urls import path

from registry.api import deployments_views as d
from registry.api import models_views as m
from registry.api import webhooks_views as w

VERSION = "models/<int:model_id>/versions/<int:number>/"

urlpatterns = [
    path("models/", m.ModelListView.as_view(), name="registry-model-list"),
    path("models/search/", m.ModelSearchView.as_view(), name="registry-model-search"),
    path("models/<int:model_id>/", m.ModelDetailView.as_view(), name="registry-model-detail"),
    path("models/<int:model_id>/tags/", m.ModelTagsView.as_view(), name="registry-model-tags"),
    path("models/<int:model_id>/tags/<path:key>/", m.ModelTagDetailView.as_view(), name="registry-model-tag-detail"),
    path(
        "models/<int:model_id>/latest-versions/", m.LatestVersionsView.as_view(), name="registry-model-latest-versions"
    ),
    path("models/<int:model_id>/versions/", m.VersionListView.as_view(), name="registry-version-list"),
    path(VERSION, m.VersionDetailView.as_view(), name="registry-version-detail"),
    path(VERSION + "tags/", m.VersionTagsView.as_view(), name="registry-version-tags"),
    path(VERSION + "tags/<path:key>/", m.VersionTagDetailView.as_view(), name="registry-version-tag-detail"),
    path(VERSION + "stage/", m.VersionStageView.as_view(), name="registry-version-stage"),
    path(VERSION + "transitions/", m.VersionTransitionsView.as_view(), name="registry-version-transitions"),
    path("models/<int:model_id>/aliases/", m.AliasListView.as_view(), name="registry-alias-list"),
    path("models/<int:model_id>/aliases/<str:alias>/", m.AliasDetailView.as_view(), name="registry-alias-detail"),
    path("model-versions/search/", m.VersionSearchView.as_view(), name="registry-version-search"),
    path("environments/", d.EnvironmentListView.as_view(), name="registry-environment-list"),
    path("environments/<int:environment_id>/", d.EnvironmentDetailView.as_view(), name="registry-environment-detail"),
    path("deployments/", d.DeploymentListView.as_view(), name="registry-deployment-list"),
    path("deployments/<int:deployment_id>/", d.DeploymentDetailView.as_view(), name="registry-deployment-detail"),
    path("deployments/<int:deployment_id>/promote/", d.PromoteView.as_view(), name="registry-deployment-promote"),
    path("deployments/<int:deployment_id>/rollback/", d.RollbackView.as_view(), name="registry-deployment-rollback"),
    path(
        "deployments/<int:deployment_id>/status/", d.DeploymentStatusView.as_view(), name="registry-deployment-status"
    ),
    path(
        "deployments/<int:deployment_id>/events/", d.DeploymentEventsView.as_view(), name="registry-deployment-events"
    ),
    path("deployments/<int:deployment_id>/metrics/", d.MetricsView.as_view(), name="registry-deployment-metrics"),
    path(
        "deployments/<int:deployment_id>/alert-rules/",
        d.AlertRuleListView.as_view(),
        name="registry-alert-rule-list",
    ),
    path(
        "deployments/<int:deployment_id>/alert-rules/<int:rule_id>/",
        d.AlertRuleDetailView.as_view(),
        name="registry-alert-rule-detail",
    ),
    path("deployments/<int:deployment_id>/alerts/", d.AlertListView.as_view(), name="registry-alert-list"),
    path("webhooks/", w.WebhookListView.as_view(), name="registry-webhook-list"),
    path("webhooks/<int:webhook_id>/", w.WebhookDetailView.as_view(), name="registry-webhook-detail"),
    path("webhooks/<int:webhook_id>/test/", w.WebhookTestView.as_view(), name="registry-webhook-test"),
    path(
        "webhooks/<int:webhook_id>/deliveries/", w.WebhookDeliveriesView.as_view(), name="registry-webhook-deliveries"
    ),
]
