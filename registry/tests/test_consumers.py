import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.services import api_token_create
from mlplatform.asgi import application
from registry import services
from registry.tests.factories import DeploymentFactory, ModelVersionFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest.fixture
def deployment(model):
    return DeploymentFactory(version=ModelVersionFactory(model=model))


async def connect(path, token=None):
    query = f"{'&' if '?' in path else '?'}token={token}" if token else ""
    communicator = WebsocketCommunicator(application, path + query, headers=[(b"origin", b"http://127.0.0.1")])
    connected, code = await communicator.connect()
    return communicator, connected, code


@database_sync_to_async
def token_for(user):
    return api_token_create(user=user, name="ws")[1]


async def test_streams_metrics_status_and_alerts(viewer, editor, team_admin, deployment):
    communicator, connected, _ = await connect(f"/ws/deployments/{deployment.pk}/", await token_for(viewer))
    assert connected
    from registry.tests.factories import AlertRuleFactory

    await database_sync_to_async(AlertRuleFactory)(deployment=deployment, metric="latency_ms", threshold=100)
    await database_sync_to_async(services.monitoring_ingest)(
        user=editor,
        deployment=deployment,
        metrics=[
            {"key": "latency_ms", "value": 500, "timestamp": 1},
            {"key": "x", "value": float("nan"), "timestamp": 1},
        ],
    )
    metrics = await communicator.receive_json_from(timeout=5)
    assert (metrics["kind"], metrics["seq"]) == ("metrics", 1)
    assert metrics["metrics"] == {"latency_ms": [[1, 500.0]], "x": [[1, "NaN"]]}
    alert = await communicator.receive_json_from(timeout=5)
    assert (alert["kind"], alert["seq"], alert["event"]["kind"]) == ("alert", 2, "alert_raised")
    await database_sync_to_async(services.deployment_set_status)(
        user=team_admin, deployment=deployment, status="retired"
    )
    status = await communicator.receive_json_from(timeout=5)
    assert (status["kind"], status["seq"], status["event"]["to_status"]) == ("status", 3, "retired")
    await communicator.disconnect()


async def test_since_replays_what_was_missed(viewer, editor, deployment):
    for value in (1, 2):
        await database_sync_to_async(services.monitoring_ingest)(
            user=editor, deployment=deployment, metrics=[{"key": "latency_ms", "value": value, "timestamp": value}]
        )
    communicator, connected, _ = await connect(f"/ws/deployments/{deployment.pk}/?since=1", await token_for(viewer))
    assert connected
    replay = await communicator.receive_json_from(timeout=5)
    assert (replay["seq"], replay["metrics"]) == (2, {"latency_ms": [[2, 2.0]]})
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()


async def test_since_replays_status_events(viewer, team_admin, model, staging):
    version = await database_sync_to_async(ModelVersionFactory)(model=model)
    deployment = await database_sync_to_async(services.deploy)(user=team_admin, version=version, environment=staging)
    communicator, connected, _ = await connect(f"/ws/deployments/{deployment.pk}/?since=0", await token_for(viewer))
    assert connected
    replay = await communicator.receive_json_from(timeout=5)
    assert (replay["seq"], replay["kind"], replay["event"]["kind"]) == (1, "status", "created")
    await communicator.disconnect()


async def test_anonymous_is_refused(deployment):
    _, connected, code = await connect(f"/ws/deployments/{deployment.pk}/")
    assert not connected
    assert code == 4401


async def test_outsider_gets_not_found(outsider, deployment):
    _, connected, code = await connect(f"/ws/deployments/{deployment.pk}/", await token_for(outsider))
    assert (connected, code) == (False, 4404)


async def test_unknown_deployment(viewer):
    _, connected, code = await connect("/ws/deployments/999999/", await token_for(viewer))
    assert (connected, code) == (False, 4404)


async def test_subprotocol_auth(viewer, deployment):
    token = await token_for(viewer)
    communicator = WebsocketCommunicator(
        application,
        f"/ws/deployments/{deployment.pk}/",
        headers=[(b"origin", b"http://127.0.0.1")],
        subprotocols=["mlplatform", token],
    )
    connected, subprotocol = await communicator.connect()
    assert connected
    assert subprotocol == "mlplatform"
    await communicator.send_json_to({"ignored": True})
    assert await communicator.receive_nothing(timeout=0.1)
    await communicator.disconnect()
