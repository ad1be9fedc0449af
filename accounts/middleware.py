"""Turn a login throttle raised outside DRF (admin and page login forms) into a 429 response."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from accounts.throttling import LoginThrottled
from mlplatform.api import error_body


class LoginThrottleMiddleware:
    """Answer LoginThrottled with 429 and Retry-After (JSON under /api/, plain text elsewhere)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Render LoginThrottled; leave every other exception to Django."""
        if not isinstance(exception, LoginThrottled):
            return None
        wait = int(exception.wait or 1)
        message = f"Too many failed login attempts. Try again in {wait} seconds."
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(error_body("throttled", message, {"retry_after": wait}), status=429)
        else:
            response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(wait)
        return response
