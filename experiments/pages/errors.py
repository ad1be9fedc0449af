"""Turn the domain errors raised by services and selectors into the site's error pages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from mlplatform.errors import Forbidden, NotFound, ServiceError

TITLES = {400: "Bad request", 409: "Conflict", 413: "Too large", 503: "Unavailable"}


def page_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """NotFound → the 404 page, Forbidden → the 403 page, any other domain error → an error page with its status."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
        except ServiceError as exc:
            context = {"status": exc.status_code, "title": TITLES.get(exc.status_code, "Error"), "message": exc.message}
            return render(request, "error.html", context, status=exc.status_code)

    return wrapper
