"""/healthz reports the database and channel layer."""

import pytest

from mlplatform import __version__


@pytest.mark.django_db
def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channel_layer": "ok", "version": __version__}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_channel_layer_down_is_503(client, settings):
    # A real Redis layer pointed at a port nothing listens on.
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    try:
        response = client.get("/healthz")
    finally:
        channel_layers.backends.clear()
    assert response.status_code == 503
    assert response.json()["channel_layer"] == "unavailable"
    assert response.json()["database"] == "ok"


def test_only_get(client):
    assert client.post("/healthz").status_code == 405


@pytest.mark.django_db
def test_database_error_is_503_in_process(client, monkeypatch):
    """The same answer as the daphne test against an unreachable server (test_daphne_server), without one."""
    from django.db import OperationalError, connections

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unavailable",
        "channel_layer": "ok",
        "version": __version__,
    }
