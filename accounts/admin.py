"""Admin for users, teams, memberships, API tokens and the audit log.

Team and membership changes made here follow the API's rules: a team keeps at least one owner, and
each team create/delete and membership add/role change/remove writes the same audit event
(``details["via"] == "admin"``) with the operator as actor. Users are deleted through
``services.users_delete`` (refused while they are a team's last owner) and API tokens are edited and
deleted through ``services.api_token_update`` / ``api_token_delete``, which audit the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from accounts import audit, selectors, services
from accounts.models import ApiToken, AuditEvent, Membership, Role, Team, User
from mlplatform.errors import Conflict, ServiceError

LAST_OWNER_MESSAGE = "A team must keep at least one owner; make someone else owner first ({teams})."


# ---- memberships: the API's owner rule and audit events --------------------------------------------


@dataclass(frozen=True)
class Stored:
    """A membership's team and role as stored before an admin form changes it."""

    team_id: int | None
    role: int | None


@dataclass(frozen=True)
class MembershipChange:
    """One membership as an admin form leaves it: where it was, where it ends up."""

    pk: int | None
    before: Stored | None  # None for a new membership
    team_after: int | None
    is_owner_after: bool


def teams_losing_last_owner(changes: list[MembershipChange]) -> list[int]:
    """Ids of the teams that have an owner now and would have none after ``changes``."""
    losing: dict[int, set[int]] = {}
    gaining: set[int] = set()
    for change in changes:
        before = change.before
        was_owner = before is not None and before.role == Role.OWNER and before.team_id is not None
        if was_owner and (before.team_id != change.team_after or not change.is_owner_after):
            losing.setdefault(before.team_id, set()).add(change.pk)
        if change.is_owner_after and change.team_after is not None:
            gaining.add(change.team_after)
    owners = selectors.owner_memberships(team_ids=set(losing))
    return sorted(
        team_id
        for team_id, lost in losing.items()
        if team_id in owners and not owners[team_id] - lost and team_id not in gaining
    )


def last_owner_error(team_ids: list[int]) -> str:
    """The message for teams that would lose their last owner."""
    names = ", ".join(Team.objects.filter(pk__in=team_ids).order_by("name").values_list("name", flat=True))
    return LAST_OWNER_MESSAGE.format(teams=names)


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value)


def stored_of(form: forms.ModelForm) -> Stored | None:
    """The stored team and role of the form's membership (None when it is new)."""
    if form.instance.pk is None:
        return None
    return Stored(team_id=_pk(form.initial.get("team", form.instance.team_id)), role=form.initial.get("role"))


def change_from_form(form: forms.ModelForm, *, deleting: bool = False) -> MembershipChange:
    """The MembershipChange that a bound, valid membership form makes."""
    return MembershipChange(
        pk=form.instance.pk,
        before=stored_of(form),
        team_after=_pk(form.cleaned_data.get("team")) or form.instance.team_id,
        is_owner_after=not deleting and form.cleaned_data.get("role") == Role.OWNER,
    )


class MembershipInlineFormSet(BaseInlineFormSet):
    """Memberships of a user or a team; refuses to leave a team without its owner."""

    def clean(self) -> None:
        """Check the owner rule over every row at once (a new owner may replace a removed one)."""
        super().clean()
        if any(self.errors):
            return
        changes = [
            change_from_form(form, deleting=self._should_delete_form(form))
            for form in self.forms
            if getattr(form, "cleaned_data", None)
        ]
        teams = teams_losing_last_owner(changes)
        if teams:
            raise ValidationError(last_owner_error(teams))


class MembershipForm(forms.ModelForm):
    """One membership (MembershipAdmin); refuses to demote or move a team's last owner."""

    class Meta:
        model = Membership
        fields = ["user", "team", "role"]

    def clean(self) -> dict[str, Any]:
        """Apply the owner rule."""
        cleaned = super().clean()
        if not self.errors:
            teams = teams_losing_last_owner([change_from_form(self)])
            if teams:
                raise ValidationError(last_owner_error(teams))
        return cleaned


def _details(membership: Membership, **extra: Any) -> dict[str, Any]:
    return {"username": membership.user.username, **extra, "via": "admin"}


