import math

import pytest

from mlplatform.errors import Conflict, Forbidden, InvalidInput
from registry import services
from registry.models import Alert, AlertRule, DeploymentEvent, MonitoringMetric, WebhookDelivery
from registry.tests.factories import AlertRuleFactory, DeploymentFactory, ModelVersionFactory, WebhookFactory

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000_000


@pytest.fixture
def deployment(model):
    return DeploymentFactory(version=ModelVersionFactory(model=model))


def points(key, values, start=T0, every_ms=1000):
    return [{"key": key, "value": value, "timestamp": start + i * every_ms} for i, value in enumerate(values)]


def test_ingest_stores_points_with_one_seq(editor, deployment):
    seq = services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("latency_ms", [10, 20]))
    assert seq == 1
    assert list(MonitoringMetric.objects.values_list("key", "value", "seq")) == [
        ("latency_ms", 10.0, 1),
        ("latency_ms", 20.0, 1),
    ]
    deployment.refresh_from_db()
    assert deployment.last_seq == 1


def test_non_finite_values(editor, deployment):
    services.monitoring_ingest(
        user=editor,
        deployment=deployment,
        metrics=[{"key": "x", "value": v, "timestamp": T0} for v in ["NaN", "Infinity", "-Infinity", math.inf]],
    )
    values = list(MonitoringMetric.objects.order_by("id").values_list("value", flat=True))
    assert values[0] is None  # NaN
    assert values[1:] == [math.inf, -math.inf, math.inf]


def test_timestamp_defaults_to_now(editor, deployment):
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=[{"key": "x", "value": 1}])
    assert MonitoringMetric.objects.get().timestamp > T0


def test_empty_batch_is_a_noop(editor, deployment):
    assert services.monitoring_ingest(user=editor, deployment=deployment, metrics=[]) == 0
    assert not MonitoringMetric.objects.exists()


@pytest.mark.parametrize(
    "metrics,message",
    [
        ("nope", "a list is required"),
        ([{"key": "x"}], "value: this field is required"),
        ([{"key": "x", "value": "high"}], "a number is required"),
        ([{"key": "x", "value": True}], "a number is required"),
        ([{"key": "", "value": 1}], "non-empty string"),
        ([{"key": "k" * 251, "value": 1}], "over the limit of 250"),
        ([{"key": "bad key!", "value": 1}], "may only contain"),
        ([{"key": "x", "value": 1, "timestamp": "soon"}], "an integer is required"),
        ([{"key": "x", "value": 1}] * 1001, "at most 1000"),
        ([{"key": "x", "value": 1}, 5], "an object is required"),
    ],
)
def test_bad_batches_write_nothing(editor, deployment, metrics, message):
    with pytest.raises(InvalidInput, match=message):
        services.monitoring_ingest(user=editor, deployment=deployment, metrics=metrics)
    assert not MonitoringMetric.objects.exists()
    deployment.refresh_from_db()
    assert deployment.last_seq == 0


def test_viewer_cannot_ingest(viewer, deployment):
    with pytest.raises(Forbidden):
        services.monitoring_ingest(user=viewer, deployment=deployment, metrics=points("x", [1]))


def test_retired_deployment_refuses_metrics(editor, model):
    retired = DeploymentFactory(version=ModelVersionFactory(model=model), status="retired")
    with pytest.raises(Conflict, match="retired"):
        services.monitoring_ingest(user=editor, deployment=retired, metrics=points("x", [1]))


def test_ingest_query_count_does_not_grow_with_batch(editor, deployment, django_assert_max_num_queries):
    AlertRuleFactory(deployment=deployment, metric="latency_ms")
    AlertRuleFactory(deployment=deployment, metric="error_rate", threshold=0.5)
    editor_roles_loaded = services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("warmup", [1]))
    assert editor_roles_loaded == 1
    small = points("latency_ms", [1]) + points("error_rate", [0.1])
    big = points("latency_ms", [1.0] * 500, start=T0 + 10_000_000) + points("error_rate", [0.1] * 500)
    with django_assert_max_num_queries(8) as small_ctx:
        services.monitoring_ingest(user=editor, deployment=deployment, metrics=small)
    with django_assert_max_num_queries(8) as big_ctx:
        services.monitoring_ingest(user=editor, deployment=deployment, metrics=big)
    assert len(big_ctx.captured_queries) == len(small_ctx.captured_queries)
    assert MonitoringMetric.objects.count() == 1 + 2 + 1000


def test_alert_raised_when_windowed_mean_crosses(editor, deployment, team):
    WebhookFactory(team=team, event_types=["monitoring.alert"])
    rule = AlertRuleFactory(
        deployment=deployment, metric="latency_ms", comparison="gt", threshold=100, window_seconds=60
    )
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("latency_ms", [50, 90]))
    assert not Alert.objects.exists()
    services.monitoring_ingest(
        user=editor, deployment=deployment, metrics=points("latency_ms", [300, 300], start=T0 + 2000)
    )
    alert = Alert.objects.get()
    assert (alert.rule, alert.state, alert.value) == (rule, "firing", pytest.approx((50 + 90 + 300 + 300) / 4))
    event = DeploymentEvent.objects.get(kind="alert_raised")
    assert event.details["alert"]["metric"] == "latency_ms"
    assert WebhookDelivery.objects.get().payload["data"]["alert"]["state"] == "firing"


