"""DRF authentication classes: API tokens, JWT (simplejwt), HTTP Basic and session.

Order in ``DEFAULT_AUTHENTICATION_CLASSES``: ApiTokenAuthentication first (its
``WWW-Authenticate: Bearer`` makes an anonymous request a 401, not a 403), then
JWTAuthentication for other Bearer values, then Basic, then session. The MLflow
façade uses the same classes: ``MLFLOW_TRACKING_TOKEN`` arrives as Bearer,
``MLFLOW_TRACKING_USERNAME/PASSWORD`` as Basic (the password may be an API token).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import audit, throttling
from accounts.audit import client_ip
from accounts.models import ApiToken, User
from accounts.tokens import hash_matches, looks_like_api_token, parse_token
from mlplatform.near_cache import AUTH_ENTRIES

logger = logging.getLogger("mlplatform.auth")

LAST_USED_RESOLUTION = timedelta(minutes=1)
# Password hashing is deliberately slow (~0.3 s); a verified Basic password is trusted this long.
BASIC_VERIFIED_SECONDS = 300


TOKEN_CACHE_SECONDS = 10
TOKEN_CACHE_PREFIX = "api-token"  # noqa: S105 (a cache key prefix)


def token_cache_key(prefix: str) -> str:
    """Cache key of the token row (with its user) for a token prefix."""
    return f"{TOKEN_CACHE_PREFIX}:{prefix}"


def forget_cached_tokens(prefixes: list[str]) -> None:
    """Drop cached token rows, so a revocation or user change applies to the next request."""
    try:
        AUTH_ENTRIES.forget(token_cache_key(prefix) for prefix in prefixes)
    except Exception:  # cache down: nothing can be read from it either, and entries expire on their own
        logger.warning("cache unavailable, could not drop cached API tokens %s", prefixes)


def _cached_token(prefix: str) -> ApiToken | None:
    """The token row and its user from the cache (a few seconds old at most), else from the database."""
    try:
        token = AUTH_ENTRIES.get(token_cache_key(prefix))
    except Exception:  # cache down: the database answers
        token = None
    if token is None:
        token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
        if token is not None:
            _remember_token(token)
    return token


def _remember_token(token: ApiToken) -> None:
    try:
        AUTH_ENTRIES.set(token_cache_key(token.prefix), token, TOKEN_CACHE_SECONDS)
    except Exception:  # cache down: nothing to remember
        return


def user_for_api_token(plaintext: str) -> tuple[User, ApiToken]:
    """The active user and token for a plaintext API token; AuthenticationFailed otherwise.

    The token row (with its user) is cached for TOKEN_CACHE_SECONDS, so most requests authenticate
    without a query; revoking a token or saving its user drops the entry at once (accounts.signals).
    """
    parsed = parse_token(plaintext)
    token = _cached_token(parsed.prefix) if parsed is not None else None
    # Hash even when no row matched, so timing does not tell a wrong prefix from a wrong secret.
    matches = hash_matches(plaintext, token.token_hash if token is not None else "0" * 64)
    if token is None or not matches:
        raise exceptions.AuthenticationFailed("Invalid API token.", code="invalid_token")
    now = timezone.now()
    if token.is_revoked:
        raise exceptions.AuthenticationFailed("This API token has been revoked.", code="token_revoked")
    if token.is_expired(now):
        raise exceptions.AuthenticationFailed("This API token has expired.", code="token_expired")
    if not token.user.is_active:
        raise exceptions.AuthenticationFailed("User inactive or deleted.", code="user_inactive")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        # A plain UPDATE at most once a minute per token keeps the hot path free of writes.
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
        _remember_token(token)
    return token.user, token


def bearer_value(request: Request) -> str | None:
    """The value of ``Authorization: Bearer <value>``, or None."""
    parts = authentication.get_authorization_header(request).split()
    if len(parts) != 2 or parts[0].lower() != b"bearer":
        return None
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        return None


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer mlp_...`` personal API tokens; other Bearer values are left to JWT."""

    www_authenticate_realm = "api"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        """Authenticate an API token, or return None when the header holds something else."""
        value = bearer_value(request)
        if value is None or not looks_like_api_token(value):
            return None
        return user_for_api_token(value)

    def authenticate_header(self, request: Request) -> str:
        """Challenge sent with 401 responses."""
        return f'Bearer realm="{self.www_authenticate_realm}"'


class BasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic with username + password or username + API token; failures count towards throttling."""

    def authenticate_credentials(self, userid: str, password: str, request: Any = None) -> tuple[User, None]:
        """Check the credentials; LoginThrottled (429) when the username or IP is over the limit."""
        ip = client_ip(request) if request is not None else None
        throttling.check(username=userid, ip=ip)
        if looks_like_api_token(password):
            try:
                user, _token = user_for_api_token(password)
            except exceptions.AuthenticationFailed:
                user = None
            if user is None or user.get_username() != userid:
                user_login_failed.send(
                    sender=__name__, credentials={"username": userid, "method": "basic-token"}, request=request
                )
                raise exceptions.AuthenticationFailed("Invalid username or API token.")
        else:
            user = recently_verified_user(userid, password)
            if user is None:
                user = authenticate(request=request, username=userid, password=password)
                if user is None:
                    raise exceptions.AuthenticationFailed("Invalid username/password.")
                remember_verified(userid, password, user)
                # A login for the audit log each time the password is really checked (at most every
                # BASIC_VERIFIED_SECONDS per credential), not on every request of a Basic client.
                audit.record_event(action=audit.LOGIN_SUCCESS, actor=user, request=request, details={"method": "basic"})
        throttling.reset(username=userid)
        return user, None


def _verified_key(userid: str, password: str) -> str:
    # Keyed by SECRET_KEY: the cache (Redis) never holds anything that reveals the password.
    digest = hmac.new(settings.SECRET_KEY.encode(), f"{userid}\0{password}".encode(), hashlib.sha256).hexdigest()
    return f"basic-verified:{digest}"


def remember_verified(userid: str, password: str, user: User) -> None:
    """Cache a successful password check, so the mlflow client's Basic auth costs no hash per request."""
    try:
        cache.set(_verified_key(userid, password), (user.pk, user.password), BASIC_VERIFIED_SECONDS)
    except Exception:  # cache down: the next request checks the password again
        logger.warning("cache unavailable, could not remember a verified Basic credential")


def recently_verified_user(userid: str, password: str) -> User | None:
    """The user whose password check for these credentials succeeded recently and still holds.

    The stored password hash must be unchanged, so a password change or reset ends it at once;
    deactivation does too.
    """
    try:
        cached = cache.get(_verified_key(userid, password))
    except Exception:  # cache down: fall back to checking the password
        logger.warning("cache unavailable, checking the Basic password instead")
        cached = None
    if cached is None:
        return None
    user_pk, password_hash = cached
    user = User.objects.filter(pk=user_pk, is_active=True).first()
    if user is None or user.password != password_hash or user.get_username() != userid:
        return None
    return user
