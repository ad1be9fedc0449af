"""Request limits and security headers, applied to every HTTP request before any view runs.

``RequestLimitsMiddleware`` refuses a body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (413), a JSON body
nested deeper than ``JSON_MAX_DEPTH`` (400), and NUL characters (in the URL, the query or the JSON) or
JSON escaping an unpaired UTF-16 surrogate (400: PostgreSQL text cannot hold U+0000 and Python decodes
``"\\ud800"`` to a string no database can encode), before authentication, parsing or the ORM see them. Python's
``json`` recurses once per level, so an unchecked ``[[[[...`` body of a few hundred kilobytes would end
in a RecursionError (a 500) inside whichever view parses it. Raw artifact uploads are exempt: they are
streamed to storage in chunks and capped by ``ARTIFACT_MAX_UPLOAD_BYTES`` there.

``SecurityHeadersMiddleware`` adds a Content-Security-Policy (pages load only same-origin scripts and
styles; no inline script anywhere), Permissions-Policy and Cross-Origin-Resource-Policy. HSTS,
X-Content-Type-Options, Referrer-Policy and Cross-Origin-Opener-Policy come from Django's
SecurityMiddleware, X-Frame-Options from its clickjacking middleware (settings.py).

``DatabaseUnavailableMiddleware`` turns a database outage in a page view into a 503 instead of a 500;
the API answers the same outage through its exception handlers (``mlplatform.api``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

from mlplatform.api import error_body

DEFAULT_JSON_MAX_DEPTH = 32
FORM_CONTENT_TYPES = ("multipart/", "application/x-www-form-urlencoded")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Raw uploads (bytes, not JSON): native artifact PUT and MLflow's proxied-artifact routes.
RAW_BODY_PATHS = (
    re.compile(r"^/api/v\d+/runs/[0-9a-f]{32}/artifacts/."),
    re.compile(r"^/(?:api|ajax-api)/\d+\.\d+/mlflow-artifacts/"),
)
DOCS_PATH = re.compile(r"^/api/v\d+/docs/$")
MLFLOW_PATH = re.compile(r"^/(?:api|ajax-api)/\d+\.\d+/mlflow")
_CHUNK = 1024 * 1024
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
# +1 for an opening bracket, -1 for a closing one, 0 for every other byte.
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
RETRY_AFTER_SECONDS = 5
NUL_MESSAGE = "The request contains a NUL character (U+0000), which no text field can store."

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def json_depth(body: bytes, *, stop_above: int | None = None) -> int:
    """The deepest array/object nesting in a JSON text, brackets inside strings excluded.

    Linear time and bounded memory: the body is scanned in 1 MiB numpy chunks carrying the string
    state across chunks (no regex, which backtracks quadratically on ``"\\"\\"...`` input). A quote
    is a delimiter unless an odd run of backslashes precedes it. With ``stop_above`` the scan ends as
    soon as the depth exceeds it. Malformed input yields a number without error.
    """
    deepest = depth = 0
    in_string = 0
    backslashes = 0  # trailing backslash run carried into the next chunk
    for start in range(0, len(body), _CHUNK):
        data = np.frombuffer(body, dtype=np.uint8, count=min(_CHUNK, len(body) - start), offset=start)
        positions = np.arange(len(data), dtype=np.int64)
        last_plain = np.maximum.accumulate(np.where(data != _BACKSLASH, positions, -1 - backslashes))
        quotes = np.flatnonzero(data == _QUOTE)
        before = np.concatenate(([-1 - backslashes], last_plain[:-1]))[quotes]
        delimiters = quotes[((quotes - 1 - before) % 2) == 0]
        toggles = np.zeros(len(data), dtype=np.int32)
        toggles[delimiters] = 1
        outside = ((np.cumsum(toggles) + in_string) % 2) == 0
        levels = np.cumsum(_STEP[data] * outside, dtype=np.int64) + depth
        deepest = max(deepest, int(levels.max()))
        if stop_above is not None and deepest > stop_above:
            return deepest
        depth = int(levels[-1])
        in_string = (in_string + len(delimiters)) % 2
        plain_tail = int(last_plain[-1])
        backslashes = len(data) - 1 - plain_tail if plain_tail >= 0 else backslashes + len(data)
    return deepest


_UNPARSED = object()
# orjson reads an integer literal beyond 64 bits as a float; the stdlib keeps it exact (and the int64 checks
# name it). Any run of 20 digits, even inside a string, sends the body to the stdlib. Found by mapping
# digits to "0" and everything else to " " (bytes.translate, C speed; a regex took 1 ms per 75 kB).
_DIGITS_AS_ZEROS = bytes(ord("0") if chr(byte).isdigit() and byte < 128 else ord(" ") for byte in range(256))
_LONG_DIGITS = b"0" * 20


def _orjson_loads(body: bytes) -> Any:
    """orjson's decoding where it equals the stdlib's; ``_UNPARSED`` where only the stdlib can decide."""
    if _LONG_DIGITS in body.translate(_DIGITS_AS_ZEROS):
        return _UNPARSED
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return _UNPARSED


def json_body(request: HttpRequest) -> Any:
    """The body decoded as JSON, once per request (the limits middleware and the view share it).

    orjson first (several times faster); the stdlib decides whatever orjson refuses or reads differently
    (``NaN`` literals, integers beyond 64 bits, malformed input), so results and error messages are the
    stdlib's. Raises ValueError for malformed JSON. Call it after the depth check
    (``RequestLimitsMiddleware``).
    """
    data = getattr(request, "_json_body", _UNPARSED)
    if data is _UNPARSED:
        data = _orjson_loads(request.body)
        if data is _UNPARSED:
            data = json.loads(request.body)
        request._json_body = data  # type: ignore[attr-defined]
    return data


def _nesting(data: Any) -> int:
    """The deepest array/object nesting of decoded JSON (orjson stops parsing at 1024 levels), level by level."""
    deepest = 0
    level = [data] if type(data) is dict or type(data) is list else []
    while level:
        deepest += 1
        below: list[Any] = []
        for node in level:
            children = node.values() if type(node) is dict else node
            below += [child for child in children if type(child) is dict or type(child) is list]
        level = below
    return deepest


def body_depth(request: HttpRequest, body: bytes, *, stop_above: int) -> int:
    """The body's JSON nesting: from the parsed body when orjson can parse it (and kept for the view),
    else by scanning the text (``json_depth``: malformed JSON, ``NaN`` literals, or deeper than orjson goes).
    """
    data = _orjson_loads(body)
    if data is _UNPARSED:
        return json_depth(body, stop_above=stop_above)
    request._json_body = data  # type: ignore[attr-defined]
    return _nesting(data)


def _strings(data: Any) -> Any:
    """Every string (keys included) in decoded JSON; depth is already bounded by JSON_MAX_DEPTH."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _strings(value)
    elif isinstance(data, list):
        for item in data:
            yield from _strings(item)


def has_nul_character(body: bytes) -> bool:
    """True when a JSON body decodes to a string holding U+0000 (PostgreSQL text cannot store it)."""
    if b"\\u0000" not in body:
        return False
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False
    return any("\x00" in text for text in _strings(data))


def has_nul_in_url(request: HttpRequest) -> bool:
    """True when the decoded path or a query parameter holds U+0000."""
    if "\x00" in request.path:
        return True
    if "%00" not in request.META.get("QUERY_STRING", ""):
        return False
    return any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists())


