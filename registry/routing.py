"""WebSocket routes for this app."""

from django.urls import path

from registry.consumers import DeploymentConsumer

websocket_urlpatterns = [
    path("ws/deployments/<int:deployment_id>/", DeploymentConsumer.as_asgi(), name="ws-deployment"),
]
