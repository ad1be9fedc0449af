"""JWT endpoints (simplejwt) with login throttling, audit and blacklisting logout."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth import logout as session_logout
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt import views as jwt_views
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from accounts import audit, throttling
from accounts.api.serializers import LogoutInput
from mlplatform.errors import InvalidInput

TokenPair = inline_serializer("TokenPair", {"access": serializers.CharField(), "refresh": serializers.CharField()})


class TokenObtainView(jwt_views.TokenObtainPairView):
    """Exchange username + password for an access and a refresh JWT (failures are throttled)."""

    @extend_schema(responses={200: TokenPair, 401: OpenApiResponse(description="Wrong credentials.")})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Check credentials (429 when over the failure limit) and return a token pair."""
        data = request.data if isinstance(request.data, dict) else {}
        username = data.get(get_user_model().USERNAME_FIELD)
        username = username if isinstance(username, str) else None
        throttling.check(username=username, ip=audit.client_ip(request))
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except TokenError as exc:  # pragma: no cover - obtain raises AuthenticationFailed, not TokenError
            raise InvalidToken(exc.args[0]) from exc
        user = serializer.user
        with transaction.atomic():
            audit.record_event(action=audit.LOGIN_SUCCESS, actor=user, request=request, details={"method": "jwt"})
        throttling.reset(username=user.get_username())
        return Response(serializer.validated_data)


class RefreshInput(TokenRefreshSerializer):
    """Refresh serializer that rejects tokens of deleted users and of users whose password changed."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        """Validate the refresh token and the user it belongs to, then rotate."""
        refresh = self.token_class(attrs["refresh"])
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed("No active account found for the given token.", "no_active_account")
        if jwt_settings.CHECK_REVOKE_TOKEN and refresh.payload.get(
            jwt_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise AuthenticationFailed("The user's password has been changed.", "password_changed")
        return super().validate(attrs)


class TokenRefreshView(jwt_views.TokenRefreshView):
    """Exchange a refresh JWT for a new access token and a rotated refresh token (the old one is blacklisted)."""

    serializer_class = RefreshInput

    @extend_schema(responses={200: TokenPair, 401: OpenApiResponse(description="Invalid or blacklisted token.")})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Rotate the refresh token."""
        return super().post(request, *args, **kwargs)


class LogoutView(APIView):
    """Blacklist a refresh token and end the browser session, if any."""

    permission_classes = [AllowAny]

    @extend_schema(request=LogoutInput, responses={204: None})
    def post(self, request: Request, version: str) -> Response:
        """Log out: the refresh token can no longer be used; access tokens expire on their own."""
        data = LogoutInput(data=request.data)
        data.is_valid(raise_exception=True)
        raw = data.validated_data.get("refresh")
        by_session = isinstance(request.successful_authenticator, SessionAuthentication)
        if raw is None and not by_session:
            raise InvalidInput("Send the refresh token to log out.", details={"refresh": ["This field is required."]})
        actor = request.user if request.user.is_authenticated else None
        with transaction.atomic():
            if raw is not None:
                try:
                    refresh = RefreshToken(raw)
                except TokenError as exc:
                    raise InvalidToken(exc.args[0]) from exc
                user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
                owner = get_user_model().objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
                refresh.blacklist()
                actor = actor or owner
                audit.record_event(action=audit.LOGOUT, actor=actor, request=request, details={"method": "jwt"})
        if by_session:
            session_logout(request._request)  # the user_logged_out receiver audits it
        return Response(status=204)
