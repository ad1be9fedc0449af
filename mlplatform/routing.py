"""WebSocket URL patterns gathered from every app."""

from experiments.routing import websocket_urlpatterns as experiment_routes
from registry.routing import websocket_urlpatterns as registry_routes

websocket_urlpatterns = [*experiment_routes, *registry_routes]
