"""WebSocket authentication shared by every consumer.

``WebSocketAuthMiddleware`` sets ``scope["user"]`` from, in order:
an API token or JWT in ``?token=``; an API token or JWT offered as a
``Sec-WebSocket-Protocol`` value next to ``"mlplatform"`` (browsers cannot set
headers: ``new WebSocket(url, ["mlplatform", token])``); else the session cookie.
A token that does not authenticate gives AnonymousUser (no fallback to the
session). When the client offered the ``mlplatform`` subprotocol the consumer
must accept with it: ``await self.accept(subprotocol=ws_subprotocol(self.scope))``.

Consumers decide with ``ws_authorize`` and close with the codes below.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddleware, get_user
from channels.db import database_sync_to_async
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from accounts.authentication import user_for_api_token
from accounts.permissions import Action, authorize, forget_roles
from accounts.tokens import looks_like_api_token
from mlplatform.errors import Forbidden, NotFound

WS_UNAUTHENTICATED = 4401
WS_FORBIDDEN = 4403
WS_NOT_FOUND = 4404
WS_SUBPROTOCOL = "mlplatform"


def token_from_scope(scope: dict[str, Any]) -> str | None:
    """The token from ``?token=`` or from the offered subprotocols, or None."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][-1]
    for protocol in scope.get("subprotocols") or []:
        if protocol != WS_SUBPROTOCOL:
            return protocol
    return None


def ws_subprotocol(scope: dict[str, Any]) -> str | None:
    """The subprotocol a consumer must accept with ("mlplatform" when offered, else None)."""
    return WS_SUBPROTOCOL if WS_SUBPROTOCOL in (scope.get("subprotocols") or []) else None


def user_for_token(raw: str) -> Any:
    """The user an API token or JWT belongs to; AnonymousUser when it does not authenticate."""
    try:
        if looks_like_api_token(raw):
            return user_for_api_token(raw)[0]
        jwt = JWTAuthentication()
        return jwt.get_user(jwt.get_validated_token(raw.encode("utf-8")))
    except (exceptions.AuthenticationFailed, InvalidToken, TokenError):
        return AnonymousUser()


class TokenOrSessionAuthMiddleware(AuthMiddleware):
    """Channels AuthMiddleware that prefers a token over the session cookie."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        """Resolve ``scope["user"]`` from the token if one was sent, else from the session."""
        raw = token_from_scope(scope)
        if raw is not None:
            scope["user"]._wrapped = await database_sync_to_async(user_for_token)(raw)
            scope["auth_method"] = "token"
        else:
            scope["user"]._wrapped = await get_user(scope)
            scope["auth_method"] = "session"


class WebSocketAuthMiddleware:
    """Cookie + session + token/session auth, wrapped around the WebSocket router."""

    def __init__(self, inner: Callable[..., Awaitable[Any]]) -> None:
        self.inner = inner
        self.app = CookieMiddleware(SessionMiddleware(TokenOrSessionAuthMiddleware(inner)))

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> Any:
        """Authenticate, then hand over to the inner application."""
        return await self.app(scope, receive, send)


def _authorize_code(user: Any, action: Action | str, obj: Any) -> int | None:
    forget_roles(user)  # a long-lived socket must see role changes made since it connected
    try:
        authorize(user, action, obj)
    except NotFound:
        return WS_NOT_FOUND
    except Forbidden:
        return WS_FORBIDDEN
    return None


async def ws_authorize(scope: dict[str, Any], action: Action | str, obj: Any) -> int | None:
    """The close code for this connection (4401/4403/4404), or None when the user may proceed."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return WS_UNAUTHENTICATED
    return await database_sync_to_async(_authorize_code)(user, action, obj)
