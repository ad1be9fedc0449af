"""Environments, deployments (deploy, promote, rollback, status), events, monitoring and alerts."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Team
from mlplatform.api import CursorPagination, paginated
from mlplatform.errors import NotFound
from registry import selectors, services
from registry.api import serializers as s
from registry.api.base import RegistryView, query, valid
from registry.models import Deployment


def _team(team_id: int) -> Team:
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise NotFound("Team not found.")
    return team


def _deployment(request: Request, deployment_id: int) -> Deployment:
    return selectors.deployment_get(user=request.user, deployment_id=deployment_id)


def _deployment_out(deployment: Deployment, status: int = 200) -> Response:
    fresh = selectors.deployment_queryset().get(pk=deployment.pk)
    return Response(s.DeploymentOutput(fresh).data, status=status)


class EnvironmentListView(RegistryView):
    """Environments of the caller's teams, in promotion order; POST adds one (admin)."""

    @extend_schema(parameters=[s.RegistryTeamQuery], responses=s.EnvironmentOutput(many=True))
    def get(self, request: Request, version: str) -> Response:
        """List environments (``?team=``)."""
        params = query(s.RegistryTeamQuery, request)
        environments = selectors.environment_list(user=request.user, team=params.get("team"))
        return Response(s.EnvironmentOutput(environments, many=True).data)

    @extend_schema(request=s.EnvironmentCreateInput, responses={201: s.EnvironmentOutput})
    def post(self, request: Request, version: str) -> Response:
        """Create an environment; without ``position`` it goes last in the promotion path."""
        data = valid(s.EnvironmentCreateInput, request.data)
        environment = services.environment_create(
            user=request.user, team=_team(data.pop("team")), request=request, **data
        )
        return Response(s.EnvironmentOutput(environment).data, status=201)


class EnvironmentDetailView(RegistryView):
    """One environment."""

    @extend_schema(responses=s.EnvironmentOutput)
    def get(self, request: Request, version: str, environment_id: int) -> Response:
        """Show the environment."""
        return Response(
            s.EnvironmentOutput(selectors.environment_get(user=request.user, environment_id=environment_id)).data
        )

    @extend_schema(request=s.EnvironmentUpdateInput, responses=s.EnvironmentOutput)
    def patch(self, request: Request, version: str, environment_id: int) -> Response:
        """Rename, re-order or describe (admin)."""
        environment = selectors.environment_get(user=request.user, environment_id=environment_id)
        data = valid(s.EnvironmentUpdateInput, request.data)
        environment = services.environment_update(user=request.user, environment=environment, **data)
        return Response(s.EnvironmentOutput(environment).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, environment_id: int) -> Response:
        """Delete an environment never deployed to (admin)."""
        environment = selectors.environment_get(user=request.user, environment_id=environment_id)
        services.environment_delete(user=request.user, environment=environment, request=request)
        return Response(status=204)


class DeploymentListView(RegistryView):
    """Deployments of the caller's teams; POST deploys a version (admin)."""

    pagination_class = CursorPagination

    @extend_schema(parameters=[s.DeploymentListQuery], responses=s.DeploymentOutput(many=True))
    def get(self, request: Request, version: str) -> Response:
        """List deployments (``?team= &model= &environment= &status=live``), newest first."""
        params = query(s.DeploymentListQuery, request)
        return paginated(request, self, selectors.deployment_list(user=request.user, **params), s.DeploymentOutput)

    @extend_schema(request=s.DeployInput, responses={201: s.DeploymentOutput})
    def post(self, request: Request, version: str) -> Response:
        """Deploy ``model`` version ``version`` to ``environment``; live at once unless ``activate`` is false."""
        data = valid(s.DeployInput, request.data)
        model = selectors.registered_model_by_id(user=request.user, model_id=data.pop("model"))
        target = selectors.model_version_get(user=request.user, model=model, version=data.pop("version"))
        environment = selectors.environment_get(user=request.user, environment_id=data.pop("environment"))
        deployment = services.deploy(
            user=request.user, version=target, environment=environment, request=request, **data
        )
        return _deployment_out(deployment, status=201)


class DeploymentDetailView(RegistryView):
    """One deployment."""

    @extend_schema(responses=s.DeploymentOutput)
    def get(self, request: Request, version: str, deployment_id: int) -> Response:
        """Show the deployment."""
        return Response(s.DeploymentOutput(_deployment(request, deployment_id)).data)


class PromoteView(RegistryView):
    """Promote a live deployment to the next environment."""

    @extend_schema(request=s.PromoteInput, responses={201: s.DeploymentOutput})
    def post(self, request: Request, version: str, deployment_id: int) -> Response:
        """Deploy this deployment's version to the next environment of the path (admin)."""
        data = valid(s.PromoteInput, request.data)
        promoted = services.promote(
            user=request.user, deployment=_deployment(request, deployment_id), request=request, **data
        )
        return _deployment_out(promoted, status=201)


class RollbackView(RegistryView):
    """Roll this deployment's model and environment back to the previously live version."""

    @extend_schema(request=s.RollbackInput, responses={201: s.DeploymentOutput})
    def post(self, request: Request, version: str, deployment_id: int) -> Response:
        """Roll back (admin); 409 when there is no previous version."""
        deployment = _deployment(request, deployment_id)
        data = valid(s.RollbackInput, request.data)
        restored = services.rollback(
            user=request.user,
            model=deployment.model,
            environment=deployment.environment,
            comment=data["comment"],
            request=request,
        )
        return _deployment_out(restored, status=201)


