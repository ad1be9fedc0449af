"""ASGI entry point: HTTP through Django, WebSockets through Channels (served by daphne)."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
# Django must be set up before anything imports models (consumers, auth middleware).
django.setup(set_prefix=False)

from mlplatform import daphne_body  # noqa: E402

# Request bodies are served from daphne's spool file, not memory; oversized ones are refused (413).
daphne_body.apply()

from mlplatform.asgi_http import OneHopASGIHandler  # noqa: E402

django_asgi_app = OneHopASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from accounts.ws_auth import WebSocketAuthMiddleware  # noqa: E402
from mlplatform.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)

from mlplatform.gc_tuning import tune_gc  # noqa: E402

# Last: everything built so far lives as long as the process (see mlplatform/gc_tuning.py).
tune_gc()
