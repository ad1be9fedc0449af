"""Users, teams, memberships, API tokens and the audit log: every experiment and model belongs to a team."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


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


class ApiToken(models.Model):
    """A personal API token. Only its visible prefix and SHA-256 hash are stored, never the secret."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=8, unique=True, help_text="Visible part of the token, to recognise it.")
    token_hash = models.CharField(max_length=64, help_text="SHA-256 of the whole token (hex).")
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} (mlp_{self.prefix}_…)"

    @property
    def is_revoked(self) -> bool:
        """True once revoked."""
        return self.revoked_at is not None

    def is_expired(self, now: Any = None) -> bool:
        """True when the token has an expiry that has passed."""
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def is_usable(self, now: Any = None) -> bool:
        """True when the token may authenticate: not revoked, not expired."""
        return not self.is_revoked and not self.is_expired(now)


class AuditEvent(models.Model):
    """A security-relevant action: who did what to which object, when and from where."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    # Kept when the user is deleted, and set for failed logins with an unknown username.
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["team", "created_at"], name="audit_team_time")]

    def __str__(self) -> str:
        who = self.actor_username or "anonymous"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.object_type}#{self.object_id}"
