"""Writes for accounts: teams and memberships. One transaction each."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from accounts.models import Membership, Role, Team, User
from mlplatform.errors import Conflict, InvalidInput


def _unique_slug(name: str) -> str:
    base = slugify(name)[:140] or "team"
    slug, suffix = base, 1
    while Team.objects.filter(slug=slug).exists():
        suffix += 1
        slug = f"{base}-{suffix}"
    return slug


@transaction.atomic
def team_create(*, name: str, creator: User, description: str = "", is_personal: bool = False) -> Team:
    """Create a team; its creator becomes the owner."""
    name = name.strip()
    if not name:
        raise InvalidInput("Team name must not be empty.", details={"name": ["This field may not be blank."]})
    if Team.objects.filter(name=name).exists():
        raise Conflict(f"A team named {name!r} already exists.")
    try:
        with transaction.atomic():
            team = Team.objects.create(
                name=name, slug=_unique_slug(name), description=description, is_personal=is_personal
            )
    except IntegrityError as exc:  # lost a race with another creator of the same name
        raise Conflict(f"A team named {name!r} already exists.") from exc
    Membership.objects.create(user=creator, team=team, role=Role.OWNER)
    if hasattr(creator, "_team_roles"):
        creator._team_roles[team.pk] = Role.OWNER
    return team


def personal_team_for(user: User) -> Team:
    """The user's personal default team, created on first use, so logging works with no set-up."""
    team = Team.objects.filter(is_personal=True, memberships__user=user, memberships__role=Role.OWNER).first()
    if team is not None:
        return team
    return team_create(name=f"{user.get_username()} (personal)", creator=user, is_personal=True)