class DeploymentStatusView(RegistryView):
    """The deployer reports a status change."""

    @extend_schema(request=s.DeploymentStatusInput, responses=s.DeploymentOutput)
    def post(self, request: Request, version: str, deployment_id: int) -> Response:
        """Move the deployment to ``status`` (admin): pending → live/failed, live → failed/retired…"""
        data = valid(s.DeploymentStatusInput, request.data)
        deployment = services.deployment_set_status(
            user=request.user, deployment=_deployment(request, deployment_id), request=request, **data
        )
        return _deployment_out(deployment)


class DeploymentEventsView(RegistryView):
    """A deployment's events, in order."""

    pagination_class = CursorPagination

    @extend_schema(parameters=[s.DeploymentEventsQuery], responses=s.DeploymentEventOutput(many=True))
    def get(self, request: Request, version: str, deployment_id: int) -> Response:
        """List events (``?since=<seq>``)."""
        params = query(s.DeploymentEventsQuery, request)
        events = selectors.deployment_events(
            user=request.user, deployment=_deployment(request, deployment_id), since=params.get("since")
        )
        return paginated(request, self, events, s.DeploymentEventOutput, ordering="seq")


class MetricsView(RegistryView):
    """Monitoring points of a deployment: POST a batch, GET them back."""

    pagination_class = CursorPagination

    @extend_schema(parameters=[s.MonitoringMetricsQuery], responses=s.MonitoringMetricOutput(many=True))
    def get(self, request: Request, version: str, deployment_id: int) -> Response:
        """List points in ingest order (``?key=``, ``?since=<seq>``)."""
        params = query(s.MonitoringMetricsQuery, request)
        points = selectors.monitoring_metrics(
            user=request.user,
            deployment=_deployment(request, deployment_id),
            key=params.get("key"),
            since_seq=params.get("since"),
        )
        return paginated(request, self, points, s.MonitoringMetricOutput, ordering="id")

    @extend_schema(request=s.MonitoringIngestInput, responses={201: s.MonitoringIngestOutput})
    def post(self, request: Request, version: str, deployment_id: int) -> Response:
        """Store up to 1000 points (editor) and evaluate the alert rules."""
        deployment = _deployment(request, deployment_id)
        body = request.data
        metrics = body.get("metrics") if isinstance(body, dict) else None
        if metrics is None:
            valid(s.MonitoringIngestInput, body)  # raises the 400 naming what is missing
        seq = services.monitoring_ingest(user=request.user, deployment=deployment, metrics=metrics)
        return Response({"seq": seq, "count": len(metrics)}, status=201)


class AlertRuleListView(RegistryView):
    """A deployment's alert rules; POST adds one (admin)."""

    @extend_schema(responses=s.AlertRuleOutput(many=True))
    def get(self, request: Request, version: str, deployment_id: int) -> Response:
        """List rules."""
        rules = selectors.alert_rule_list(user=request.user, deployment=_deployment(request, deployment_id))
        return Response(s.AlertRuleOutput(rules, many=True).data)

    @extend_schema(request=s.AlertRuleInput, responses={201: s.AlertRuleOutput})
    def post(self, request: Request, version: str, deployment_id: int) -> Response:
        """Add a rule: alert when mean(metric, window) compares true against threshold."""
        deployment = _deployment(request, deployment_id)
        data = valid(s.AlertRuleInput, request.data)
        rule = services.alert_rule_create(user=request.user, deployment=deployment, request=request, **data)
        return Response(s.AlertRuleOutput(rule).data, status=201)


class AlertRuleDetailView(RegistryView):
    """One alert rule."""

    @extend_schema(responses=s.AlertRuleOutput)
    def get(self, request: Request, version: str, deployment_id: int, rule_id: int) -> Response:
        """Show the rule."""
        deployment = _deployment(request, deployment_id)
        rule = selectors.alert_rule_get(user=request.user, deployment=deployment, rule_id=rule_id)
        return Response(s.AlertRuleOutput(rule).data)

    @extend_schema(request=s.AlertRuleUpdateInput, responses=s.AlertRuleOutput)
    def patch(self, request: Request, version: str, deployment_id: int, rule_id: int) -> Response:
        """Change the rule (admin)."""
        deployment = _deployment(request, deployment_id)
        rule = selectors.alert_rule_get(user=request.user, deployment=deployment, rule_id=rule_id)
        data = valid(s.AlertRuleUpdateInput, request.data)
        return Response(s.AlertRuleOutput(services.alert_rule_update(user=request.user, rule=rule, **data)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, deployment_id: int, rule_id: int) -> Response:
        """Delete the rule and its alerts (admin)."""
        deployment = _deployment(request, deployment_id)
        rule = selectors.alert_rule_get(user=request.user, deployment=deployment, rule_id=rule_id)
        services.alert_rule_delete(user=request.user, rule=rule, request=request)
        return Response(status=204)


class AlertListView(RegistryView):
    """Alerts raised on a deployment, newest first."""

    pagination_class = CursorPagination

    @extend_schema(parameters=[s.AlertListQuery], responses=s.AlertOutput(many=True))
    def get(self, request: Request, version: str, deployment_id: int) -> Response:
        """List alerts (``?state=firing``)."""
        params = query(s.AlertListQuery, request)
        alerts = selectors.alert_list(
            user=request.user, deployment=_deployment(request, deployment_id), state=params.get("state")
        )
        return paginated(request, self, alerts, s.AlertOutput)
