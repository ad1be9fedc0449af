"""Login throttling: failed logins are counted per username and per IP in the cache.

Every way of logging in with a password (the login form and admin, HTTP Basic,
JWT obtain) goes through ``django.contrib.auth.authenticate``; the throttled
backend checks the counters first and the ``user_login_failed`` signal counts
each failure, so one rule covers them all. Over the limit the caller gets 429
with ``Retry-After``; a successful login resets the username's counter.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from rest_framework.exceptions import Throttled


class LoginThrottled(Throttled):
    """Too many failed logins for this username or IP: 429 with Retry-After."""

    default_detail = "Too many failed login attempts."
    default_code = "throttled"


@dataclass(frozen=True)
class Limits:
    """Failures allowed per username and per IP within ``window`` seconds."""

    per_username: int
    per_ip: int
    window: int
    namespace: str


def limits() -> Limits:
    """Current limits from settings (read at call time so tests can override them)."""
    conf = getattr(settings, "LOGIN_THROTTLE", {})
    return Limits(
        per_username=int(conf.get("FAILURES_PER_USERNAME", 10)),
        per_ip=int(conf.get("FAILURES_PER_IP", 50)),
        window=int(conf.get("WINDOW_SECONDS", 900)),
        namespace=str(conf.get("NAMESPACE", "")),
    )


def _key(kind: str, value: str, namespace: str) -> str:
    # Hash so any username (spaces, unicode, length) makes a valid cache key.
    digest = hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()[:32]
    return f"login-fail:{namespace}:{kind}:{digest}"


def _keys(username: str | None, ip: str | None, lim: Limits) -> list[tuple[str, int]]:
    keys = []
    if username:
        keys.append((_key("user", username, lim.namespace), lim.per_username))
    if ip:
        keys.append((_key("ip", ip, lim.namespace), lim.per_ip))
    return keys


def check(*, username: str | None, ip: str | None) -> None:
    """Raise LoginThrottled when the username or the IP is over its failure limit."""
    lim = limits()
    keys = _keys(username, ip, lim)
    if not keys:
        return
    values = cache.get_many([name for key, _ in keys for name in (key, f"{key}:until")])
    wait = 0.0
    for key, limit in keys:
        if (values.get(key) or 0) >= limit:
            wait = max(wait, float(values.get(f"{key}:until") or time.time() + lim.window) - time.time())
    if wait > 0:
        raise LoginThrottled(wait=max(1, int(wait + 0.999)))


def record_failure(*, username: str | None, ip: str | None) -> None:
    """Count one failed login for the username and the IP (atomic increments, shared across processes)."""
    lim = limits()
    for key, _ in _keys(username, ip, lim):
        # The window starts at the first failure and is not extended by later ones.
        if cache.add(key, 0, timeout=lim.window):
            cache.set(f"{key}:until", time.time() + lim.window, timeout=lim.window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=lim.window)


def reset(*, username: str | None, ip: str | None = None) -> None:
    """Forget the failures of a username (and of an IP, when given)."""
    lim = limits()
    cache.delete_many([name for key, _ in _keys(username, ip, lim) for name in (key, f"{key}:until")])
