"""Writes for accounts: teams, memberships, API tokens, passwords. One transaction each.

Services check permissions themselves (through ``accounts.permissions``) and
record audit events in the same transaction as the change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.text import slugify

from accounts import audit
from accounts.models import ApiToken, Membership, Role, Team, User
from accounts.permissions import Action, authorize, forget_roles, role_in
from accounts.tokens import generate_token, hash_token
from mlplatform.errors import Conflict, Forbidden, InvalidInput, NotFound

TOKEN_NAME_MAX = 100
TEAM_NAME_MAX = 150


def _unique_slug(name: str) -> str:
    base = slugify(name)[:140] or "team"
    slug, suffix = base, 1
    while Team.objects.filter(slug=slug).exists():
        suffix += 1
        slug = f"{base}-{suffix}"
    return slug


def _clean_team_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Team name must not be empty.", details={"name": ["This field may not be blank."]})
    if len(name) > TEAM_NAME_MAX:
        raise InvalidInput(
            f"Team name is limited to {TEAM_NAME_MAX} characters.",
            details={"name": [f"Ensure this field has no more than {TEAM_NAME_MAX} characters."]},
        )
    return name


@transaction.atomic
def team_create(
    *, name: str, creator: User, description: str = "", is_personal: bool = False, request: Any = None
) -> Team:
    """Create a team; its creator becomes the owner."""
    name = _clean_team_name(name)
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
    audit.record_event(action=audit.TEAM_CREATE, actor=creator, request=request, target=team, team=team)
    return team


PERSONAL_TEAM_ATTEMPTS = 20


def _personal_team(user: User) -> Team | None:
    return Team.objects.filter(is_personal=True, memberships__user=user, memberships__role=Role.OWNER).first()


def personal_team_for(user: User) -> Team:
    """The user's personal default team, created on first use, so logging works with no set-up.

    It is named ``<username> (personal)``; when another team already has that name (team names are
    unique and anyone may create teams), ``<username> (personal) 2``, 3, ... A concurrent first request
    of the same user that created it first wins, and this one returns that team.
    """
    team = _personal_team(user)
    if team is not None:
        return team
    base = f"{user.get_username()[: TEAM_NAME_MAX - 15]} (personal)"
    for attempt in range(1, PERSONAL_TEAM_ATTEMPTS + 1):
        try:
            with transaction.atomic():  # the team and its owner membership appear together
                return team_create(name=base if attempt == 1 else f"{base} {attempt}", creator=user, is_personal=True)
        except Conflict:
            if (team := _personal_team(user)) is not None:
                return team
    raise Conflict(f"Could not find a free name for {user.get_username()!r}'s personal team; create a team instead.")


@transaction.atomic
def team_update(
    *, actor: User, team: Team, name: str | None = None, description: str | None = None, request: Any = None
) -> Team:
    """Rename a team or change its description (admin or owner)."""
    authorize(actor, Action.MANAGE, team, label="Team")
    changes: dict[str, Any] = {}
    if name is not None:
        name = _clean_team_name(name)
        if name != team.name:
            if Team.objects.filter(name=name).exclude(pk=team.pk).exists():
                raise Conflict(f"A team named {name!r} already exists.")
            changes["name"] = [team.name, name]
            team.name = name
    if description is not None and description != team.description:
        changes["description"] = True
        team.description = description
    if changes:
        try:
            with transaction.atomic():
                team.save(update_fields=["name", "description"])
        except IntegrityError as exc:
            raise Conflict(f"A team named {name!r} already exists.") from exc
        audit.record_event(action=audit.TEAM_UPDATE, actor=actor, request=request, target=team, details=changes)
    return team


@transaction.atomic
def team_delete(*, actor: User, team: Team, request: Any = None) -> None:
    """Delete a team (owner only); refused while it still owns experiments or models."""
    authorize(actor, Action.OWN, team, label="Team")
    audit.record_event(
        action=audit.TEAM_DELETE, actor=actor, request=request, target=team, team=team, details={"name": team.name}
    )
    try:
        with transaction.atomic():
            team.delete()
    except ProtectedError as exc:
        raise Conflict("The team still owns experiments or models; delete or move them first.") from exc
    forget_roles(actor)


def _require_can_grant(actor: User, team: Team, role: Role) -> None:
    """Only owners (or superusers) may grant, change or take away the owner role."""
    if role >= Role.OWNER and not actor.is_superuser and role_in(actor, team.pk) != Role.OWNER:
        raise Forbidden("Only an owner can grant or change the owner role.")


def _owner_count(team: Team) -> int:
    # Lock the owner rows so two concurrent demotions cannot both see "another owner exists".
    return len(list(Membership.objects.select_for_update().filter(team=team, role=Role.OWNER).values_list("pk")))


def _parse_role(role: Role | str | int) -> Role:
    if isinstance(role, Role):
        return role
    try:
        return Role(role) if isinstance(role, int) else Role.from_name(str(role))
    except ValueError as exc:
        choices = ", ".join(r.label for r in Role)
        raise InvalidInput(f"Unknown role {role!r}; use one of {choices}.", details={"role": [str(exc)]}) from exc


@transaction.atomic
def membership_add(
    *, actor: User, team: Team, username: str, role: Role | str = Role.VIEWER, request: Any = None
) -> Membership:
    """Add an existing user to a team with a role (admin or owner; owner role only by an owner)."""
    authorize(actor, Action.MANAGE, team, label="Team")
    role = _parse_role(role)
    _require_can_grant(actor, team, role)
    user = User.objects.filter(username=username).first()
    if user is None:
        raise InvalidInput(f"No user named {username!r}.", details={"username": [f"No user named {username!r}."]})
    if Membership.objects.filter(team=team, user=user).exists():
        raise Conflict(f"{username!r} is already a member of this team.")
    try:
        with transaction.atomic():
            membership = Membership.objects.create(team=team, user=user, role=role)
    except IntegrityError as exc:
        raise Conflict(f"{username!r} is already a member of this team.") from exc
    audit.record_event(
        action=audit.MEMBERSHIP_ADD,
        actor=actor,
        request=request,
        target=membership,
        team=team,
        details={"username": user.username, "role": role.label},
    )
    return membership


@transaction.atomic
def membership_change_role(*, actor: User, membership: Membership, role: Role | str, request: Any = None) -> Membership:
    """Change a member's role; a lower role cannot touch an owner, and a team keeps one owner."""
    team = membership.team
    authorize(actor, Action.MANAGE, team, label="Team")
    new_role = _parse_role(role)
    old_role = Role(membership.role)
    if new_role == old_role:
        return membership
    _require_can_grant(actor, team, max(new_role, old_role))
    if old_role == Role.OWNER and _owner_count(team) <= 1:
        raise Conflict("A team must keep at least one owner; make someone else owner first.")
    membership.role = new_role
    membership.save(update_fields=["role"])
    forget_roles(membership.user)
    if membership.user_id == actor.pk:
        forget_roles(actor)
    audit.record_event(
        action=audit.MEMBERSHIP_ROLE_CHANGE,
        actor=actor,
        request=request,
        target=membership,
        team=team,
        details={"username": membership.user.username, "from": old_role.label, "to": new_role.label},
    )
    return membership


