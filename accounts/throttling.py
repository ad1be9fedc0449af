"""Request-rate and login throttling on O(1) counters in the cache, failing open when the cache is down.

API rate limits (``UserRateThrottle``/``AnonRateThrottle``, DRF's ``DEFAULT_THROTTLE_CLASSES``) count
requests in fixed windows: one integer per client and window (Redis ``INCR`` + ``EXPIRE`` in one round
trip), instead of DRF's list of every request timestamp, which at 100000/min is pickled on each request.

Login throttling: every way of logging in with a password (the login form and admin, HTTP Basic,
JWT obtain) goes through ``django.contrib.auth.authenticate``; the throttled backend checks the
failure counters first and the ``user_login_failed`` signal counts each failure, so one rule covers
them all. Over the limit the caller gets 429 with ``Retry-After``; a successful login resets the
username's counter.

Both fail open: when the cache (Redis) is unreachable a request is allowed and a warning is logged,
because refusing every request during a cache outage would turn it into a full outage.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

logger = logging.getLogger("mlplatform.throttling")
# One warning per this many seconds while the cache is down, not one per request.
WARNING_INTERVAL = 30.0
_last_warning = 0.0


def _cache_unavailable(exc: Exception, what: str) -> None:
    """Log (at most every WARNING_INTERVAL seconds) that throttling is skipped because the cache failed."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= WARNING_INTERVAL:
        _last_warning = now
        logger.warning("cache unavailable, %s not enforced (failing open): %s: %s", what, type(exc).__name__, exc)


def count_hit(key: str, timeout: int) -> int:
    """Add one to the counter ``key`` (created with ``timeout`` seconds to live) and return its new value.

    Redis: ``INCR`` + ``EXPIRE`` pipelined, one round trip. Other caches: ``add`` then ``incr``.
    Cache errors propagate; callers fail open.
    """
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        pipe = backend._cache.get_client(None, write=True).pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, timeout)
        count, _ = pipe.execute()
        return int(count)
    if backend.add(key, 1, timeout=timeout):
        return 1
    try:
        return backend.incr(key)
    except ValueError:  # expired between add and incr
        backend.add(key, 1, timeout=timeout)
        return 1


class FixedWindowRateThrottle(BaseThrottle):
    """``scope``'s rate (``"N/period"`` from ``DEFAULT_THROTTLE_RATES``) per client, in fixed windows.

    A window of ``period`` seconds starts at a multiple of ``period``; a client may make N requests in
    it. Refused requests count too, so hammering does not shorten the wait; ``Retry-After`` is the
    time left in the window. At a window boundary a client can briefly reach 2N, the usual trade-off
    of fixed windows for O(1) state.
    """

    scope: str = ""
    key_prefix = "rate"

    def __init__(self) -> None:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        self.num_requests, self.duration = self.parse_rate(rate)
        self._wait: float | None = None

    @staticmethod
    def parse_rate(rate: str | None) -> tuple[int | None, int | None]:
        """``"100/min"`` -> (100, 60); None disables the throttle."""
        if rate is None:
            return None, None
        num, period = rate.split("/")
        duration = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0].lower()]
        return int(num), duration

    def client_ident(self, request: Any) -> str | None:
        """Who is counted (None: not throttled by this class)."""
        raise NotImplementedError

    def allow_request(self, request: Any, view: Any) -> bool:
        """Count this request in the client's current window; False over the limit."""
        if self.num_requests is None or self.duration is None:
            return True
        ident = self.client_ident(request)
        if ident is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        try:
            count = count_hit(f"{self.key_prefix}:{self.scope}:{ident}:{window}", self.duration + 1)
        except Exception as exc:
            _cache_unavailable(exc, f"{self.scope} rate limit")
            return True
        if count > self.num_requests:
            self._wait = (window + 1) * self.duration - now
            return False
        return True

    def wait(self) -> float | None:
        """Seconds until the window ends (DRF turns it into ``Retry-After``)."""
        return self._wait


class UserRateThrottle(FixedWindowRateThrottle):
    """Authenticated users by id, anonymous callers by IP (scope ``user``)."""

    scope = "user"

    def client_ident(self, request: Any) -> str | None:
        """The user's id, or the client address for anonymous requests."""
        if request.user and request.user.is_authenticated:
            return f"u{request.user.pk}"
        return f"ip{self.get_ident(request)}"


class AnonRateThrottle(FixedWindowRateThrottle):
    """Anonymous callers by IP (scope ``anon``); authenticated requests are not counted here."""

    scope = "anon"

    def client_ident(self, request: Any) -> str | None:
        """The client address, or None for an authenticated request."""
        if request.user and request.user.is_authenticated:
            return None
        return f"ip{self.get_ident(request)}"


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
    try:
        values = cache.get_many([name for key, _ in keys for name in (key, f"{key}:until")])
    except Exception as exc:
        _cache_unavailable(exc, "login throttling")
        return
    wait = 0.0
    for key, limit in keys:
        if (values.get(key) or 0) >= limit:
            wait = max(wait, float(values.get(f"{key}:until") or time.time() + lim.window) - time.time())
    if wait > 0:
        raise LoginThrottled(wait=max(1, int(wait + 0.999)))


def record_failure(*, username: str | None, ip: str | None) -> None:
    """Count one failed login for the username and the IP (atomic increments, shared across processes)."""
    lim = limits()
    try:
        for key, _ in _keys(username, ip, lim):
            # The window starts at the first failure and is not extended by later ones.
            if cache.add(key, 0, timeout=lim.window):
                cache.set(f"{key}:until", time.time() + lim.window, timeout=lim.window)
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout=lim.window)
    except Exception as exc:
        _cache_unavailable(exc, "login throttling")


def reset(*, username: str | None, ip: str | None = None) -> None:
    """Forget the failures of a username (and of an IP, when given)."""
    lim = limits()
    try:
        cache.delete_many([name for key, _ in _keys(username, ip, lim) for name in (key, f"{key}:until")])
    except Exception as exc:
        _cache_unavailable(exc, "login throttling")
