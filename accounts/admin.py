"""Admin for users, teams and memberships."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import Membership, Team, User


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
