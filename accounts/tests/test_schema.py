"""The OpenAPI schema is public and documents account request/response bodies."""

from rest_framework.test import APIClient


def schema(db):
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_schema_documents_account_endpoints(db):
    doc = schema(db)
    paths = doc["paths"]
    create = paths["/api/v1/tokens/"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ApiTokenCreateInputRequest")
    assert "201" in create["responses"]
    created = doc["components"]["schemas"]["ApiTokenCreatedOutput"]
    assert "token" in created["properties"]
    assert "/api/v1/teams/{team_id}/members/{user_id}/" in paths
    assert {"apiToken", "basicAuth", "jwtAuth"} <= set(doc["components"]["securitySchemes"])


def test_docs_page_is_public(db):
    response = APIClient().get("/api/v1/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
