"""Helpers for accounts tests."""

import base64

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_create


def basic(username: str, password: str) -> str:
    """An HTTP Basic Authorization header value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@pytest.fixture
def make_token():
    """Create an API token for a user; returns (row, plaintext)."""

    def make(user, name: str = "test", **kwargs):
        return api_token_create(user=user, name=name, **kwargs)

    return make


@pytest.fixture
def bearer_client():
    """An API client sending ``Authorization: Bearer <value>``."""

    def make(value: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {value}")
        return client

    return make
