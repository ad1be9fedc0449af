"""Structured request logging."""

import json
import logging

import pytest

from mlplatform.request_log import JsonFormatter


@pytest.mark.django_db
def test_each_request_is_logged_with_its_fields(client, caplog, django_user_model):
    user = django_user_model.objects.create_user("ada", password="pw-123456-long")
    client.force_login(user)
    with caplog.at_level(logging.INFO, logger="mlplatform.request"):
        response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    (record,) = [r for r in caplog.records if r.name == "mlplatform.request"]
    assert record.method == "GET"
    assert record.path == "/healthz"
    assert record.status == 200
    assert record.duration_ms >= 0
    assert record.user_id == user.pk
    assert record.request_id == "abc-123" == response["X-Request-ID"]


def test_unsafe_incoming_request_id_is_replaced(client, caplog):
    with caplog.at_level(logging.INFO, logger="mlplatform.request"):
        response = client.get("/api/nope", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_json_formatter_renders_extra_fields_and_exceptions():
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "hello %s", "args": ("you",)})
    record.path = "/p"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello you"
    assert line["path"] == "/p"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert "boom" in json.loads(JsonFormatter().format(record))["exc_info"]
