"""The error classes not covered by test_error_envelope: DRF's own permission, authentication, content
negotiation and not-found errors, and 500s raised outside DRF (handler500), each in the envelope.

This module is its own URLconf (``urlpatterns`` below), so the views that raise live next to their tests.
"""

import json
import logging

import pytest
from django.http import HttpResponse
from django.test import Client
from django.urls import get_resolver, path, re_path
from rest_framework import exceptions
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.tests.factories import UserFactory
from mlplatform import api
from mlplatform.request_log import JsonFormatter
from tests.test_error_envelope import assert_envelope


class AdminOnlyView(APIView):
    permission_classes = [IsAdminUser]
    throttle_classes: list = []

    def get(self, request, **kwargs):
        return Response({"ok": True})


class DrfNotFoundView(APIView):
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request, **kwargs):
        raise exceptions.NotFound("No run 42.")


class OpenView(APIView):
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def get(self, request, **kwargs):
        return Response({"ok": True})


def plain_view_that_fails(request):
    """A Django view (not DRF): its exception reaches Django's handler500."""
    raise RuntimeError("secret internals of a plain view")


def plain_page(request):
    return HttpResponse("page")


urlpatterns = [
    path("api/admin-only/", AdminOnlyView.as_view()),
    path("api/drf-not-found/", DrfNotFoundView.as_view()),
    path("api/open/", OpenView.as_view()),
    path("api/plain-fails/", plain_view_that_fails),
    path("page-fails/", plain_view_that_fails),
    path("page/", plain_page),
    re_path(r"^api/", api.api_not_found),
]
handler500 = "mlplatform.api.server_error"

pytestmark = [pytest.mark.urls(__name__), pytest.mark.django_db]


def test_permission_class_refusal_is_a_403(client_for):
    response = client_for(UserFactory()).get("/api/admin-only/")
    assert_envelope(response, 403, "permission_denied")


def test_anonymous_refusal_is_a_401_with_a_challenge(api_client):
    response = api_client.get("/api/admin-only/")
    assert_envelope(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_basic_password_is_authentication_failed(api_client):
    user = UserFactory(username="ada")
    user.set_password("right-password-123")
    user.save()
    api_client.credentials(HTTP_AUTHORIZATION="Basic YWRhOndyb25n")  # ada:wrong
    assert_envelope(api_client.get("/api/admin-only/"), 401, "authentication_failed")


def test_invalid_jwt_message_has_no_field_prefix(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")
    error = assert_envelope(api_client.get("/api/admin-only/"), 401, "token_not_valid")
    assert error["message"] == "Given token not valid for any token type"


def test_drf_not_found(api_client):
    error = assert_envelope(api_client.get("/api/drf-not-found/"), 404, "not_found")
    assert error["message"] == "No run 42."


def test_json_only_html_accept_is_406(api_client):
    assert_envelope(api_client.get("/api/open/", HTTP_ACCEPT="text/html"), 406, "not_acceptable")
    assert api_client.get("/api/open/", HTTP_ACCEPT="text/html, application/json;q=0.9").json() == {"ok": True}


def test_json_only_no_browsable_api(api_client):
    response = api_client.get("/api/open/?format=api")
    assert_envelope(response, 404, "not_found")
    assert b"<html" not in response.content.lower()


def test_unknown_api_post_is_a_json_404_not_a_csrf_page():
    client = Client(enforce_csrf_checks=True)
    assert_envelope(client.post("/api/nothing/here/", data="{}", content_type="application/json"), 404, "not_found")


def test_500_outside_drf_under_api_is_the_envelope_and_logged_with_request_id(settings, caplog):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        response = client.get("/api/plain-fails/")
    error = assert_envelope(response, 500, "server_error")
    body = response.content.decode()
    assert "secret internals" not in body and "Traceback" not in body
    request_id = response["X-Request-ID"]
    assert error["details"]["request_id"] == request_id
    assert request_id in error["message"]
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == request_id
    assert line["request"] == "GET /api/plain-fails/"
    assert "secret internals of a plain view" in line["exc_info"]


def test_500_on_a_page_is_the_html_error_page_without_traceback(settings):
    settings.DEBUG = False
    response = Client(raise_request_exception=False).get("/page-fails/")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert "Something went wrong" in body
    assert "secret internals" not in body and "Traceback" not in body


def test_the_real_urlconf_uses_the_envelope_handler500():
    handler = get_resolver("mlplatform.urls").resolve_error_handler(500)
    assert handler is api.server_error
