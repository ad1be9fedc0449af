"""Every error from the API has the envelope shape and the right status."""

import logging

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = [pytest.mark.urls("tests.envelope_urls"), pytest.mark.django_db]


def assert_envelope(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_malformed_json_is_a_parse_error(api_client):
    response = api_client.post("/api/echo/", data='{"name": "x", ', content_type="application/json")
    error = assert_envelope(response, 400, "parse_error")
    assert "JSON" in error["message"]


def test_validation_error_names_the_field(api_client):
    response = api_client.post("/api/echo/", {"name": "a" * 11, "count": -1}, format="json")
    error = assert_envelope(response, 400, "invalid")
    assert error["message"].startswith("name:")
    assert set(error["details"]) == {"name", "count"}


def test_wrong_type_is_a_validation_error(api_client):
    response = api_client.post("/api/echo/", {"name": "ok", "count": "many"}, format="json")
    error = assert_envelope(response, 400, "invalid")
    assert "count" in error["details"]


def test_missing_field_is_a_validation_error(api_client):
    error = assert_envelope(api_client.post("/api/echo/", {"name": "ok"}, format="json"), 400, "invalid")
    assert error["details"]["count"] == ["This field is required."]


def test_unsupported_media_type(api_client):
    response = api_client.post("/api/echo/", data="name=x", content_type="application/x-www-form-urlencoded")
    assert_envelope(response, 415, "unsupported_media_type")


def test_method_not_allowed(api_client):
    assert_envelope(api_client.delete("/api/echo/"), 405, "method_not_allowed")


def test_not_authenticated(api_client):
    assert_envelope(api_client.get("/api/private/"), 401, "not_authenticated")


def test_throttled_has_retry_after(api_client):
    # Only this throttle's key: clearing the whole cache would wipe other xdist workers' state in Redis.
    cache.delete_many([f"throttle_envelope-test_{ip}" for ip in ("127.0.0.1", "None")])
    assert api_client.get("/api/throttled/").status_code == 200
    response = api_client.get("/api/throttled/")
    assert_envelope(response, 429, "throttled")
    assert int(response["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("service-invalid", 400, "invalid"),
        ("service-not-found", 404, "not_found"),
        ("service-conflict", 409, "conflict"),
        ("service-too-large", 413, "payload_too_large"),
        ("django-404", 404, "not_found"),
        ("django-denied", 403, "permission_denied"),
        ("django-invalid", 400, "invalid"),
    ],
)
def test_domain_and_django_errors(api_client, kind, status, code):
    assert_envelope(api_client.get(f"/api/raise/{kind}/"), status, code)


def test_service_error_details_pass_through(api_client):
    error = assert_envelope(api_client.get("/api/raise/service-invalid/"), 400, "invalid")
    assert error["details"] == {"key": "x"}
    assert "limit 250" in error["message"]


def test_unexpected_exception_is_a_500_without_traceback(caplog, settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="mlplatform.api"):
        response = client.get("/api/raise/unexpected/")
    error = assert_envelope(response, 500, "server_error")
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    request_id = response["X-Request-ID"]
    assert error["details"]["request_id"] == request_id
    logged = [r for r in caplog.records if r.name == "mlplatform.api"]
    assert logged and logged[0].request_id == request_id
    assert "secret internals" in logged[0].exc_text or "secret internals" in str(logged[0].exc_info)


def test_unknown_api_url_is_a_json_404(api_client):
    error = assert_envelope(api_client.get("/api/does/not/exist"), 404, "not_found")
    assert "/api/does/not/exist" in error["message"]
