"""Authorization matrix declarations for accounts' routes (and the public schema/docs and the API's catch-alls)."""

from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import Role
from accounts.services import api_token_create
from accounts.tests.factories import DEFAULT_PASSWORD, MembershipFactory, UserFactory
from tests.authz import Route, World, statuses

EVERYONE_OK = statuses(200, 200, 200, 200, 200, 200, 200)
SIGNED_IN_OK = statuses(401, 200, 200, 200, 200, 200, 200)
OWNER_ONLY_OBJECT = statuses(401, 404, 404, 404, 404, 200, 404)
TEAM_READ = statuses(401, 404, 200, 200, 200, 200, 200)
TEAM_MANAGE = statuses(401, 404, 403, 403, 200, 200, 403)


def owners_token(world: World) -> dict:
    token, _ = api_token_create(user=world.users["owner"], name="matrix")
    return {"token_id": token.pk}


def team(world: World) -> dict:
    return {"team_id": world.team.pk}


def member(role: Role):
    def build(world: World) -> dict:
        return {"team_id": world.team.pk, "user_id": MembershipFactory(team=world.team, role=role).user_id}

    return build


def owners_refresh(world: World) -> dict:
    return {"refresh": str(RefreshToken.for_user(world.users["owner"]))}


ROUTES = [
    Route("GET", "schema", EVERYONE_OK),
    Route("GET", "docs", EVERYONE_OK),
    Route("GET", "me", SIGNED_IN_OK),
    Route("PATCH", "me", SIGNED_IN_OK, body=lambda w: {"first_name": "Ada"}),
    Route(
        "POST",
        "me-password",
        statuses(401, 204, 204, 204, 204, 204, 204),
        body=lambda w: {"old_password": DEFAULT_PASSWORD, "new_password": "a-much-longer-passphrase-42"},
    ),
    Route("GET", "token-list", SIGNED_IN_OK),
    Route("POST", "token-list", statuses(401, 201, 201, 201, 201, 201, 201), body=lambda w: {"name": "ci"}),
    # A token belongs to its user only: everyone else gets 404, whatever their role or staff status.
    Route("GET", "token-detail", OWNER_ONLY_OBJECT, kwargs=owners_token),
    Route("DELETE", "token-detail", statuses(401, 404, 404, 404, 404, 204, 404), kwargs=owners_token),
    Route("POST", "token-revoke", OWNER_ONLY_OBJECT, kwargs=owners_token),
    Route("GET", "team-list", SIGNED_IN_OK),
    Route("POST", "team-list", statuses(401, 201, 201, 201, 201, 201, 201), body=lambda w: {"name": "brand new"}),
    Route("GET", "team-detail", TEAM_READ, kwargs=team),
    # Another team's object: only its member (the outsider persona owns it) and staff can see it.
    Route(
        "GET", "team-detail", statuses(401, 200, 404, 404, 404, 404, 200), kwargs=lambda w: {"team_id": w.other_team.pk}
    ),
    Route("PATCH", "team-detail", TEAM_MANAGE, kwargs=team, body=lambda w: {"description": "updated"}),
    Route("DELETE", "team-detail", statuses(401, 404, 403, 403, 403, 204, 403), kwargs=team),
    Route("GET", "team-member-list", TEAM_READ, kwargs=team),
    Route(
        "POST",
        "team-member-list",
        statuses(401, 404, 403, 403, 201, 201, 403),
        kwargs=team,
        body=lambda w: {"username": UserFactory().username, "role": "editor"},
    ),
    Route("GET", "team-member-detail", TEAM_READ, kwargs=member(Role.VIEWER)),
    Route("PATCH", "team-member-detail", TEAM_MANAGE, kwargs=member(Role.VIEWER), body=lambda w: {"role": "editor"}),
    # An owner cannot be demoted or removed by a lower role.
    Route(
        "PATCH",
        "team-member-detail",
        statuses(401, 404, 403, 403, 403, 200, 403),
        kwargs=member(Role.OWNER),
        body=lambda w: {"role": "admin"},
    ),
    Route("DELETE", "team-member-detail", statuses(401, 404, 403, 403, 204, 204, 403), kwargs=member(Role.VIEWER)),
    Route("DELETE", "team-member-detail", statuses(401, 404, 403, 403, 403, 204, 403), kwargs=member(Role.OWNER)),
    Route(
        "POST",
        "auth-token",
        EVERYONE_OK,
        body=lambda w: {"username": w.users["owner"].username, "password": DEFAULT_PASSWORD},
    ),
    Route("POST", "auth-token-refresh", EVERYONE_OK, body=owners_refresh),
    Route("POST", "auth-logout", statuses(204, 204, 204, 204, 204, 204, 204), body=owners_refresh),
    # Self-registration is off unless ALLOW_SIGNUP is set.
    Route(
        "POST",
        "auth-signup",
        statuses(404, 404, 404, 404, 404, 404, 404),
        body=lambda w: {"username": "newcomer", "password": "a-much-longer-passphrase-42"},
    ),
    # The catch-alls (unnamed patterns, declared by route): an unknown URL is 404 for everyone, signed in or not.
    Route("GET", "api/", statuses(404, 404, 404, 404, 404, 404, 404), path=lambda w: "/api/v1/no-such-endpoint/"),
    Route("POST", "api/", statuses(404, 404, 404, 404, 404, 404, 404), path=lambda w: "/api/v1/no-such-endpoint/"),
    Route(
        "GET",
        r"api/\d+\.\d+/mlflow",
        statuses(404, 404, 404, 404, 404, 404, 404),
        path=lambda w: "/api/9.9/mlflow/experiments/get",
    ),
]
