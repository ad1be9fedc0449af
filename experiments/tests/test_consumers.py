"""Live run and experiment streams over real WebSocket connections (Channels' WebsocketCommunicator)."""

from __future__ import annotations

import json
import math
from typing import Any

import factory
import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.models import Membership, Role
from accounts.services import api_token_create
from accounts.tests.factories import MembershipFactory
from accounts.ws_auth import WS_NOT_FOUND, WS_UNAUTHENTICATED, WebSocketAuthMiddleware
from experiments import services
from experiments.consumers import WS_BAD_REQUEST, WS_IDLE
from experiments.models import Metric, Run
from experiments.tests.factories import ExperimentFactory, MetricFactory, RunFactory
from mlplatform.asgi import application
from mlplatform.events import experiment_group, run_group
from mlplatform.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

app = WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns))


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A new layer per test: the in-memory layer's queues belong to one event loop."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN/Infinity literals, as a browser's JSON.parse does."""

    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


async def receive(communicator: WebsocketCommunicator, timeout: float = 5) -> dict[str, Any]:
    """The next JSON message, parsed strictly."""
    return strict_loads(await communicator.receive_from(timeout))


async def close_code(communicator: WebsocketCommunicator, timeout: float = 5) -> int:
    """Skip messages until the server closes; return its close code."""
    while True:
        output = await communicator.receive_output(timeout)
        if output["type"] == "websocket.close":
            return output.get("code", 1000)


async def open_socket(path: str, token: str | None = None, **kwargs: Any) -> WebsocketCommunicator:
    """Connect (the handshake is always accepted; refusals arrive as a close code)."""
    if token:
        path += ("&" if "?" in path else "?") + f"token={token}"
    communicator = WebsocketCommunicator(app, path, **kwargs)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    return communicator


def token_for(user: Any) -> str:
    return api_token_create(user=user, name="ws")[1]


log_batch = database_sync_to_async(services.log_batch)


def points(n: int, start: int = 0, key: str = "loss") -> list[dict[str, Any]]:
    return [{"key": key, "value": float(i), "step": i, "timestamp": 1_700_000_000_000 + i} for i in range(start, n)]


@pytest.fixture
def viewer_token(viewer) -> str:
    return token_for(viewer)


@pytest.fixture
def run(team, editor) -> Run:
    return RunFactory(experiment=ExperimentFactory(team=team), last_seq=1)


# Authorization -----------------------------------------------------------------------------------


async def test_run_stream_anonymous_is_4401(run):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/")
    assert await close_code(communicator) == WS_UNAUTHENTICATED


async def test_run_stream_bad_token_is_4401(run):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token="mlp_notatoken")
    assert await close_code(communicator) == WS_UNAUTHENTICATED


async def test_run_stream_outsider_is_4404(run, outsider):
    token = await database_sync_to_async(token_for)(outsider)
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=token)
    assert await close_code(communicator) == WS_NOT_FOUND


async def test_run_stream_unknown_run_is_4404(viewer_token):
    communicator = await open_socket(f"/ws/runs/{'0' * 32}/", token=viewer_token)
    assert await close_code(communicator) == WS_NOT_FOUND


async def test_run_stream_malformed_run_id_is_4404(viewer_token):
    communicator = await open_socket("/ws/runs/not-a-run-id/", token=viewer_token)
    assert await close_code(communicator) == WS_NOT_FOUND


async def test_experiment_stream_anonymous_is_4401(run):
    communicator = await open_socket(f"/ws/experiments/{run.experiment_id}/")
    assert await close_code(communicator) == WS_UNAUTHENTICATED


async def test_experiment_stream_outsider_is_4404(run, outsider):
    token = await database_sync_to_async(token_for)(outsider)
    communicator = await open_socket(f"/ws/experiments/{run.experiment_id}/", token=token)
    assert await close_code(communicator) == WS_NOT_FOUND


@pytest.mark.parametrize("experiment_id", ["999999", "abc", "1e3"])
async def test_experiment_stream_unknown_or_malformed_id_is_4404(viewer_token, experiment_id):
    communicator = await open_socket(f"/ws/experiments/{experiment_id}/", token=viewer_token)
    assert await close_code(communicator) == WS_NOT_FOUND


async def test_viewer_subscribes_with_subprotocol_token(run, viewer_token):
    communicator = WebsocketCommunicator(app, f"/ws/runs/{run.run_uuid}/", subprotocols=["mlplatform", viewer_token])
    connected, subprotocol = await communicator.connect(timeout=10)
    assert (connected, subprotocol) == (True, "mlplatform")
    first = await receive(communicator)
    assert first["type"] == "catchup"
    assert first["run_id"] == run.run_uuid
    await communicator.disconnect(timeout=10)


async def test_staff_may_subscribe_to_any_run(run, staff):
    token = await database_sync_to_async(token_for)(staff)
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=token)
    assert (await receive(communicator))["type"] == "catchup"
    await communicator.disconnect(timeout=10)


async def test_full_asgi_application_checks_origin_and_streams(run, viewer_token):
    communicator = WebsocketCommunicator(
        application,
        f"/ws/runs/{run.run_uuid}/?token={viewer_token}",
        headers=[(b"origin", b"http://localhost"), (b"host", b"localhost")],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    assert (await receive(communicator))["type"] == "catchup"
    await communicator.disconnect(timeout=10)


async def test_full_asgi_application_refuses_foreign_origin(run, viewer_token):
    communicator = WebsocketCommunicator(
        application, f"/ws/runs/{run.run_uuid}/?token={viewer_token}", headers=[(b"origin", b"http://evil.example")]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert not connected


# Run stream: snapshot, live events, JSON --------------------------------------------------------


async def test_connect_without_since_sends_current_state_then_live_points(run, editor, viewer_token):
    await log_batch(user=editor, run=run, metrics=points(3))
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    first = await receive(communicator)
    assert first["type"] == "catchup"
    assert first["v"] == 1
    assert first["seq"] == 2
    assert first["metrics"] == {}
    assert first["more"] is False
    assert first["run"]["status"] == "RUNNING"

    seq = await log_batch(user=editor, run=run, metrics=points(5, start=3), params=[{"key": "lr", "value": "0.1"}])
    event = await receive(communicator)
    assert event["type"] == "run.event"
    assert event["seq"] == seq == 3
    assert event["run_id"] == run.run_uuid
    assert event["kind"] == "metrics"
    assert event["metrics"] == {"loss": [[3, 1_700_000_000_003, 3.0], [4, 1_700_000_000_004, 4.0]]}
    assert event["params"] == {"lr": "0.1"}
    assert await communicator.receive_nothing(0.2)
    await communicator.disconnect(timeout=10)


async def test_one_message_per_batch_of_many_points(run, editor, viewer_token):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    await log_batch(user=editor, run=run, metrics=points(1000))
    event = await receive(communicator)
    assert len(event["metrics"]["loss"]) == 1000
    assert await communicator.receive_nothing(0.2)
    await communicator.disconnect(timeout=10)


async def test_non_finite_values_travel_as_strings(run, editor, viewer_token):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    metrics = [
        {"key": "a", "value": math.nan, "step": 1},
        {"key": "b", "value": math.inf, "step": 1},
        {"key": "c", "value": "-Infinity", "step": 1},
    ]
    await log_batch(user=editor, run=run, metrics=metrics)
    event = await receive(communicator)
    assert [event["metrics"][key][0][2] for key in "abc"] == ["NaN", "Infinity", "-Infinity"]
    await communicator.disconnect(timeout=10)

    # The catch-up read from the database encodes them the same way.
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/?since=1", token=viewer_token)
    catchup = await receive(communicator)
    assert [catchup["metrics"][key][0][2] for key in "abc"] == ["NaN", "Infinity", "-Infinity"]
    await communicator.disconnect(timeout=10)


async def test_invalid_write_announces_nothing(run, editor, viewer_token):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    with pytest.raises(Exception, match="at most 1000"):
        await log_batch(user=editor, run=run, metrics=points(1001))
    assert await communicator.receive_nothing(0.3)
    assert await Metric.objects.filter(run=run).acount() == 0
    await communicator.disconnect(timeout=10)


async def test_status_and_tag_changes_are_streamed(run, editor, viewer_token):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    await log_batch(user=editor, run=run, tags=[{"key": "phase", "value": "warmup"}])
    tag_event = await receive(communicator)
    assert (tag_event["kind"], tag_event["tags"]) == ("tags", {"phase": "warmup"})
    await database_sync_to_async(services.run_update)(user=editor, run=run, status="FINISHED", end_time=5)
    status_event = await receive(communicator)
    assert status_event["kind"] == "status"
    assert status_event["run"]["status"] == "FINISHED"
    assert status_event["seq"] == tag_event["seq"] + 1
    await communicator.disconnect(timeout=10)


async def test_other_runs_events_are_not_received(run, editor, viewer_token, team):
    sibling = await database_sync_to_async(RunFactory)(experiment=run.experiment)
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    await log_batch(user=editor, run=sibling, metrics=points(2))
    assert await communicator.receive_nothing(0.3)
    await communicator.disconnect(timeout=10)


# Resume with ?since= ----------------------------------------------------------------------------


async def test_since_sends_what_was_missed_then_live(run, editor, viewer_token):
    for start in (0, 2, 4):
        await log_batch(user=editor, run=run, metrics=points(start + 2, start=start))  # seq 2, 3, 4
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/?since=2", token=viewer_token)
    catchup = await receive(communicator)
    assert catchup["type"] == "catchup"
    assert (catchup["from_seq"], catchup["seq"], catchup["more"]) == (2, 4, False)
    assert [point[0] for point in catchup["metrics"]["loss"]] == [2, 3, 4, 5]
    await log_batch(user=editor, run=run, metrics=points(7, start=6))
    live = await receive(communicator)
    assert (live["type"], live["seq"]) == ("run.event", 5)
    await communicator.disconnect(timeout=10)


async def test_since_zero_replays_the_whole_history(run, editor, viewer_token):
    await log_batch(user=editor, run=run, metrics=points(3))
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/?since=0", token=viewer_token)
    catchup = await receive(communicator)
    assert [point[0] for point in catchup["metrics"]["loss"]] == [0, 1, 2]
    await communicator.disconnect(timeout=10)


async def test_large_catchup_arrives_in_chunks_of_whole_batches(run, editor, viewer_token, settings):
    settings.WS_CATCHUP_POINTS = 1000
    for start in (0, 600, 1200):
        await log_batch(user=editor, run=run, metrics=points(start + 600, start=start))  # seq 2, 3, 4
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/?since=1", token=viewer_token)
    chunks = [await receive(communicator) for _ in range(3)]
    assert [(c["from_seq"], c["seq"], c["more"]) for c in chunks] == [(1, 2, True), (2, 3, True), (3, 4, False)]
    steps = [point[0] for chunk in chunks for point in chunk["metrics"]["loss"]]
    assert steps == list(range(1800))
    await communicator.disconnect(timeout=10)


@pytest.mark.parametrize("since", ["-1", "abc", "1.5", ""])
async def test_invalid_since_is_an_error_then_4400(run, viewer_token, since):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/?since={since}", token=viewer_token)
    error = await receive(communicator)
    assert (error["type"], error["code"]) == ("error", "invalid_input")
    assert "since" in error["message"]
    assert await close_code(communicator) == WS_BAD_REQUEST


async def test_live_events_already_in_the_catchup_are_dropped(run, editor, viewer_token):
    await log_batch(user=editor, run=run, metrics=points(2))  # seq 2
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/?since=1", token=viewer_token)
    assert (await receive(communicator))["seq"] == 2
    layer = get_channel_layer()
    stale = {"type": "run.event", "v": 1, "run_id": run.run_uuid, "seq": 2, "kind": "metrics", "metrics": {}}
    await layer.group_send(run_group(run.run_uuid), stale)
    assert await communicator.receive_nothing(0.2)
    await communicator.disconnect(timeout=10)


# Falling behind: resync ---------------------------------------------------------------------------


async def test_seq_jump_sends_resync_and_pauses_until_resume(run, editor, viewer_token):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    assert (await receive(communicator))["seq"] == 1
    await log_batch(user=editor, run=run, metrics=points(1))
    assert (await receive(communicator))["seq"] == 2
    # Batches 3 and 4 committed but their events never reached this consumer (as when its channel was full).
    await database_sync_to_async(MetricFactory.create_batch)(2, run=run, step=factory.Iterator([1, 2]), seq=3)
    await Run.objects.filter(pk=run.pk).aupdate(last_seq=4)
    await log_batch(user=editor, run=run, metrics=points(4, start=3))  # seq 5
    resync = await receive(communicator)
    assert resync == {"type": "resync", "v": 1, "run_id": run.run_uuid, "from_seq": 2}
    await log_batch(user=editor, run=run, metrics=points(5, start=4))  # seq 6: paused, not forwarded
    assert await communicator.receive_nothing(0.2)

    await communicator.send_to(text_data=json.dumps({"type": "resume", "since": 2}))
    catchup = await receive(communicator)
    assert (catchup["type"], catchup["from_seq"], catchup["seq"], catchup["more"]) == ("catchup", 2, 6, False)
    assert [point[0] for point in catchup["metrics"]["loss"]] == [1, 2, 3, 4]
    await log_batch(user=editor, run=run, metrics=points(6, start=5))
    assert (await receive(communicator))["seq"] == 7
    await communicator.disconnect(timeout=10)


async def test_resume_with_bad_since_is_an_error(run, viewer_token):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    await communicator.send_to(text_data=json.dumps({"type": "resume", "since": "x"}))
    error = await receive(communicator)
    assert (error["type"], error["code"]) == ("error", "invalid_input")
    await communicator.disconnect(timeout=10)


# Client frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        ({"text_data": "{not json"}, "valid JSON"),
        ({"text_data": "[1, 2]"}, '"type"'),
        ({"text_data": json.dumps({"type": 3})}, '"type"'),
        ({"text_data": json.dumps({"type": "subscribe"})}, "Unknown message type"),
        ({"bytes_data": b"\x00\x01"}, "binary"),
    ],
)
async def test_bad_client_frames_get_an_error_and_the_socket_stays_open(run, viewer_token, frame, fragment):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    await communicator.send_to(**frame)
    error = await receive(communicator)
    assert error["type"] == "error"
    assert fragment in error["message"]
    await communicator.send_to(text_data=json.dumps({"type": "ping"}))
    assert (await receive(communicator))["type"] == "pong"
    await communicator.disconnect(timeout=10)


# Heartbeat, idle close, access re-check ------------------------------------------------------------


async def test_heartbeat_pings_and_pongs_keep_the_socket_open(run, viewer_token, settings):
    settings.WS_PING_INTERVAL = 0.1
    settings.WS_IDLE_TIMEOUT = 0.25
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    for _ in range(5):
        assert (await receive(communicator, timeout=1))["type"] == "ping"
        await communicator.send_to(text_data=json.dumps({"type": "pong"}))
    await communicator.disconnect(timeout=10)


async def test_idle_socket_is_closed_with_4408(run, viewer_token, settings):
    settings.WS_PING_INTERVAL = 0.1
    settings.WS_IDLE_TIMEOUT = 0.25
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    assert await close_code(communicator, timeout=2) == WS_IDLE


async def test_member_removed_while_subscribed_is_closed_with_4404(run, team, settings):
    settings.WS_PING_INTERVAL = 0.1
    member = await database_sync_to_async(MembershipFactory)(team=team, role=Role.VIEWER)
    token = await database_sync_to_async(token_for)(member.user)
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=token)
    await receive(communicator)
    await Membership.objects.filter(pk=member.pk).adelete()
    assert await close_code(communicator, timeout=2) == WS_NOT_FOUND


# Experiment stream --------------------------------------------------------------------------------


async def test_experiment_stream_gets_run_lifecycle_and_latest_metrics(run, editor, viewer_token):
    experiment = run.experiment
    communicator = await open_socket(f"/ws/experiments/{experiment.pk}/", token=viewer_token)
    assert await receive(communicator) == {"type": "subscribed", "v": 1, "experiment_id": experiment.pk}

    created = await database_sync_to_async(services.run_create)(user=editor, experiment=experiment, name="r2")
    event = await receive(communicator)
    assert (event["kind"], event["run_id"], event["seq"]) == ("created", created.run_uuid, 1)
    assert event["run"]["name"] == "r2"

    await log_batch(user=editor, run=created, metrics=points(3) + points(2, key="acc"))
    event = await receive(communicator)
    assert event["latest"] == {"loss": [2, 1_700_000_000_002, 2.0], "acc": [1, 1_700_000_000_001, 1.0]}
    assert "metrics" not in event

    await database_sync_to_async(services.run_update)(user=editor, run=created, status="FINISHED")
    event = await receive(communicator)
    assert (event["kind"], event["run"]["status"]) == ("status", "FINISHED")
    await communicator.disconnect(timeout=10)


async def test_experiment_stream_ignores_other_experiments(run, editor, viewer_token, team):
    other = await database_sync_to_async(lambda: RunFactory(experiment=ExperimentFactory(team=team)))()
    communicator = await open_socket(f"/ws/experiments/{run.experiment_id}/", token=viewer_token)
    await receive(communicator)
    await log_batch(user=editor, run=other, metrics=points(1))
    assert await communicator.receive_nothing(0.3)
    await communicator.disconnect(timeout=10)


async def test_experiment_stream_asks_to_reload_a_run_after_a_seq_jump(run, viewer_token):
    communicator = await open_socket(f"/ws/experiments/{run.experiment_id}/", token=viewer_token)
    await receive(communicator)
    layer = get_channel_layer()
    group = experiment_group(run.experiment_id)

    def event(seq: int) -> dict[str, Any]:
        return {"type": "run.event", "v": 1, "run_id": run.run_uuid, "experiment_id": run.experiment_id, "seq": seq}

    await layer.group_send(group, event(3))
    assert (await receive(communicator))["seq"] == 3
    await layer.group_send(group, event(3))  # duplicate: dropped
    await layer.group_send(group, event(6))  # 4 and 5 lost
    assert await receive(communicator) == {"type": "resync", "v": 1, "run_id": run.run_uuid, "from_seq": 3}
    assert (await receive(communicator))["seq"] == 6
    assert await communicator.receive_nothing(0.2)
    await communicator.disconnect(timeout=10)


async def test_experiment_stream_forgets_the_least_recent_runs_beyond_its_limit(run, viewer_token, monkeypatch):
    monkeypatch.setattr("experiments.consumers.MAX_TRACKED_RUNS", 2)
    communicator = await open_socket(f"/ws/experiments/{run.experiment_id}/", token=viewer_token)
    await receive(communicator)
    layer = get_channel_layer()
    for run_id, seq in [("a" * 32, 1), ("b" * 32, 1), ("c" * 32, 1), ("a" * 32, 5)]:
        await layer.group_send(
            experiment_group(run.experiment_id), {"type": "run.event", "v": 1, "run_id": run_id, "seq": seq}
        )
    received = [await receive(communicator) for _ in range(4)]
    # "a" was forgotten when "c" arrived, so its jump from 1 to 5 cannot be detected (and no resync is sent).
    assert [(m["type"], m["run_id"][0], m["seq"]) for m in received] == [
        ("run.event", "a", 1),
        ("run.event", "b", 1),
        ("run.event", "c", 1),
        ("run.event", "a", 5),
    ]
    await communicator.disconnect(timeout=10)


async def test_raw_non_finite_floats_in_an_event_are_encoded_as_strings(run, viewer_token):
    communicator = await open_socket(f"/ws/runs/{run.run_uuid}/", token=viewer_token)
    await receive(communicator)
    event = {"type": "run.event", "v": 1, "run_id": run.run_uuid, "seq": 2, "metrics": {"x": [[1, 0, math.nan]]}}
    await get_channel_layer().group_send(run_group(run.run_uuid), event)
    text = await communicator.receive_from(5)
    assert strict_loads(text)["metrics"] == {"x": [[1, 0, "NaN"]]}
    await communicator.disconnect(timeout=10)
