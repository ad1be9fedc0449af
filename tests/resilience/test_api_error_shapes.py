"""Regression tests for error shapes the fuzzer found: every /api/ answer is JSON in the caller's dialect."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/deployments/-1/status/", "/api/v1/no-such-endpoint/", "/api/v9/runs/"])
def test_post_to_an_unknown_api_url_is_a_404_envelope_not_a_csrf_page(path: str, workspace) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post(path, {}, content_type="application/json", headers=workspace.headers())
    assert response.status_code == 404, response.content[:200]
    assert response.json()["error"]["code"] == "not_found"


def test_post_to_an_unknown_mlflow_url_is_endpoint_not_found(workspace) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/2.0/mlflow/no-such", {}, content_type="application/json", headers=workspace.headers())
    assert response.status_code == 404, response.content[:200]
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


PAGINATED = [
    "/api/v1/experiments/",
    "/api/v1/runs/",
    "/api/v1/teams/",
    "/api/v1/tokens/",
    "/api/v1/models/",
    "/api/v1/deployments/",
    "/api/v1/webhooks/",
]


@pytest.mark.parametrize("path", PAGINATED)
def test_paginated_lists_are_documented_as_pages(client, path: str, workspace) -> None:
    schema = client.get("/api/v1/schema/?format=json", headers=workspace.headers()).json()
    documented = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    served = client.get(path, headers=workspace.headers()).json()
    assert set(served) >= {"results", "next"}
    assert documented.get("type") == "object" or "$ref" in documented, documented


def test_documented_pages_are_the_served_pages(client, workspace) -> None:
    """Every page object in the schema names exactly the keys a list answers with."""
    schema = client.get("/api/v1/schema/?format=json", headers=workspace.headers()).json()
    components = schema["components"]["schemas"]
    for path in PAGINATED:
        documented = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        page = components[documented["$ref"].rsplit("/", 1)[-1]]
        served = client.get(path, headers=workspace.headers(admin=True)).json()
        assert set(page["properties"]) == set(served), path


def test_artifact_listing_is_documented_as_the_object_it_is(client, workspace) -> None:
    schema = client.get("/api/v1/schema/?format=json", headers=workspace.headers()).json()
    operation = schema["paths"]["/api/v1/runs/{run_uuid}/artifacts/"]["get"]
    documented = operation["responses"]["200"]["content"]["application/json"]["schema"]
    listing = schema["components"]["schemas"][documented["$ref"].rsplit("/", 1)[-1]]
    served = client.get(f"/api/v1/runs/{workspace.run.run_uuid}/artifacts/", headers=workspace.headers()).json()
    assert set(listing["properties"]) == set(served) == {"root_uri", "path", "files"}
