"""Routing of the real URLconf: unknown API URLs, versioning, schema and docs."""

import pytest


def test_unknown_api_url_answers_in_the_envelope(client):
    response = client.get("/api/v1/no-such-endpoint/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_unknown_api_version_is_a_json_404(client):
    response = client.get("/api/v9/me/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_openapi_schema_is_served(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "mlplatform API"
    assert "/api/v1/me/" in schema["paths"]


@pytest.mark.django_db
def test_swagger_ui_is_self_hosted(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html
