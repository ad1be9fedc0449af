"""API plumbing shared by every app: the error envelope and pagination.

Every error from the native API has one shape:
``{"error": {"code": "...", "message": "...", "details": {...}}}``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, pagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView, set_rollback

from mlplatform.errors import ServiceError

logger = logging.getLogger("mlplatform.api")


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the standard error envelope."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


# What every operation of the native API can answer besides its success, by status (the envelope each time).
ERROR_RESPONSES = {
    "400": "Invalid input (parameters, body, filter); ``details`` names the fields.",
    "401": "Missing, invalid or expired credentials.",
    "403": "The caller lacks the role for this object or action.",
    "404": "The object does not exist or is not visible to the caller.",
    "429": "Too many requests; retry after ``Retry-After`` seconds.",
    "503": "The database or storage is unavailable; retry after ``Retry-After`` seconds.",
}
# Only for operations that take a body (writes): a clash with the current state, size and media type.
BODY_ERROR_RESPONSES = {
    "409": "The request clashes with the current state (duplicate name, lost race).",
    "413": "The body is over the size limit.",
    "415": "The body is not JSON (or, for uploads, not raw bytes).",
}
UPLOAD_ERROR_RESPONSES = {"507": "The artifact store is full."}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object", "additionalProperties": True},
            },
        }
    },
}


def document_error_responses(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: document the envelope for the error statuses of every operation.

    Declared once here instead of on each view, so the schema lists every status a client must handle and
    ``status_code_conformance`` in the fuzzing test can hold the server to it.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            statuses = dict(ERROR_RESPONSES)
            if "requestBody" in operation or method in {"put", "patch", "delete"}:
                statuses.update(BODY_ERROR_RESPONSES)
            if method == "put" and "/artifacts/" in path:
                statuses.update(UPLOAD_ERROR_RESPONSES)
            responses = operation.setdefault("responses", {})
            for status, description in statuses.items():
                documented = responses.setdefault(status, {"description": description})
                documented.setdefault("content", reference)
    return result


def _first_message(detail: Any, path: str = "") -> str:
    """Pick the first human-readable message out of a DRF error detail, prefixed with its field."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            # Not fields: DRF's non_field_errors, and the "detail" of errors raised with a dict (simplejwt's).
            field = key if key not in {"non_field_errors", "detail"} else ""
            return _first_message(value, f"{path}.{field}".strip(".") if field else path)
        return "Invalid input."
    if isinstance(detail, list) and detail:
        return _first_message(detail[0], path)
    text = str(detail)
    return f"{path}: {text}" if path else text


def _details(detail: Any) -> dict[str, Any]:
    """DRF details as plain JSON; a bare string or list goes under ``errors``."""
    if isinstance(detail, dict):
        return {key: _plain(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return {"errors": _plain(detail)}
    return {}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return str(value)


def _api_exception_code(exc: exceptions.APIException) -> str:
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    return str(exc.default_code)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF exception handler: map every exception to the envelope with the right status."""
    headers: dict[str, str] = {}
    if isinstance(exc, ServiceError):
        status, body = exc.status_code, error_body(exc.code, exc.message, exc.details)
    elif isinstance(exc, RequestDataTooBig):  # DRF reads request.body, which enforces DATA_UPLOAD_MAX_MEMORY_SIZE
        status, body = 413, error_body("payload_too_large", "The request body is larger than the server accepts.")
    elif isinstance(exc, (OperationalError, InterfaceError)):
        # Database down, restarting or its pool exhausted: the whole request rolled back, so a retry is safe.
        logger.warning("database unavailable: %s", exc)
        status, body = 503, error_body("unavailable", "The database is unavailable; retry shortly.")
        headers["Retry-After"] = "5"
    elif isinstance(exc, Http404):
        status, body = 404, error_body("not_found", str(exc) or "Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        status, body = 403, error_body("permission_denied", str(exc) or "You do not have permission.")
    elif isinstance(exc, DjangoValidationError):
        messages = exc.message_dict if hasattr(exc, "error_dict") else {"errors": exc.messages}
        status, body = 400, error_body("invalid", _first_message(messages), messages)
    elif isinstance(exc, exceptions.APIException):
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        status = exc.status_code
        body = error_body(_api_exception_code(exc), _first_message(exc.detail), _details(exc.detail))
    else:
        request = context.get("request")
        request_id = getattr(request, "request_id", "") if request is not None else ""
        logger.exception("unhandled exception", extra={"request_id": request_id})
        status = 500
        body = error_body(
            "server_error",
            f"Internal server error. Quote request id {request_id} when reporting it.",
            {"request_id": request_id},
        )
    set_rollback()
    return Response(body, status=status, headers=headers)


@csrf_exempt  # it writes nothing; without this, CsrfViewMiddleware answers unknown POSTs with its HTML page
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown URLs under /api/ answer in the envelope, never with an HTML page."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


def server_error(request: HttpRequest) -> JsonResponse | Any:
    """handler500: the envelope for API paths, Django's page elsewhere."""
    request_id = getattr(request, "request_id", "")
    if request.path.startswith("/api/"):
        return JsonResponse(
            error_body(
                "server_error", f"Internal server error. Quote request id {request_id}.", {"request_id": request_id}
            ),
            status=500,
        )
    from django.views.defaults import server_error as default_server_error

    return default_server_error(request)


class CursorPagination(pagination.CursorPagination):
    """Cursor pagination answering ``{results, next, previous}``; stable under inserts.

    A list view declares it as ``pagination_class``: :func:`paginated` pages with it, and drf-spectacular
    documents the view's ``Serializer(many=True)`` response as this page object (with its ``cursor`` and
    ``page_size`` parameters), so the schema and the answer cannot drift apart.
    """

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 1000


def paginated(
    request: Request, view: APIView, queryset: QuerySet, serializer: type[Serializer], ordering: str | tuple = "-pk"
) -> Response:
    """One page ``{results, next, previous}`` of ``queryset`` in ``ordering``, by the view's ``pagination_class``."""
    paginator = view.pagination_class()  # type: ignore[attr-defined]
    paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True, context={"request": request}).data)


class PageTokenPagination(pagination.BasePagination):
    """Pages cut by a selector with an opaque token (run search): ``{results, next, next_page_token}``.

    The view passes the selector's page to :meth:`page_response`; as its ``pagination_class`` it also
    gives drf-spectacular the page object to document. Its query parameters are the view's own.
    """

    def page_response(self, request: Request, results: list[Any], next_page_token: str | None) -> Response:
        """The page, with ``next`` as this URL carrying the next token (None on the last page)."""
        next_url = None
        if next_page_token:
            next_url = replace_query_param(request.build_absolute_uri(), "page_token", next_page_token)
        return Response({"results": results, "next": next_url, "next_page_token": next_page_token})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The page object around the list ``schema``."""
        nullable = {"type": "string", "nullable": True}
        return {
            "type": "object",
            "required": ["results", "next", "next_page_token"],
            "properties": {"results": schema, "next": {**nullable, "format": "uri"}, "next_page_token": nullable},
        }