@transaction.atomic
def membership_remove(*, actor: User, membership: Membership, request: Any = None) -> None:
    """Remove a member (admin or owner; any member may leave); a team keeps at least one owner."""
    team = membership.team
    leaving = membership.user_id == actor.pk
    if not leaving:
        authorize(actor, Action.MANAGE, team, label="Team")
        _require_can_grant(actor, team, Role(membership.role))
    if membership.role == Role.OWNER and _owner_count(team) <= 1:
        raise Conflict("A team must keep at least one owner; make someone else owner first.")
    audit.record_event(
        action=audit.MEMBERSHIP_REMOVE,
        actor=actor,
        request=request,
        target=membership,
        team=team,
        details={"username": membership.user.username, "role": Role(membership.role).label},
    )
    membership.delete()
    forget_roles(actor)


def _clean_token_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Token name must not be empty.", details={"name": ["This field may not be blank."]})
    if len(name) > TOKEN_NAME_MAX:
        raise InvalidInput(
            f"Token name is limited to {TOKEN_NAME_MAX} characters.",
            details={"name": [f"Ensure this field has no more than {TOKEN_NAME_MAX} characters."]},
        )
    return name


@transaction.atomic
def api_token_create(
    *, user: User, name: str, expires_at: datetime | None = None, request: Any = None
) -> tuple[ApiToken, str]:
    """Create a personal API token; returns the row and the plaintext, which is never stored."""
    name = _clean_token_name(name)
    if expires_at is not None and expires_at <= timezone.now():
        raise InvalidInput("Expiry must be in the future.", details={"expires_at": ["Must be in the future."]})
    for _attempt in range(5):
        generated = generate_token()
        try:
            with transaction.atomic():
                token = ApiToken.objects.create(
                    user=user,
                    name=name,
                    prefix=generated.prefix,
                    token_hash=hash_token(generated.plaintext),
                    expires_at=expires_at,
                )
            break
        except IntegrityError:  # prefix collision (1 in ~10^12); draw another
            continue
    else:  # pragma: no cover - five collisions in a row do not happen
        raise Conflict("Could not allocate a token prefix; try again.")
    audit.record_event(
        action=audit.TOKEN_CREATE,
        actor=user,
        request=request,
        target=token,
        details={"name": name, "prefix": token.prefix},
    )
    return token, generated.plaintext


