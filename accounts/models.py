"""Users, teams and memberships: every experiment and model belongs to a team."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """Custom user from the first migration, so fields can be added without a swap later."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class Role(models.IntegerChoices):
    """Team roles, ordered: a higher role can do everything a lower one can."""

    VIEWER = 10, "viewer"
    EDITOR = 20, "editor"
    ADMIN = 30, "admin"
    OWNER = 40, "owner"

    @classmethod
    def from_name(cls, name: str) -> Role:
        """Look a role up by its lower-case name ("viewer", "editor", ...)."""
        for role in cls:
            if role.label == name:
                return role
        raise ValueError(f"unknown role {name!r}; use one of {', '.join(r.label for r in cls)}")


class Team(models.Model):
    """A group of users that owns experiments and models."""

    name = models.CharField(max_length=150, unique=True)
    slug = models.SlugField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    is_personal = models.BooleanField(default=False, help_text="Created automatically as a user's default team.")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one team."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.PositiveSmallIntegerField(choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="membership_unique_user_team")]
        ordering = ["team__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} as {self.get_role_display()}"
