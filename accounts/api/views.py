"""Account endpoints: the current user, password, API tokens, teams and members, signup.

Views are thin: parse input, call one service or selector, serialize the output.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import update_session_auth_hash
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.api import serializers as s
from mlplatform.api import CursorPagination, paginated
from mlplatform.errors import NotFound


def _valid(serializer_class: type[Serializer], request: Request, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class MeView(APIView):
    """The authenticated user with their teams and roles."""

    @extend_schema(responses=s.MeSerializer)
    def get(self, request: Request, version: str) -> Response:
        """Return the current user."""
        return Response(s.MeSerializer(request.user).data)

    @extend_schema(request=s.MeUpdateInput, responses=s.MeSerializer)
    def patch(self, request: Request, version: str) -> Response:
        """Change the current user's name or email."""
        data = _valid(s.MeUpdateInput, request, partial=True)
        user = services.user_update(user=request.user, request=request, **data)
        return Response(s.MeSerializer(user).data)


class PasswordChangeView(APIView):
    """Change the current user's password (the browser session stays logged in)."""

    @extend_schema(request=s.PasswordChangeInput, responses={204: None})
    def post(self, request: Request, version: str) -> Response:
        """Check the old password and validators, then set the new one."""
        data = _valid(s.PasswordChangeInput, request)
        user = services.password_change(user=request.user, request=request, **data)
        update_session_auth_hash(request._request, user)
        return Response(status=204)


class ApiTokenListView(APIView):
    """The caller's personal API tokens."""

    pagination_class = CursorPagination

    @extend_schema(responses=s.ApiTokenOutput(many=True))
    def get(self, request: Request, version: str) -> Response:
        """List the caller's tokens (never their secrets)."""
        return paginated(request, self, selectors.api_tokens_of(user=request.user), s.ApiTokenOutput)

    @extend_schema(request=s.ApiTokenCreateInput, responses={201: s.ApiTokenCreatedOutput})
    def post(self, request: Request, version: str) -> Response:
        """Create a token; the plaintext is in this response only."""
        data = _valid(s.ApiTokenCreateInput, request)
        token, plaintext = services.api_token_create(user=request.user, request=request, **data)
        token.token = plaintext
        return Response(s.ApiTokenCreatedOutput(token).data, status=201)


