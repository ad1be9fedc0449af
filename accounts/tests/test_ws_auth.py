"""WebSocket authentication: session cookie, ?token=, Sec-WebSocket-Protocol; close codes."""

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.urls import path
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import Role, Team
from accounts.permissions import Action
from accounts.services import api_token_create
from accounts.tests.factories import MembershipFactory, TeamFactory, UserFactory
from accounts.ws_auth import (
    WS_FORBIDDEN,
    WS_NOT_FOUND,
    WS_UNAUTHENTICATED,
    WebSocketAuthMiddleware,
    ws_authorize,
    ws_subprotocol,
)
from mlplatform.asgi import application as real_application  # noqa: F401  (the real stack imports)

pytestmark = pytest.mark.django_db(transaction=True)


class TeamConsumer(AsyncJsonWebsocketConsumer):
    """Tiny consumer: `?action=` on the team in the URL, as the streaming consumers will do."""

    async def connect(self):
        team = await Team.objects.filter(pk=self.scope["url_route"]["kwargs"]["team_id"]).afirst()
        action = Action.WRITE if b"write" in self.scope["query_string"] else Action.READ
        code = await ws_authorize(self.scope, action, team)
        if code is not None:
            await self.close(code=code)
            return
        await self.accept(subprotocol=ws_subprotocol(self.scope))
        await self.send_json({"user": self.scope["user"].username, "via": self.scope["auth_method"]})


app = WebSocketAuthMiddleware(URLRouter([path("ws/teams/<int:team_id>/", TeamConsumer.as_asgi())]))


async def connect(path, headers=None, subprotocols=None):
    communicator = WebsocketCommunicator(app, path, headers=headers or [], subprotocols=subprotocols)
    connected, detail = await communicator.connect()
    return communicator, connected, detail


@pytest.fixture
def world(db):
    team = TeamFactory(name="ws-team")
    viewer = MembershipFactory(team=team, role=Role.VIEWER, user__username="wsviewer").user
    outsider = MembershipFactory(role=Role.OWNER, user__username="wsoutsider").user
    return team, viewer, outsider


def session_cookie(user) -> bytes:
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}".encode()


async def test_anonymous_is_closed_with_4401(world):
    team, _, _ = world
    _, connected, code = await connect(f"/ws/teams/{team.pk}/")
    assert (connected, code) == (False, WS_UNAUTHENTICATED)


async def test_session_cookie_authenticates(world):
    team, viewer, _ = world
    cookie = await database_sync(session_cookie, viewer)
    communicator, connected, _ = await connect(f"/ws/teams/{team.pk}/", headers=[(b"cookie", cookie)])
    assert connected
    assert await communicator.receive_json_from() == {"user": "wsviewer", "via": "session"}
    await communicator.disconnect()


async def test_api_token_in_query_authenticates(world):
    team, viewer, _ = world
    _, plaintext = await database_sync(api_token_create, user=viewer, name="ws")
    communicator, connected, _ = await connect(f"/ws/teams/{team.pk}/?token={plaintext}")
    assert connected
    assert await communicator.receive_json_from() == {"user": "wsviewer", "via": "token"}
    await communicator.disconnect()


async def test_jwt_in_subprotocol_authenticates_and_is_echoed(world):
    team, viewer, _ = world
    access = str(AccessToken.for_user(viewer))
    communicator, connected, subprotocol = await connect(f"/ws/teams/{team.pk}/", subprotocols=["mlplatform", access])
    assert connected
    assert subprotocol == "mlplatform"
    assert (await communicator.receive_json_from())["user"] == "wsviewer"
    await communicator.disconnect()


async def test_api_token_in_subprotocol_authenticates(world):
    team, viewer, _ = world
    _, plaintext = await database_sync(api_token_create, user=viewer, name="ws")
    communicator, connected, _ = await connect(f"/ws/teams/{team.pk}/", subprotocols=["mlplatform", plaintext])
    assert connected
    await communicator.disconnect()


@pytest.mark.parametrize("token", ["mlp_abcdefgh_forged", "not.a.jwt", "garbage"])
async def test_invalid_token_is_4401_even_with_a_session(world, token):
    team, viewer, _ = world
    cookie = await database_sync(session_cookie, viewer)
    _, connected, code = await connect(f"/ws/teams/{team.pk}/?token={token}", headers=[(b"cookie", cookie)])
    assert (connected, code) == (False, WS_UNAUTHENTICATED)


async def test_revoked_token_is_4401(world):
    team, viewer, _ = world
    token, plaintext = await database_sync(api_token_create, user=viewer, name="ws")
    await database_sync(lambda: type(token).objects.filter(pk=token.pk).update(revoked_at="2020-01-01T00:00:00Z"))
    _, connected, code = await connect(f"/ws/teams/{team.pk}/?token={plaintext}")
    assert (connected, code) == (False, WS_UNAUTHENTICATED)


async def test_outsider_is_closed_with_4404(world):
    team, _, outsider = world
    access = str(AccessToken.for_user(outsider))
    _, connected, code = await connect(f"/ws/teams/{team.pk}/?token={access}")
    assert (connected, code) == (False, WS_NOT_FOUND)


async def test_too_low_role_is_closed_with_4403(world):
    team, viewer, _ = world
    access = str(AccessToken.for_user(viewer))
    _, connected, code = await connect(f"/ws/teams/{team.pk}/?token={access}&action=write")
    assert (connected, code) == (False, WS_FORBIDDEN)


async def test_ws_authorize_sees_role_changes(world):
    team, viewer, _ = world
    scope = {"user": viewer}
    assert await ws_authorize(scope, Action.WRITE, team) == WS_FORBIDDEN
    await database_sync(lambda: viewer.memberships.update(role=Role.EDITOR))
    assert await ws_authorize(scope, Action.WRITE, team) is None


async def test_ws_authorize_without_user_is_4401():
    assert await ws_authorize({}, Action.READ, object()) == WS_UNAUTHENTICATED


async def test_inactive_users_token_is_4401(world):
    team, _, _ = world
    user = await database_sync(UserFactory, is_active=False)
    access = str(AccessToken.for_user(user))
    _, connected, code = await connect(f"/ws/teams/{team.pk}/?token={access}")
    assert (connected, code) == (False, WS_UNAUTHENTICATED)


async def database_sync(func, *args, **kwargs):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(func)(*args, **kwargs)
