"""Serializers for account endpoints."""

from rest_framework import serializers

from accounts.models import Membership, User


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
