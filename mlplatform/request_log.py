"""Structured request logging: one JSON line per request on stdout."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("mlplatform.request")
REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_STANDARD_ATTRS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Render a log record as one JSON object, including any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        payload = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({key: value for key, value in record.__dict__.items() if key not in _STANDARD_ATTRS})
        request = payload.get("request")
        if isinstance(request, HttpRequest):
            # Django's own records (django.request: an exception outside DRF, a 5xx) carry the request object:
            # log what identifies it, above all the request id that the client was shown, not its repr.
            payload["request"] = f"{request.method} {request.path}"
            payload.setdefault("request_id", getattr(request, "request_id", None))
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def request_id_for(request: HttpRequest) -> str:
    """Reuse a well-formed incoming X-Request-ID (from a proxy) or make a new one."""
    incoming = request.META.get(REQUEST_ID_HEADER, "")
    return incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex


class RequestLogMiddleware:
    """Tag each request with an id, echo it in X-Request-ID and log method/path/status/duration/user."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if iscoroutinefunction(self):
            return self._acall(request)  # type: ignore[return-value]
        started = self._start(request)
        response = self.get_response(request)
        return self._finish(request, response, started)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started = self._start(request)
        response = await self.get_response(request)
        return self._finish(request, response, started)

    @staticmethod
    def _start(request: HttpRequest) -> float:
        request.request_id = request_id_for(request)  # type: ignore[attr-defined]
        return time.perf_counter()

    @staticmethod
    def _finish(request: HttpRequest, response: HttpResponse, started: float) -> HttpResponse:
        duration_ms = round((time.perf_counter() - started) * 1000, 2)
        try:
            user = getattr(request, "user", None)
            user_id = user.pk if user is not None and user.is_authenticated else None
        except DatabaseError:  # loading the session's user failed (database down): still log, keep the 503
            user_id = None
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": duration_ms,
                "user_id": user_id,
                "request_id": request.request_id,  # type: ignore[attr-defined]
            },
        )
        return response
