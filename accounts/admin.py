"""Admin for users, teams, memberships, API tokens and the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts import audit
from accounts.models import ApiToken, AuditEvent, Membership, Team, User


class MembershipInline(admin.TabularInline):
    """Memberships shown inside a user or a team."""

    model = Membership
    extra = 0
    autocomplete_fields = ["user", "team"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Users with their memberships."""

    inlines = [MembershipInline]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    """Teams with their members."""

    list_display = ["name", "slug", "is_personal", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["is_personal"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Memberships, searchable by user and team."""

    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]


@admin.action(description="Revoke selected API tokens")
def revoke_tokens(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
    """Revoke every selected token that is still active, auditing each."""
    now = timezone.now()
    revoked = 0
    for token in queryset.filter(revoked_at__isnull=True):
        token.revoked_at = now
        token.save(update_fields=["revoked_at"])
        audit.record_event(
            action=audit.TOKEN_REVOKE,
            request=request,
            target=token,
            details={"name": token.name, "prefix": token.prefix, "via": "admin", "owner": token.user.username},
        )
        revoked += 1
    modeladmin.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: the hash is never shown and tokens are created by their users, not here."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = [revoke_tokens]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Tokens are created through the API so the plaintext reaches only their owner."""
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only, filterable by actor, action, team and date."""

    list_display = ["created_at", "actor_username", "action", "object_type", "object_id", "team", "ip"]
    list_filter = ["action", ("team", admin.RelatedOnlyFieldListFilter), ("actor", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["actor_username", "action", "object_id", "object_repr", "ip"]
    date_hierarchy = "created_at"
    list_select_related = ["team"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        """Every field is read-only."""
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Events are written by the application only."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Events cannot be edited (viewing stays allowed)."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Events cannot be deleted from the admin."""
        return False
