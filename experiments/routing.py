"""WebSocket routes for this app.

Ids are matched loosely (``str``) so a malformed id is answered with close code 4404 by the consumer
rather than a routing error.
"""

from django.urls import path

from experiments.consumers import ExperimentConsumer, RunConsumer

websocket_urlpatterns = [
    path("ws/runs/<str:run_uuid>/", RunConsumer.as_asgi(), name="ws-run"),
    path("ws/experiments/<str:experiment_id>/", ExperimentConsumer.as_asgi(), name="ws-experiment"),
]