def audit_membership_removed(request: HttpRequest, membership: Membership, *, team_id: int | None = None) -> None:
    """Record a membership.remove made in the admin (call it before the row is deleted)."""
    role = Role(membership.role).label
    audit.record_event(
        action=audit.MEMBERSHIP_REMOVE,
        request=request,
        target=membership,
        team=team_id or membership.team_id,
        details=_details(membership, role=role),
    )


def audit_membership_saved(request: HttpRequest, membership: Membership, before: Stored | None) -> None:
    """Record membership.add or membership.role_change for a membership saved in the admin."""
    role = Role(membership.role)
    if before is not None and before.team_id == membership.team_id:
        if before.role is not None and before.role != role:
            changed = {"from": Role(before.role).label, "to": role.label}
            audit.record_event(
                action=audit.MEMBERSHIP_ROLE_CHANGE,
                request=request,
                target=membership,
                details=_details(membership, **changed),
            )
        return
    if before is not None and before.team_id is not None:  # moved to another team: it left the first one
        old = Membership(pk=membership.pk, user=membership.user, team_id=before.team_id, role=before.role or role)
        audit_membership_removed(request, old, team_id=before.team_id)
    audit.record_event(
        action=audit.MEMBERSHIP_ADD, request=request, target=membership, details=_details(membership, role=role.label)
    )


def refuse_losing_last_owner(memberships: list[Membership]) -> None:
    """PermissionDenied when deleting ``memberships`` would leave a team without an owner."""
    changes = [
        MembershipChange(pk=m.pk, before=Stored(m.team_id, m.role), team_after=None, is_owner_after=False)
        for m in memberships
    ]
    teams = teams_losing_last_owner(changes)
    if teams:
        raise PermissionDenied(last_owner_error(teams))


class MembershipInline(admin.TabularInline):
    """Memberships shown inside a user or a team."""

    model = Membership
    formset = MembershipInlineFormSet
    extra = 0
    autocomplete_fields = ["user", "team"]