def test_window_excludes_old_points(editor, deployment):
    AlertRuleFactory(deployment=deployment, metric="latency_ms", threshold=100, window_seconds=10)
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("latency_ms", [1000]))
    Alert.objects.all().delete()
    AlertRule.objects.update(is_enabled=True)
    # 60 s later the old spike is out of the 10 s window.
    services.monitoring_ingest(
        user=editor, deployment=deployment, metrics=points("latency_ms", [10], start=T0 + 60_000)
    )
    assert not Alert.objects.filter(state="firing").exists()


def test_alert_resolves_and_is_not_raised_twice(editor, deployment):
    AlertRuleFactory(deployment=deployment, metric="error_rate", comparison="gte", threshold=0.5, window_seconds=5)
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("error_rate", [0.9]))
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("error_rate", [0.8], start=T0 + 1000))
    assert Alert.objects.filter(state="firing").count() == 1
    services.monitoring_ingest(
        user=editor, deployment=deployment, metrics=points("error_rate", [0.0], start=T0 + 60_000)
    )
    alert = Alert.objects.get()
    assert alert.state == "resolved"
    assert alert.resolved_value == 0.0
    assert alert.resolved_at is not None
    kinds = list(DeploymentEvent.objects.order_by("seq").values_list("kind", flat=True))
    assert kinds == ["alert_raised", "alert_resolved"]


@pytest.mark.parametrize(
    "comparison,value,fires", [("lt", 1, True), ("lt", 10, False), ("lte", 5, True), ("gt", 5, False)]
)
def test_comparisons(editor, deployment, comparison, value, fires):
    AlertRuleFactory(deployment=deployment, metric="m", comparison=comparison, threshold=5)
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("m", [value]))
    assert Alert.objects.exists() is fires


def test_nan_points_do_not_judge(editor, deployment):
    AlertRuleFactory(deployment=deployment, metric="m", comparison="lt", threshold=5)
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("m", ["NaN"]))
    assert not Alert.objects.exists()


def test_disabled_rule_is_ignored(editor, deployment):
    AlertRuleFactory(deployment=deployment, metric="m", threshold=1, is_enabled=False)
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("m", [100]))
    assert not Alert.objects.exists()


def test_rule_create_update_delete(team_admin, deployment):
    rule = services.alert_rule_create(
        user=team_admin, deployment=deployment, metric="latency_ms", comparison="gt", threshold=250, window_seconds=30
    )
    assert (rule.metric, rule.threshold, rule.window_seconds) == ("latency_ms", 250.0, 30)
    services.alert_rule_update(user=team_admin, rule=rule, threshold=300, is_enabled=False, comparison="gte")
    rule.refresh_from_db()
    assert (rule.threshold, rule.is_enabled, rule.comparison) == (300.0, False, "gte")
    services.alert_rule_delete(user=team_admin, rule=rule)
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metric": "", "comparison": "gt", "threshold": 1},
        {"metric": "m", "comparison": "~", "threshold": 1},
        {"metric": "m", "comparison": "gt", "threshold": math.inf},
        {"metric": "m", "comparison": "gt", "threshold": "high"},
        {"metric": "m", "comparison": "gt", "threshold": 1, "window_seconds": 0},
        {"metric": None, "comparison": "gt", "threshold": 1},
    ],
)
def test_rule_bad_inputs(team_admin, deployment, kwargs):
    with pytest.raises(InvalidInput):
        services.alert_rule_create(user=team_admin, deployment=deployment, **kwargs)
    assert not AlertRule.objects.exists()


def test_rule_update_bad_enabled_flag(team_admin, deployment):
    rule = AlertRuleFactory(deployment=deployment)
    with pytest.raises(InvalidInput):
        services.alert_rule_update(user=team_admin, rule=rule, is_enabled="yes")


def test_rule_limit(team_admin, deployment):
    AlertRule.objects.bulk_create(
        [AlertRule(deployment=deployment, metric="m", comparison="gt", threshold=1) for _ in range(50)]
    )
    with pytest.raises(InvalidInput, match="at most 50"):
        services.alert_rule_create(user=team_admin, deployment=deployment, metric="m", comparison="gt", threshold=1)


def test_editor_cannot_manage_rules(editor, deployment):
    with pytest.raises(Forbidden):
        services.alert_rule_create(user=editor, deployment=deployment, metric="m", comparison="gt", threshold=1)