def has_lone_surrogate(body: bytes) -> bool:
    """True when a JSON body decodes to a string holding an unpaired surrogate (no database can store it).

    Only bodies with a ``\\uD8xx``-``\\uDFxx`` escape are parsed; malformed JSON is left to the view to report.
    """
    if not _SURROGATE_ESCAPE.search(body):
        return False
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return False
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def is_raw_upload(request: HttpRequest) -> bool:
    """True for artifact uploads, whose body is file content rather than JSON."""
    return any(pattern.match(request.path) for pattern in RAW_BODY_PATHS)


def body_size(request: HttpRequest) -> int:
    """The body's length: the buffered size when the stream can tell (chunked bodies), else Content-Length."""
    stream = getattr(request, "_stream", None)
    if stream is not None and hasattr(stream, "seekable") and stream.seekable() and hasattr(stream, "tell"):
        position = stream.tell()
        size = stream.seek(0, os.SEEK_END)
        stream.seek(position)
        return size
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def refusal(request: HttpRequest, status: int, code: str, message: str, details: dict[str, Any]) -> JsonResponse:
    """An error in the caller's dialect: MLflow's ``{error_code, message}`` on façade paths, else the envelope."""
    if MLFLOW_PATH.match(request.path):
        return JsonResponse({"error_code": "INVALID_PARAMETER_VALUE", "message": message}, status=status)
    return JsonResponse(error_body(code, message, details), status=status)


