"""Webhooks, their delivery log and the "send test delivery" action."""

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
from registry.models import Webhook


def _webhook(request: Request, webhook_id: int) -> Webhook:
    return selectors.webhook_get(user=request.user, webhook_id=webhook_id)


class WebhookListView(RegistryView):
    """Webhooks of the caller's teams; POST creates one (admin) and shows its secret once."""

    pagination_class = CursorPagination

    @extend_schema(parameters=[s.RegistryTeamQuery], responses=s.WebhookOutput(many=True))
    def get(self, request: Request, version: str) -> Response:
        """List webhooks (``?team=``); secrets are never listed."""
        params = query(s.RegistryTeamQuery, request)
        return paginated(
            request, self, selectors.webhook_list(user=request.user, team=params.get("team")), s.WebhookOutput
        )

    @extend_schema(request=s.WebhookCreateInput, responses={201: s.WebhookCreatedOutput})
    def post(self, request: Request, version: str) -> Response:
        """Create a webhook; the response carries the signing secret, shown only this once."""
        data = valid(s.WebhookCreateInput, request.data)
        team = Team.objects.filter(pk=data.pop("team")).first()
        if team is None:
            raise NotFound("Team not found.")
        webhook = services.webhook_create(user=request.user, team=team, request=request, **data)
        return Response(s.WebhookCreatedOutput(webhook).data, status=201)


class WebhookDetailView(RegistryView):
    """One webhook."""

    @extend_schema(responses=s.WebhookOutput)
    def get(self, request: Request, version: str, webhook_id: int) -> Response:
        """Show the webhook (without its secret)."""
        return Response(s.WebhookOutput(_webhook(request, webhook_id)).data)

    @extend_schema(request=s.WebhookUpdateInput, responses=s.WebhookOutput)
    def patch(self, request: Request, version: str, webhook_id: int) -> Response:
        """Change name, URL, subscriptions or active flag (admin)."""
        webhook = _webhook(request, webhook_id)
        data = valid(s.WebhookUpdateInput, request.data)
        webhook = services.webhook_update(user=request.user, webhook=webhook, request=request, **data)
        return Response(s.WebhookOutput(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, webhook_id: int) -> Response:
        """Delete the webhook and its delivery log (admin)."""
        services.webhook_delete(user=request.user, webhook=_webhook(request, webhook_id), request=request)
        return Response(status=204)


class WebhookTestView(RegistryView):
    """Send a signed test delivery."""

    @extend_schema(request=None, responses={202: s.DeliveryOutput})
    def post(self, request: Request, version: str, webhook_id: int) -> Response:
        """Queue a ``webhook.test`` delivery (admin); it is sent in the background, check the deliveries."""
        delivery = services.webhook_send_test(user=request.user, webhook=_webhook(request, webhook_id))
        return Response(s.DeliveryOutput(delivery).data, status=202)


class WebhookDeliveriesView(RegistryView):
    """Every delivery attempt of a webhook, newest first."""

    pagination_class = CursorPagination

    @extend_schema(parameters=[s.DeliveryListQuery], responses=s.DeliveryOutput(many=True))
    def get(self, request: Request, version: str, webhook_id: int) -> Response:
        """List attempts (``?status=failed``)."""
        params = query(s.DeliveryListQuery, request)
        deliveries = selectors.webhook_deliveries(
            user=request.user, webhook=_webhook(request, webhook_id), status=params.get("status")
        )
        return paginated(request, self, deliveries, s.DeliveryOutput)
