"""Plumbing shared by the MLflow REST API façade: errors, request parsing, auth, team choice, URLs.

The façade answers the unchanged ``mlflow`` client under ``/api/2.0/mlflow/...`` (plus the
``/ajax-api/...`` aliases the MLflow UI uses and the ``/api/3.0/...`` routes MLflow 3 clients call).
Endpoint modules live with their app (``experiments/mlflow``, ``registry/mlflow``); they parse
MLflow's request shape with :class:`RequestParams`, call the same services and selectors as the
native API and render MLflow's response shape. Every error leaves here as MLflow's
``{"error_code": ..., "message": ...}`` with MLflow's HTTP status; domain errors are mapped once,
in :data:`SERVICE_ERROR_CODES`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.views import APIView, set_rollback

from accounts.models import Team
from accounts.selectors import teams_visible_to
from mlplatform.errors import (
    Conflict,
    Forbidden,
    InsufficientStorage,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Unavailable,
)
from mlplatform.security import RETRY_AFTER_SECONDS, json_body

logger = logging.getLogger("mlplatform.mlflow")

TEAM_HEADER = "X-Team"
API_DOCS_HINT = "See the API docs for more information about request parameters."

# Domain error -> (MLflow error_code, HTTP status), as MLflow's server answers them
# (mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS). A duplicate name is RESOURCE_ALREADY_EXISTS with 400
# in MLflow, not 409. MLflow has no "too large" code: the status says 413, the code says bad value.
SERVICE_ERROR_CODES: tuple[tuple[type[ServiceError], str, int], ...] = (
    (InvalidInput, "INVALID_PARAMETER_VALUE", 400),
    (NotFound, "RESOURCE_DOES_NOT_EXIST", 404),
    (Forbidden, "PERMISSION_DENIED", 403),
    (Conflict, "RESOURCE_ALREADY_EXISTS", 400),
    (PayloadTooLarge, "INVALID_PARAMETER_VALUE", 413),
    (Unavailable, "TEMPORARILY_UNAVAILABLE", 503),
    # MLflow has no "storage full" code; RESOURCE_EXHAUSTED is the nearest, and 507 keeps clients from retrying.
    (InsufficientStorage, "RESOURCE_EXHAUSTED", 507),
)


class MlflowApiError(Exception):
    """An error only the façade knows (unknown endpoint, unsupported feature) with its MLflow code."""

    def __init__(self, message: str, *, error_code: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.status = status


def error_response(
    error_code: str, message: str, status: int, headers: Mapping[str, str] | None = None
) -> JsonResponse:
    """MLflow's error body ``{"error_code", "message"}`` with the given status."""
    response = JsonResponse({"error_code": error_code, "message": message}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def service_error_code(exc: ServiceError) -> tuple[str, int]:
    """The MLflow (error_code, status) for a domain error."""
    for error_class, code, status in SERVICE_ERROR_CODES:
        if isinstance(exc, error_class):
            return code, status
    return ("BAD_REQUEST", exc.status_code) if exc.status_code < 500 else ("INTERNAL_ERROR", 500)


def exception_response(exc: Exception, request: HttpRequest | None = None) -> JsonResponse:
    """Render any exception raised by a façade view in MLflow's error shape."""
    if isinstance(exc, ServiceError):
        code, status = service_error_code(exc)
        return error_response(code, exc.message, status)
    if isinstance(exc, MlflowApiError):
        return error_response(exc.error_code, exc.message, exc.status)
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        message = str(exc.detail) if isinstance(exc, exceptions.AuthenticationFailed) else "Authentication required."
        return error_response(
            "UNAUTHENTICATED",
            f"{message} Set MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN.",
            401,
            {"WWW-Authenticate": 'Basic realm="mlplatform"'},
        )
    if isinstance(exc, exceptions.Throttled):
        headers = {"Retry-After": str(int(exc.wait))} if exc.wait else {}
        return error_response("REQUEST_LIMIT_EXCEEDED", str(exc.detail), 429, headers)
    if isinstance(exc, exceptions.PermissionDenied):
        return error_response("PERMISSION_DENIED", str(exc.detail), 403)
    if isinstance(exc, exceptions.MethodNotAllowed):
        # ENDPOINT_NOT_FOUND lets the client fall back to the endpoint's other HTTP method, as with MLflow.
        return error_response("ENDPOINT_NOT_FOUND", str(exc.detail), 405)
    if isinstance(exc, exceptions.APIException):
        code = "INVALID_PARAMETER_VALUE" if exc.status_code == 400 else "BAD_REQUEST"
        return error_response(code, str(exc.detail), exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        return error_response("INVALID_PARAMETER_VALUE", "The request body is too large.", 413)
    if isinstance(exc, Http404):
        return error_response("RESOURCE_DOES_NOT_EXIST", str(exc) or "Not found.", 404)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # Database down, restarting or its pool exhausted: the request rolled back, so the client's retry is safe.
        logger.warning("database unavailable: %s", exc)
        return error_response(
            "TEMPORARILY_UNAVAILABLE",
            "The database is unavailable; retry shortly.",
            503,
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    request_id = getattr(request, "request_id", "") if request is not None else ""
    logger.exception("unhandled exception in the MLflow façade", extra={"request_id": request_id})
    return error_response(
        "INTERNAL_ERROR", f"Internal server error. Quote request id {request_id} when reporting it.", 500
    )


def json_response(payload: Mapping[str, Any], status: int = 200) -> HttpResponse:
    """A JSON body; callers encode non-finite floats first (``experiments.limits.encode_float``)."""
    return HttpResponse(json.dumps(payload, allow_nan=False), status=status, content_type="application/json")


@csrf_exempt  # it writes nothing; without this, CsrfViewMiddleware answers unknown POSTs with its HTML page
def endpoint_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown MLflow routes answer ENDPOINT_NOT_FOUND, so the client can fall back or report clearly."""
    return error_response("ENDPOINT_NOT_FOUND", f"No MLflow API endpoint at {request.method} {request.path}.", 404)


# Request parsing ---------------------------------------------------------------------------------


def missing(name: str) -> InvalidInput:
    """MLflow's message for a missing required parameter."""
    return InvalidInput(f"Missing value for required parameter '{name}'. {API_DOCS_HINT}")


def invalid(name: str, value: Any, hint: str = "") -> InvalidInput:
    """MLflow's message for a parameter of the wrong type or value."""
    shown = repr(value) if len(repr(value)) <= 200 else repr(value)[:200] + "..."
    hint = hint or f"Hint: Value was of type '{type(value).__name__}'."
    return InvalidInput(f"Invalid value {shown} for parameter '{name}' supplied. {hint} {API_DOCS_HINT}")


class RequestParams:
    """Typed access to an MLflow request: the JSON body, or the query string for GET.

    Conversions follow MLflow's protobuf JSON parsing: int64 fields accept numbers or numeric
    strings, repeated fields are lists (repeated query parameters for GET), a missing or empty
    required string is "Missing value for required parameter".
    """

    def __init__(self, data: Mapping[str, Any] | QueryDict) -> None:
        self.data = data
        self.is_query = isinstance(data, QueryDict)

    def __contains__(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        """The value as sent (last one for a repeated query parameter), or None."""
        return self.data.get(name)

    def string(self, name: str, default: str | None = None) -> str | None:
        """An optional string."""
        value = self.data.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise invalid(name, value)
        return value

    def required_string(self, name: str, *aliases: str) -> str:
        """A required non-empty string; ``aliases`` are older spellings (``run_uuid`` for ``run_id``)."""
        for key in (name, *aliases):
            value = self.string(key)
            if value:
                return value
        raise missing(name)

    def integer(self, name: str, default: int | None = None) -> int | None:
        """An optional int64 (a JSON number without fraction, or a numeric string)."""
        value = self.data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            raise invalid(name, value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise invalid(name, value) from None
        if not isinstance(value, int):
            raise invalid(name, value)
        if not -(2**63) <= value < 2**63:
            raise invalid(name, value, "Hint: Value is out of the int64 range.")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        """An optional boolean ("true"/"false" in a query string)."""
        value = self.data.get(name)
        if value is None:
            return default
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise invalid(name, value, "Hint: Value must be 'true' or 'false'.")
        return value

    def string_list(self, name: str) -> list[str]:
        """A repeated string field (empty when absent)."""
        if self.is_query:
            return self.data.getlist(name)  # type: ignore[union-attr]
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid(name, value, "Hint: A list of strings is required.")
        return value

    def object_list(self, name: str) -> list[Any]:
        """A repeated message field as sent (items are validated by the service)."""
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise invalid(name, value, "Hint: A list is required.")
        return value

    def key_value_list(self, name: str) -> list[dict[str, Any]]:
        """A repeated ``{key, value}`` field; a missing value reads as "" as protobuf does."""
        items = self.object_list(name)
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise invalid(f"{name}[{index}]", item, "Hint: An object with 'key' and 'value' is required.")
        return [{"key": item.get("key"), "value": item.get("value", "")} for item in items]


def parse_body(request: HttpRequest) -> dict[str, Any]:
    """The JSON object in the body (``{}`` when empty); malformed JSON is INVALID_PARAMETER_VALUE."""
    if not request.body.strip():
        return {}
    try:
        data = json_body(request)
        if isinstance(data, str):  # older clients double-encode the body, as MLflow's server tolerates
            data = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"Malformed JSON in the request body: {exc}.") from exc
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    return data


def request_params(request: Request | HttpRequest) -> RequestParams:
    """The request's parameters: query string for GET, JSON body otherwise."""
    django_request = getattr(request, "_request", request)
    if django_request.method == "GET":
        return RequestParams(django_request.GET)
    return RequestParams(parse_body(django_request))


# Auth and teams ----------------------------------------------------------------------------------


class MlflowView(APIView):
    """Base class for façade views: accounts' authentication, 401 for anonymous, MLflow errors.

    Authentication is the project's DRF classes (API token or JWT as Bearer, HTTP Basic with a
    password or an API token, session for the browser), so ``MLFLOW_TRACKING_TOKEN`` and
    ``MLFLOW_TRACKING_USERNAME/PASSWORD`` both work. Views return plain Django responses.
    """

    permission_classes = [IsAuthenticated]
    versioning_class = None
    schema = None  # MLflow's REST API is documented by MLflow; keep it out of the native /api/v1/ schema

    def handle_exception(self, exc: Exception) -> HttpResponse:
        """Every error in MLflow's shape; the transaction (if any) is rolled back."""
        set_rollback()
        return exception_response(exc, getattr(self, "request", None))

    def params(self) -> RequestParams:
        """This request's parameters."""
        return request_params(self.request)


def endpoint(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Turn ``func(request, **kwargs) -> HttpResponse`` into a :class:`MlflowView` answering ``methods``."""

    def wrap(func: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        def handler(self: MlflowView, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
            return func(request, *args, **kwargs)

        attrs: dict[str, Any] = {method.lower(): handler for method in methods}
        attrs["__doc__"] = func.__doc__
        attrs["__module__"] = func.__module__
        view_class = type(func.__name__, (MlflowView,), attrs)
        return view_class.as_view()

    return wrap


def team_from_header(request: Request | HttpRequest) -> Team | None:
    """The team named by the ``X-Team`` header (slug or name) among the caller's teams, or None without one.

    Whether the caller may write there is checked by the service that writes (editor role).
    """
    value = request.headers.get(TEAM_HEADER, "").strip()
    if not value:
        return None
    return team_named(request.user, value)


def team_named(user: Any, value: str) -> Team:
    """A team the user belongs to (or, for staff, any team) by slug or name; NotFound otherwise."""
    team = teams_visible_to(user=user).filter(Q(slug=value) | Q(name=value)).order_by("pk").first()
    if team is None:
        raise NotFound(f"Team {value!r} not found among your teams.")
    return team


# URLs --------------------------------------------------------------------------------------------


def _routes(root: str) -> list[Any]:
    return [
        path(f"{root}/2.0/mlflow/", include("experiments.mlflow.urls")),
        path(f"{root}/2.0/mlflow/", include("registry.mlflow.urls")),
        path(f"{root}/2.0/mlflow-artifacts/", include("experiments.mlflow.artifact_urls")),
        path(f"{root}/3.0/mlflow/", include("experiments.mlflow.v3_urls")),
        re_path(rf"^{root}/\d+\.\d+/mlflow", endpoint_not_found),
    ]


@functools.cache
def _all_routes() -> list[Any]:
    return _routes("api") + _routes("ajax-api")


def __getattr__(name: str) -> Any:
    """``urlpatterns``, built on first use (included by mlplatform/urls.py before the /api/ catch-all).

    Built lazily because the endpoint modules import this one: building the routes while this module is
    still being imported would make importing any endpoint module first a circular import.
    """
    if name == "urlpatterns":
        return _all_routes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