@transaction.atomic
def api_token_revoke(*, user: User, token: ApiToken, request: Any = None) -> ApiToken:
    """Revoke one of the user's tokens (idempotent; staff may revoke anyone's)."""
    if token.user_id != user.pk and not user.is_superuser:
        raise NotFound("API token not found.")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit.record_event(
            action=audit.TOKEN_REVOKE,
            actor=user,
            request=request,
            target=token,
            details={"name": token.name, "prefix": token.prefix},
        )
    return token


class _Unchanged:
    """Marker for a keyword argument that was not given (``None`` is a value: no expiry)."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()


def _require_token_permission(actor: User, token: ApiToken, permission: str) -> None:
    """Owners act on their own tokens; others need the model permission (operators in the admin)."""
    if token.user_id != actor.pk and not actor.has_perm(f"accounts.{permission}_apitoken"):
        raise NotFound("API token not found.")


def _token_details(token: ApiToken, via: str, **extra: Any) -> dict[str, Any]:
    """Audit details naming a token by name and prefix only (never its hash or secret)."""
    details = {"name": token.name, "prefix": token.prefix, "owner": token.user.get_username(), **extra}
    if via:
        details["via"] = via
    return details


def _audit_instant(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


@transaction.atomic
def api_token_update(
    *,
    actor: User,
    token: ApiToken,
    name: str = UNCHANGED,
    expires_at: datetime | None = UNCHANGED,
    request: Any = None,
    via: str = "",
) -> ApiToken:
    """Rename a token or change its expiry (``None`` removes it), recording ``token.update``.

    Compared with the stored row, so a caller whose ``token`` already carries the new values (an admin
    form) still audits the real change. The details list each changed field as ``[old, new]``. An
    expiry in the past is allowed: it is how an operator ends a token now. The owner may update their
    own tokens; anyone else needs the ``accounts.change_apitoken`` permission.
    """
    _require_token_permission(actor, token, "change")
    stored = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    changes: dict[str, list[Any]] = {}
    if name is not UNCHANGED and (name := _clean_token_name(name)) != stored.name:
        changes["name"] = [stored.name, name]
        stored.name = name
    if expires_at is not UNCHANGED and expires_at != stored.expires_at:
        changes["expires_at"] = [_audit_instant(stored.expires_at), _audit_instant(expires_at)]
        stored.expires_at = expires_at
    if changes:
        stored.save(update_fields=sorted(changes))
        audit.record_event(
            action=audit.TOKEN_UPDATE,
            actor=actor,
            request=request,
            target=stored,
            details=_token_details(stored, via, changes=changes),
        )
    token.name, token.expires_at = stored.name, stored.expires_at
    return stored


@transaction.atomic
def api_token_delete(*, actor: User, token: ApiToken, request: Any = None, via: str = "") -> None:
    """Delete a token for good, recording ``token.delete`` (name, prefix, owner, whether it still worked).

    The owner may delete their own tokens; anyone else needs the ``accounts.delete_apitoken``
    permission. The cached token row is dropped by the ``post_delete`` signal, as for a revocation.
    """
    _require_token_permission(actor, token, "delete")
    audit.record_event(
        action=audit.TOKEN_DELETE,
        actor=actor,
        request=request,
        target=token,
        details=_token_details(token, via, was_active=token.is_usable()),
    )
    token.delete()


@transaction.atomic
def password_change(*, user: User, old_password: str, new_password: str, request: Any = None) -> User:
    """Change the user's password after checking the old one and the password validators."""
    if not user.check_password(old_password):
        raise InvalidInput("The current password is wrong.", details={"old_password": ["Wrong password."]})
    try:
        password_validation.validate_password(new_password, user)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], details={"new_password": list(exc.messages)}) from exc
    user.set_password(new_password)
    user.save(update_fields=["password"])
    audit.record_event(action=audit.PASSWORD_CHANGE, actor=user, request=request, target=user)
    return user