def _hybrid(cls: type) -> type:
    """Let a middleware class run in sync and async stacks alike (it only inspects the request)."""
    cls.sync_capable = True  # type: ignore[attr-defined]
    cls.async_capable = True  # type: ignore[attr-defined]
    return cls


class _Middleware:
    """Shared plumbing: sync/async dispatch around ``check(request)`` and ``finish(request, response)``."""

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.is_async:
            return self._acall(request)  # type: ignore[return-value]
        early = self.check(request)
        response = early if early is not None else self.get_response(request)
        return self.finish(request, response)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        early = self.check(request)
        response = early if early is not None else await self.get_response(request)
        return self.finish(request, response)

    def check(self, request: HttpRequest) -> HttpResponse | None:
        """A response that ends the request early, or None to go on."""
        return None

    def finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """Adjust the response on its way out."""
        return response


@_hybrid
class RequestLimitsMiddleware(_Middleware):
    """Refuse over-large bodies (413) and over-deep JSON (400) before any view sees them."""

    def check(self, request: HttpRequest) -> HttpResponse | None:
        """NUL in the URL first, then body size (cheap, from the header or buffered file), then the JSON text."""
        if has_nul_in_url(request):
            return refusal(request, 400, "invalid", NUL_MESSAGE, {})
        if request.method not in BODY_METHODS or is_raw_upload(request):
            return None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        size = body_size(request)
        if limit is not None and size > limit:
            return refusal(
                request,
                413,
                "payload_too_large",
                f"The request body is {size} bytes, over the limit of {limit} bytes.",
                {"limit_bytes": limit},
            )
        if size == 0:
            return None
        max_depth = getattr(settings, "JSON_MAX_DEPTH", DEFAULT_JSON_MAX_DEPTH)
        content_type = request.META.get("CONTENT_TYPE", "")
        if content_type.startswith(FORM_CONTENT_TYPES):
            return None
        body = request.body
        # Cheap bound first: a body with few brackets cannot nest deeply (typical requests stop here).
        if body.count(b"[") + body.count(b"{") > max_depth:
            depth = body_depth(request, body, stop_above=max_depth)
            if depth > max_depth:
                return refusal(
                    request,
                    400,
                    "invalid",
                    f"The JSON body is nested {depth} levels deep, over the limit of {max_depth}.",
                    {"max_depth": max_depth},
                )
        if has_nul_character(body):
            return refusal(request, 400, "invalid", NUL_MESSAGE, {})
        if has_lone_surrogate(body):
            return refusal(
                request,
                400,
                "invalid",
                "The JSON body contains an unpaired UTF-16 surrogate escape (e.g. \\ud800), which is not text.",
                {},
            )
        return None


@_hybrid
class SecurityHeadersMiddleware(_Middleware):
    """Content-Security-Policy, Permissions-Policy and Cross-Origin-Resource-Policy on every response."""

    def finish(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        """Set the headers unless a view chose its own (artifact downloads send a stricter sandbox CSP)."""
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", DEFAULT_CSP)
        if policy and DOCS_PATH.match(request.path):
            # drf-spectacular's Swagger page has one inline <style> block; its scripts stay same-origin only.
            policy = policy.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class DatabaseUnavailableMiddleware:
    """A lost database connection in a non-API view is a 503 with Retry-After, not a 500."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Answer OperationalError/InterfaceError (database down, pool exhausted); leave the rest to Django."""
        if not isinstance(exception, (OperationalError, InterfaceError)):
            return None
        message = "The database is unavailable; try again shortly."
        if request.path.startswith("/api/") or request.path.startswith("/ajax-api/"):
            response: HttpResponse = refusal(request, 503, "unavailable", message, {})
            if MLFLOW_PATH.match(request.path):
                response = JsonResponse({"error_code": "TEMPORARILY_UNAVAILABLE", "message": message}, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
