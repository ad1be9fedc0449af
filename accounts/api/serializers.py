"""Input and output serializers for account endpoints (small and separate)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import ApiToken, Membership, Role, Team, User
from accounts.permissions import role_in

ROLE_NAMES = [role.label for role in Role]


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        """Accept only JSON strings."""
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


# ---- users -------------------------------------------------------------------------------------


class MembershipSerializer(serializers.ModelSerializer):
    """A team the user belongs to, with their role."""

    team_id = serializers.IntegerField(source="team.id")
    team = serializers.CharField(source="team.name")
    role = serializers.CharField(source="get_role_display")

    class Meta:
        model = Membership
        fields = ["team_id", "team", "role"]


class MeSerializer(serializers.ModelSerializer):
    """The current user."""

    teams = MembershipSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_staff", "teams"]


class MeUpdateInput(serializers.Serializer):
    """Profile fields a user may change."""

    first_name = StrictCharField(max_length=150, required=False, allow_blank=True)
    last_name = StrictCharField(max_length=150, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)


class PasswordChangeInput(serializers.Serializer):
    """Old and new password."""

    old_password = StrictCharField(trim_whitespace=False, max_length=4096)
    new_password = StrictCharField(trim_whitespace=False, max_length=4096)


class SignupInput(serializers.Serializer):
    """Self-registration (only when ALLOW_SIGNUP is on)."""

    username = StrictCharField(max_length=150)
    password = StrictCharField(trim_whitespace=False, max_length=4096)
    email = serializers.EmailField(required=False, allow_blank=True, default="")


# ---- API tokens --------------------------------------------------------------------------------


class ApiTokenOutput(serializers.ModelSerializer):
    """An API token without its secret."""

    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at", "is_active"]

    def get_is_active(self, token: ApiToken) -> bool:
        """True when the token can still authenticate."""
        return token.is_usable()


class ApiTokenCreatedOutput(ApiTokenOutput):
    """A new token, with the plaintext ``token`` shown only in this response."""

    token = serializers.CharField(help_text="The secret token. It is shown only once; store it now.")

    class Meta(ApiTokenOutput.Meta):
        fields = [*ApiTokenOutput.Meta.fields, "token"]


class ApiTokenCreateInput(serializers.Serializer):
    """Name and optional expiry of a new token."""

    name = StrictCharField(max_length=100)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


# ---- teams and members -------------------------------------------------------------------------


class TeamOutput(serializers.ModelSerializer):
    """A team, with the caller's role in it (null for staff who are not members)."""

    role = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "description", "is_personal", "created_at", "role"]

    def get_role(self, team: Team) -> str | None:
        """The requesting user's role name in this team."""
        role = role_in(self.context["request"].user, team.pk)
        return role.label if role is not None else None


class TeamCreateInput(serializers.Serializer):
    """A new team."""

    name = StrictCharField(max_length=150)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=10_000)


class TeamUpdateInput(serializers.Serializer):
    """Team fields that can change."""

    name = StrictCharField(max_length=150, required=False)
    description = StrictCharField(required=False, allow_blank=True, max_length=10_000)


class MemberOutput(serializers.ModelSerializer):
    """A member of a team and their role."""

    user_id = serializers.IntegerField(source="user.id")
    username = serializers.CharField(source="user.username")
    role = serializers.CharField(source="get_role_display")

    class Meta:
        model = Membership
        fields = ["user_id", "username", "role", "created_at"]


class MemberAddInput(serializers.Serializer):
    """Add a user (by username) with a role."""

    username = StrictCharField(max_length=150)
    role = serializers.ChoiceField(choices=ROLE_NAMES, default=Role.VIEWER.label)


class MemberUpdateInput(serializers.Serializer):
    """A member's new role."""

    role = serializers.ChoiceField(choices=ROLE_NAMES)


# ---- JWT ---------------------------------------------------------------------------------------


class LogoutInput(serializers.Serializer):
    """The refresh token to blacklist (optional when logging out a browser session)."""

    refresh = StrictCharField(required=False, max_length=4096)