def test_raise_and_resolve_both_reach_the_webhooks(editor, deployment, team):
    WebhookFactory(team=team, event_types=["monitoring.alert"])
    AlertRuleFactory(deployment=deployment, metric="latency_ms", comparison="gt", threshold=100, window_seconds=5)
    services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("latency_ms", [500]))
    services.monitoring_ingest(
        user=editor, deployment=deployment, metrics=points("latency_ms", [10], start=T0 + 60_000)
    )
    payloads = [d.payload["data"] for d in WebhookDelivery.objects.order_by("id")]
    assert [(p["alert"]["state"], p["alert"]["value"]) for p in payloads] == [("firing", 500.0), ("resolved", 10.0)]
    assert all(p["deployment"]["id"] == deployment.pk for p in payloads)
    alert = Alert.objects.get()
    assert alert.state == "resolved"
    resolved = DeploymentEvent.objects.get(kind="alert_resolved")
    assert resolved.details["alert"]["state"] == "resolved"


@pytest.fixture
def firing(editor, deployment, team, monkeypatch):
    """A firing alert (mean latency 500 > 100) with a subscribed webhook; live messages are captured."""
    WebhookFactory(team=team, event_types=["monitoring.alert"])
    rule = AlertRuleFactory(
        deployment=deployment, metric="latency_ms", comparison="gt", threshold=100, window_seconds=60
    )
    services.monitoring_ingest(
        user=editor, deployment=deployment, metrics=points("latency_ms", [500]) + points("errors", [0.5])
    )
    assert Alert.objects.get().state == "firing"
    live = []
    monkeypatch.setattr(services, "publish_after_commit", lambda group, message: live.append(message))
    return {"rule": rule, "alert": Alert.objects.get(), "live": live}


def assert_resolved_everywhere(firing, reason, value=None):
    """Resolved in the database, as a deployment event, a ``monitoring.alert`` webhook and a live message."""
    event = DeploymentEvent.objects.filter(kind="alert_resolved").get()
    assert reason in event.message
    assert (event.details["alert"]["state"], event.details["alert"]["reason"]) == ("resolved", reason)
    assert event.details["alert"]["value"] == value
    webhook = WebhookDelivery.objects.order_by("-id").first().payload["data"]["alert"]
    assert (webhook["state"], webhook["reason"], webhook["id"]) == ("resolved", reason, firing["alert"].pk)
    alerts = [m for m in firing["live"] if m.get("kind") == "alert"]
    assert [m["event"]["kind"] for m in alerts] == ["alert_resolved"]
    if Alert.objects.filter(pk=firing["alert"].pk).exists():  # gone with a deleted rule
        alert = Alert.objects.get(pk=firing["alert"].pk)
        assert alert.state == "resolved" and alert.resolved_at is not None


def test_disabling_a_rule_resolves_its_firing_alert(team_admin, firing):
    services.alert_rule_update(user=team_admin, rule=firing["rule"], is_enabled=False)
    assert_resolved_everywhere(firing, "rule disabled")


def test_deleting_a_rule_records_its_firing_alert_resolved(team_admin, firing):
    services.alert_rule_delete(user=team_admin, rule=firing["rule"])
    assert_resolved_everywhere(firing, "rule deleted")
    assert not AlertRule.objects.exists()


def test_a_threshold_edit_is_judged_again_on_the_stored_points(team_admin, firing):
    services.alert_rule_update(user=team_admin, rule=firing["rule"], threshold=1000)
    assert_resolved_everywhere(firing, "rule changed: threshold", value=500.0)
    services.alert_rule_update(user=team_admin, rule=firing["rule"], comparison="lt")  # 500 < 1000: raised anew
    assert Alert.objects.filter(state="firing").exclude(pk=firing["alert"].pk).exists()
    assert DeploymentEvent.objects.filter(kind="alert_raised").count() == 2


def test_an_edit_with_nothing_left_to_judge_resolves(team_admin, firing):
    services.alert_rule_update(user=team_admin, rule=firing["rule"], metric="never_posted")
    assert_resolved_everywhere(firing, "rule changed: metric")


def test_a_metric_edit_judges_the_new_metric(team_admin, firing):
    services.alert_rule_update(user=team_admin, rule=firing["rule"], metric="errors", threshold=0.1)
    assert Alert.objects.get().state == "firing"  # errors 0.5 > 0.1: the alert is still due, nothing recorded
    assert not DeploymentEvent.objects.filter(kind="alert_resolved").exists()


def test_an_unchanged_update_records_nothing(team_admin, firing):
    services.alert_rule_update(user=team_admin, rule=firing["rule"], threshold=100, is_enabled=True)
    assert Alert.objects.get().state == "firing" and firing["live"] == []


@pytest.mark.parametrize("status", ["retired", "failed"])
def test_a_deployment_leaving_service_resolves_its_alerts(team_admin, editor, firing, deployment, status):
    services.deployment_set_status(user=team_admin, deployment=deployment, status=status)
    assert_resolved_everywhere(firing, f"deployment {status}")
    if status == "failed":  # still accepts points, but raises nothing more
        services.monitoring_ingest(user=editor, deployment=deployment, metrics=points("latency_ms", [900], T0 + 5000))
        assert not Alert.objects.filter(state="firing").exists()


def test_a_replaced_deployment_resolves_its_alerts(team_admin, firing, deployment, model):
    services.deploy(user=team_admin, version=ModelVersionFactory(model=model), environment=deployment.environment)
    assert_resolved_everywhere(firing, "deployment retired")
