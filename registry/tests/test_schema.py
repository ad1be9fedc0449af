import pytest
from rest_framework.test import APIClient


@pytest.fixture
def doc(db):
    response = APIClient().get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def body_ref(doc, path, method):
    return doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]


def test_schema_documents_registry_bodies(doc):
    assert body_ref(doc, "/api/v1/deployments/", "post").endswith("/DeployInputRequest")
    assert body_ref(doc, "/api/v1/models/{model_id}/versions/", "post").endswith("/VersionCreateInputRequest")
    assert body_ref(doc, "/api/v1/deployments/{deployment_id}/metrics/", "post").endswith(
        "/MonitoringIngestInputRequest"
    )
    assert "secret" in doc["components"]["schemas"]["WebhookCreatedOutput"]["properties"]
    assert "secret" not in doc["components"]["schemas"]["WebhookOutput"]["properties"]
    assert "201" in doc["paths"]["/api/v1/deployments/{deployment_id}/rollback/"]["post"]["responses"]