@transaction.atomic
def user_update(*, user: User, request: Any = None, **fields: str) -> User:
    """Update the user's own profile fields (first_name, last_name, email)."""
    allowed = {"first_name", "last_name", "email"}
    unknown = set(fields) - allowed
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))}.")
    for key, value in fields.items():
        setattr(user, key, value)
    try:
        user.full_clean(exclude=["password", "username"])
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], details=exc.message_dict) from exc
    if fields:
        user.save(update_fields=sorted(fields))
    return user


@transaction.atomic
def user_signup(*, username: str, password: str, email: str = "", request: Any = None) -> User:
    """Self-registration (only reachable when ALLOW_SIGNUP is on)."""
    user = User(username=username, email=email)
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        if "username" in exc.message_dict and User.objects.filter(username=username).exists():
            raise Conflict(f"The username {username!r} is taken.") from exc
        raise InvalidInput(exc.messages[0], details=exc.message_dict) from exc
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput(exc.messages[0], details={"password": list(exc.messages)}) from exc
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise Conflict(f"The username {username!r} is taken.") from exc
    audit.record_event(action=audit.SIGNUP, actor=user, request=request, target=user)
    return user


def _teams_losing_every_owner(user_ids: set[int], *, lock: bool) -> list[Team]:
    """Teams owned by some of ``user_ids`` and by nobody else, by name (``lock``: lock their owner rows)."""
    owned = Membership.objects.filter(user_id__in=user_ids, role=Role.OWNER).values("team_id")
    owners = Membership.objects.filter(team_id__in=owned, role=Role.OWNER)
    if lock:  # two concurrent deletions of a team's two owners cannot both see "another owner exists"
        owners = owners.select_for_update()
    remaining: dict[int, bool] = {}
    for team_id, user_id in owners.values_list("team_id", "user_id"):
        remaining[team_id] = remaining.get(team_id, False) or user_id not in user_ids
    return list(Team.objects.filter(pk__in=[t for t, kept in remaining.items() if not kept]).order_by("name"))


def _check_users_deletable(users: list[User], *, lock: bool) -> None:
    ids = {user.pk for user in users}
    teams = _teams_losing_every_owner(ids, lock=lock)
    if not teams:
        return
    owners = Membership.objects.filter(team__in=teams, role=Role.OWNER, user_id__in=ids)
    names = sorted(set(owners.values_list("user__username", flat=True)))
    team_names = [team.name for team in teams]
    who = f"{names[0]} is the last owner" if len(names) == 1 else f"{', '.join(names)} are the last owners"
    which = f"team {team_names[0]}" if len(teams) == 1 else f"teams {', '.join(team_names)}"
    raise Conflict(
        f"Cannot delete {', '.join(names)}: {who} of {which}, and a team must keep at least one owner. "
        "Make someone else owner first, or delete the team.",
        details={"teams": team_names, "users": names},
    )


def ensure_users_deletable(*, users: list[User]) -> None:
    """Conflict, naming the teams, when deleting ``users`` together would leave a team with no owner.

    A check to run before asking for confirmation; ``users_delete`` checks again under lock.
    """
    _check_users_deletable(users, lock=False)


@transaction.atomic
def users_delete(*, actor: User, users: list[User], request: Any = None, via: str = "") -> int:
    """Delete users (the one way to delete them), refused when a team would be left without an owner.

    Needs the ``accounts.delete_user`` permission. Each user's memberships are recorded as
    ``membership.remove`` in their teams' logs, then the user as ``user.delete``; all in one
    transaction, so nothing is deleted when any of the users may not be. Returns how many were deleted.
    """
    if not actor.has_perm("accounts.delete_user"):
        raise Forbidden("You may not delete users.")
    _check_users_deletable(users, lock=True)
    extra = {"via": via} if via else {}
    for user in sorted(users, key=lambda u: u.pk == actor.pk):  # an operator deleting themselves goes last
        for membership in Membership.objects.filter(user=user).select_related("team"):
            audit.record_event(
                action=audit.MEMBERSHIP_REMOVE,
                actor=actor,
                request=request,
                target=membership,
                team=membership.team_id,
                details={"username": user.get_username(), "role": Role(membership.role).label, **extra},
            )
        audit.record_event(
            action=audit.USER_DELETE,
            actor=actor,
            request=request,
            target=user,
            details={"username": user.get_username(), **extra},
        )
        user.delete()
    return len(users)
