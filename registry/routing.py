"""WebSocket routes for this app."""

websocket_urlpatterns: list = []
