"""Reads for accounts: teams, members, API tokens."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import ApiToken, Membership, Role, Team, User
from accounts.permissions import Action, authorize, restrict_to_visible
from mlplatform.errors import NotFound


def teams_visible_to(*, user: User) -> QuerySet[Team]:
    """Teams the user belongs to (every team for staff), ordered by name."""
    return restrict_to_visible(Team.objects.all(), user, team_field="id").order_by("name")


def team_get(*, user: User, team_id: int, action: Action = Action.READ) -> Team:
    """A team the user may act on; NotFound for non-members, Forbidden for too-low roles."""
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise NotFound("Team not found.")
    authorize(user, action, team, label="Team")
    return team


def team_members(*, team: Team) -> QuerySet[Membership]:
    """The team's memberships with their users, highest role first."""
    return Membership.objects.filter(team=team).select_related("user", "team").order_by("-role", "user__username")


def membership_get(*, team: Team, user_id: int) -> Membership:
    """One membership of a team (the caller is already authorized to read the team)."""
    # user__pk, not user_id: the primary key's lookup treats an id past the column's range as no match, where the
    # foreign key's would overflow the database driver (a 500 for /members/<huge>/).
    membership = Membership.objects.filter(team=team, user__pk=user_id).select_related("user", "team").first()
    if membership is None:
        raise NotFound("Member not found.")
    return membership


def owner_memberships(*, team_ids: set[int]) -> dict[int, set[int]]:
    """The owner memberships' ids of each of ``team_ids`` (teams without an owner are absent)."""
    owners: dict[int, set[int]] = {}
    rows = Membership.objects.filter(team_id__in=team_ids, role=Role.OWNER).values_list("team_id", "pk")
    for team_id, membership_id in rows:
        owners.setdefault(team_id, set()).add(membership_id)
    return owners


def user_memberships(*, user: User) -> QuerySet[Membership]:
    """The user's memberships with their teams, by team name."""
    return Membership.objects.filter(user=user).select_related("team").order_by("team__name")


def api_tokens_of(*, user: User) -> QuerySet[ApiToken]:
    """The user's own API tokens, newest first."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def api_token_get(*, user: User, token_id: int) -> ApiToken:
    """One of the user's own tokens; another user's token is NotFound."""
    token = ApiToken.objects.filter(pk=token_id, user=user).first()
    if token is None:
        raise NotFound("API token not found.")
    return token
