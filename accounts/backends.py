"""Django authentication backend that refuses password checks while a username or IP is throttled."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts import throttling
from accounts.audit import client_ip


class ThrottledModelBackend(ModelBackend):
    """ModelBackend that raises LoginThrottled (429) before checking a password when over the limit."""

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        """Check the failure counters, then the password."""
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        throttling.check(username=username, ip=client_ip(request) if request is not None else None)
        return super().authenticate(request, username=username, password=password, **kwargs)