class AuditedMembershipsMixin:
    """Saves the membership inline with one audit event per added, changed or removed membership."""

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Audit removals before they happen, then additions and role changes after the save."""
        if formset.model is not Membership:
            super().save_formset(request, form, formset, change)
            return
        before = {f.instance.pk: stored_of(f) for f in formset.initial_forms}
        for deleted in formset.deleted_forms:
            if deleted.instance.pk is not None:
                stored = before[deleted.instance.pk]
                audit_membership_removed(
                    request, Membership.objects.get(pk=deleted.instance.pk), team_id=stored.team_id
                )
        super().save_formset(request, form, formset, change)
        for membership in formset.new_objects:
            audit_membership_saved(request, membership, None)
        for membership, _changed in formset.changed_objects:
            audit_membership_saved(request, membership, before.get(membership.pk))


def _refused_user_deletion(modeladmin: admin.ModelAdmin, request: HttpRequest, users: list[User]) -> bool:
    """Show the error and answer True when deleting ``users`` would leave a team without an owner."""
    try:
        services.ensure_users_deletable(users=users)
    except Conflict as exc:
        modeladmin.message_user(request, exc.message, messages.ERROR)
        return True
    return False


@admin.action(permissions=["delete"], description="Delete selected users")
def delete_selected_users(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[User]
) -> HttpResponse | None:
    """Django's "delete selected", refused up front (before the confirmation page) for a team's last owner."""
    if _refused_user_deletion(modeladmin, request, list(queryset)):
        return None  # back to the list, with the error
    return delete_selected(modeladmin, request, queryset)


@admin.register(User)
class UserAdmin(AuditedMembershipsMixin, BaseUserAdmin):
    """Users with their memberships; a team's last owner cannot be deleted (one user or several)."""

    inlines = [MembershipInline]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        """Replace "delete selected" with the version that keeps every team's owner."""
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            _func, name, description = actions["delete_selected"]
            actions[name] = (delete_selected_users, name, description)
        return actions

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        """Refuse, back on the user's page with an error naming the teams, when they are a last owner."""
        user = self.get_object(request, unquote(object_id))
        checked = user is not None and self.has_delete_permission(request, user)
        if checked and _refused_user_deletion(self, request, [user]):
            if self.has_view_or_change_permission(request, user):
                return HttpResponseRedirect(reverse("admin:accounts_user_change", args=[user.pk]))
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        return super().delete_view(request, object_id, extra_context)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        """Delete through the service (owner rule, audit events)."""
        self._delete(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        """Delete the selected users through the service, all or none."""
        self._delete(request, list(queryset))

    @staticmethod
    def _delete(request: HttpRequest, users: list[User]) -> None:
        try:
            services.users_delete(actor=request.user, users=users, request=request, via="admin")
        except ServiceError as exc:  # lost a race with a change made since the confirmation page
            raise PermissionDenied(exc.message) from exc


@admin.register(Team)
class TeamAdmin(AuditedMembershipsMixin, admin.ModelAdmin):
    """Teams with their members; creating and deleting a team is audited."""

    list_display = ["name", "slug", "is_personal", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["is_personal"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def save_model(self, request: HttpRequest, obj: Team, form: Any, change: bool) -> None:
        """Save, then record team.create or (when something changed) team.update."""
        super().save_model(request, obj, form, change)
        if not change:
            audit.record_event(action=audit.TEAM_CREATE, request=request, target=obj, details={"via": "admin"})
        elif form.changed_data:
            details = {"fields": sorted(form.changed_data), "via": "admin"}
            audit.record_event(action=audit.TEAM_UPDATE, request=request, target=obj, details=details)

    def delete_model(self, request: HttpRequest, obj: Team) -> None:
        """Record team.delete, then delete."""
        self._audit_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Team]) -> None:
        """Record team.delete for each selected team, then delete them."""
        for team in queryset:
            self._audit_delete(request, team)
        super().delete_queryset(request, queryset)

    @staticmethod
    def _audit_delete(request: HttpRequest, team: Team) -> None:
        details = {"name": team.name, "via": "admin"}
        audit.record_event(action=audit.TEAM_DELETE, request=request, target=team, team=team, details=details)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Memberships, searchable by user and team; the owner rule and audit events apply."""

    form = MembershipForm
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        """Save, then record membership.add or membership.role_change."""
        before = stored_of(form) if change else None
        super().save_model(request, obj, form, change)
        audit_membership_saved(request, obj, before)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        """Refuse to delete a team's last owner; record membership.remove, then delete."""
        refuse_losing_last_owner([obj])
        audit_membership_removed(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        """Refuse when a team would lose its last owner; else record membership.remove for each and delete."""
        memberships = list(queryset.select_related("user"))
        refuse_losing_last_owner(memberships)
        for membership in memberships:
            audit_membership_removed(request, membership)
        super().delete_queryset(request, queryset)


# ---- API tokens and the audit log ------------------------------------------------------------------


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


TOKEN_EDITABLE = ("name", "expires_at")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: the hash is never shown and tokens are created by their users, not here.

    Edits (name, expiry) and deletions go through the services, so each writes an audit event.
    """

    list_display = ["name", "user", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "prefix", "user__username"]
    fields = ["user", "name", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = ["user", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = [revoke_tokens]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Tokens are created through the API so the plaintext reaches only their owner."""
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        """Save the edited name or expiry through the service, which records ``token.update``."""
        changed = {field: form.cleaned_data[field] for field in form.changed_data if field in TOKEN_EDITABLE}
        if changed:
            try:
                services.api_token_update(actor=request.user, token=obj, request=request, via="admin", **changed)
            except ServiceError as exc:
                raise PermissionDenied(exc.message) from exc

    def delete_model(self, request: HttpRequest, obj: ApiToken) -> None:
        """Delete through the service, which records ``token.delete``."""
        self._delete(request, [obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        """Delete each selected token through the service (one ``token.delete`` each), all or none."""
        self._delete(request, list(queryset.select_related("user")))

    @staticmethod
    def _delete(request: HttpRequest, tokens: list[ApiToken]) -> None:
        try:
            with transaction.atomic():
                for token in tokens:
                    services.api_token_delete(actor=request.user, token=token, request=request, via="admin")
        except ServiceError as exc:
            raise PermissionDenied(exc.message) from exc


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