class ApiTokenDetailView(APIView):
    """One of the caller's API tokens; DELETE revokes it."""

    @extend_schema(responses=s.ApiTokenOutput)
    def get(self, request: Request, version: str, token_id: int) -> Response:
        """Show the token (without its secret)."""
        return Response(s.ApiTokenOutput(selectors.api_token_get(user=request.user, token_id=token_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, token_id: int) -> Response:
        """Revoke the token (idempotent)."""
        token = selectors.api_token_get(user=request.user, token_id=token_id)
        services.api_token_revoke(user=request.user, token=token, request=request)
        return Response(status=204)


class ApiTokenRevokeView(APIView):
    """POST alternative to DELETE for clients that cannot send DELETE."""

    @extend_schema(request=None, responses=s.ApiTokenOutput)
    def post(self, request: Request, version: str, token_id: int) -> Response:
        """Revoke the token and return it."""
        token = selectors.api_token_get(user=request.user, token_id=token_id)
        token = services.api_token_revoke(user=request.user, token=token, request=request)
        return Response(s.ApiTokenOutput(token).data)


class TeamListView(APIView):
    """Teams the caller belongs to (staff: every team); POST creates one with the caller as owner."""

    pagination_class = CursorPagination

    @extend_schema(responses=s.TeamOutput(many=True))
    def get(self, request: Request, version: str) -> Response:
        """List visible teams."""
        return paginated(request, self, selectors.teams_visible_to(user=request.user), s.TeamOutput)

    @extend_schema(request=s.TeamCreateInput, responses={201: s.TeamOutput})
    def post(self, request: Request, version: str) -> Response:
        """Create a team; the caller becomes its owner."""
        data = _valid(s.TeamCreateInput, request)
        team = services.team_create(creator=request.user, request=request, **data)
        return Response(s.TeamOutput(team, context={"request": request}).data, status=201)


class TeamDetailView(APIView):
    """One team: members read it, admins change it, owners delete it."""

    @extend_schema(responses=s.TeamOutput)
    def get(self, request: Request, version: str, team_id: int) -> Response:
        """Show the team."""
        team = selectors.team_get(user=request.user, team_id=team_id)
        return Response(s.TeamOutput(team, context={"request": request}).data)

    @extend_schema(request=s.TeamUpdateInput, responses=s.TeamOutput)
    def patch(self, request: Request, version: str, team_id: int) -> Response:
        """Rename the team or change its description (admin+)."""
        team = selectors.team_get(user=request.user, team_id=team_id)
        data = _valid(s.TeamUpdateInput, request, partial=True)
        team = services.team_update(actor=request.user, team=team, request=request, **data)
        return Response(s.TeamOutput(team, context={"request": request}).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, team_id: int) -> Response:
        """Delete the team (owner only; 409 while it still owns experiments or models)."""
        team = selectors.team_get(user=request.user, team_id=team_id)
        services.team_delete(actor=request.user, team=team, request=request)
        return Response(status=204)


class MemberListView(APIView):
    """A team's members; admins add members by username."""

    pagination_class = CursorPagination

    @extend_schema(responses=s.MemberOutput(many=True))
    def get(self, request: Request, version: str, team_id: int) -> Response:
        """List the members and their roles."""
        team = selectors.team_get(user=request.user, team_id=team_id)
        return paginated(request, self, selectors.team_members(team=team), s.MemberOutput)

    @extend_schema(request=s.MemberAddInput, responses={201: s.MemberOutput})
    def post(self, request: Request, version: str, team_id: int) -> Response:
        """Add an existing user with a role (admin+; only owners grant owner)."""
        team = selectors.team_get(user=request.user, team_id=team_id)
        data = _valid(s.MemberAddInput, request)
        membership = services.membership_add(actor=request.user, team=team, request=request, **data)
        return Response(s.MemberOutput(membership).data, status=201)


class MemberDetailView(APIView):
    """One member of a team: change their role or remove them."""

    @extend_schema(responses=s.MemberOutput)
    def get(self, request: Request, version: str, team_id: int, user_id: int) -> Response:
        """Show the member."""
        team = selectors.team_get(user=request.user, team_id=team_id)
        return Response(s.MemberOutput(selectors.membership_get(team=team, user_id=user_id)).data)

    @extend_schema(request=s.MemberUpdateInput, responses=s.MemberOutput)
    def patch(self, request: Request, version: str, team_id: int, user_id: int) -> Response:
        """Change the member's role (admin+; owners are changed only by owners; one owner stays)."""
        team = selectors.team_get(user=request.user, team_id=team_id)
        membership = selectors.membership_get(team=team, user_id=user_id)
        data = _valid(s.MemberUpdateInput, request)
        membership = services.membership_change_role(
            actor=request.user, membership=membership, role=data["role"], request=request
        )
        return Response(s.MemberOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, team_id: int, user_id: int) -> Response:
        """Remove the member (admin+, or the member themselves; one owner stays)."""
        team = selectors.team_get(user=request.user, team_id=team_id)
        membership = selectors.membership_get(team=team, user_id=user_id)
        services.membership_remove(actor=request.user, membership=membership, request=request)
        return Response(status=204)


class SignupView(APIView):
    """Self-registration; answers 404 unless the ALLOW_SIGNUP setting is on."""

    permission_classes = [AllowAny]

    @extend_schema(request=s.SignupInput, responses={201: s.MeSerializer})
    def post(self, request: Request, version: str) -> Response:
        """Create a user account with a password (validators apply)."""
        if not getattr(settings, "ALLOW_SIGNUP", False):
            raise NotFound("Self-registration is disabled; ask an operator for an account.")
        data = _valid(s.SignupInput, request)
        user = services.user_signup(request=request, **data)
        return Response(s.MeSerializer(user).data, status=201)
