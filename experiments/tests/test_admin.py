"""Admin: lists with search and filters, inlines, and the service-backed actions."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from accounts.models import AuditEvent
from accounts.tests.factories import UserFactory
from experiments.models import Experiment, LifecycleStage, Run
from experiments.tests.factories import (
    ExperimentFactory,
    ExperimentTagFactory,
    LatestMetricFactory,
    MetricFactory,
    ParamFactory,
    RunFactory,
    RunTagFactory,
)


def audit_actions():
    """Audited actions other than the test client's own login."""
    return AuditEvent.objects.exclude(action__startswith="login").order_by("id").values_list("action", flat=True)


@pytest.fixture
def superuser(db):
    return UserFactory(is_superuser=True, is_staff=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


def action(client, model, name, objects, **extra):
    changelist = reverse(f"admin:experiments_{model}_changelist")
    data = {"action": name, ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra}
    return client.post(changelist, data, follow=not extra.get("confirm") and name != "hard_delete")


@pytest.mark.parametrize("model", ["experiment", "run", "param", "runtag", "experimenttag", "latestmetric", "metric"])
def test_changelists_render(admin_client, run, model):
    ParamFactory(run=run)
    RunTagFactory(run=run)
    LatestMetricFactory(run=run)
    MetricFactory(run=run)
    ExperimentTagFactory(experiment=run.experiment)
    response = admin_client.get(reverse(f"admin:experiments_{model}_changelist"), {"q": "x"})
    assert response.status_code == 200
    assert admin_client.get(reverse(f"admin:experiments_{model}_changelist")).status_code == 200


def test_run_change_page_shows_params_tags_and_latest_metrics(admin_client, run):
    ParamFactory(run=run, key="lr", value="0.125")
    RunTagFactory(run=run, key="stage", value="warmup")
    LatestMetricFactory(run=run, key="loss", value=0.0, is_nan=True, step=7)
    response = admin_client.get(reverse("admin:experiments_run_change", args=[run.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "0.125" in content and "warmup" in content and "NaN" in content and "step 7" in content


def test_run_filters(admin_client, experiment):
    RunFactory(experiment=experiment, name="finished-one", status="FINISHED")
    RunFactory(experiment=experiment, name="running-one")
    changelist = reverse("admin:experiments_run_changelist")
    response = admin_client.get(changelist, {"status__exact": "FINISHED"})
    assert "finished-one" in response.content.decode() and "running-one" not in response.content.decode()
    old = admin_client.get(changelist, {"started": "7d"}).content.decode()
    assert "finished-one" not in old  # factory start times are in 2023
    assert admin_client.get(changelist, {"started": "30d"}).status_code == 200


def test_no_add_change_or_plain_delete(admin_client, run):
    assert admin_client.get(reverse("admin:experiments_run_add")).status_code == 403
    response = admin_client.get(reverse("admin:experiments_run_changelist"))
    assert "delete_selected" not in response.content.decode()


def test_soft_delete_and_restore_runs(admin_client, run):
    action(admin_client, "run", "soft_delete", [run])
    assert Run.objects.get(pk=run.pk).lifecycle_stage == LifecycleStage.DELETED
    action(admin_client, "run", "restore", [run])
    assert Run.objects.get(pk=run.pk).lifecycle_stage == LifecycleStage.ACTIVE
    assert list(audit_actions()) == ["run.delete", "run.restore"]


def test_soft_delete_and_restore_experiments(admin_client, experiment):
    action(admin_client, "experiment", "soft_delete", [experiment])
    assert Experiment.objects.get().lifecycle_stage == LifecycleStage.DELETED
    action(admin_client, "experiment", "restore", [experiment])
    assert Experiment.objects.get().lifecycle_stage == LifecycleStage.ACTIVE


def test_staff_outside_the_team_is_refused_with_a_message(client, run):
    staff = UserFactory(is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_run", "view_experiment"]))
    client.force_login(staff)
    response = action(client, "run", "soft_delete", [run])
    assert "Your role does not allow" in response.content.decode()
    assert Run.objects.get(pk=run.pk).lifecycle_stage == LifecycleStage.ACTIVE


def test_lock_and_unlock(admin_client, experiment):
    finished = RunFactory(experiment=experiment, status="FINISHED")
    running = RunFactory(experiment=experiment)
    response = action(admin_client, "run", "lock", [finished, running])
    assert "Only a finished" in response.content.decode()
    assert Run.objects.get(pk=finished.pk).locked and not Run.objects.get(pk=running.pk).locked
    action(admin_client, "run", "unlock", [finished])
    assert not Run.objects.get(pk=finished.pk).locked


def test_hard_delete_asks_first_then_deletes_and_audits(admin_client, run):
    page = action(admin_client, "run", "hard_delete", [run])
    assert page.status_code == 200 and "Delete permanently?" in page.content.decode()
    assert Run.objects.exists()
    action(admin_client, "run", "hard_delete", [run], confirm="yes")
    assert not Run.objects.exists()
    assert list(audit_actions()) == ["run.hard_delete"]


def test_hard_delete_experiment(admin_client, experiment):
    action(admin_client, "experiment", "hard_delete", [experiment], confirm="yes")
    assert not Experiment.objects.exists()
    assert list(audit_actions()) == ["experiment.hard_delete"]


def test_hard_delete_is_for_superusers_only(client, team_admin, run):
    team_admin.is_staff = True
    team_admin.save()
    from django.contrib.auth.models import Permission

    team_admin.user_permissions.add(*Permission.objects.filter(codename__in=["view_run", "view_experiment"]))
    client.force_login(team_admin)
    response = client.post(
        reverse("admin:experiments_run_changelist"),
        {"action": "hard_delete", ACTION_CHECKBOX_NAME: [run.pk], "confirm": "yes"},
        follow=True,
    )
    assert "Only superusers" in response.content.decode()
    assert Run.objects.exists()


def test_experiment_admin_search(admin_client, team):
    ExperimentFactory(team=team, name="needle")
    ExperimentFactory(team=team, name="haystack")
    content = admin_client.get(reverse("admin:experiments_experiment_changelist"), {"q": "needle"}).content.decode()
    assert "needle" in content and "haystack" not in content


def test_run_filters_by_team_and_user(admin_client, experiment, other_team):
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    RunFactory(experiment=experiment, name="alices-run", user=alice)
    RunFactory(experiment=ExperimentFactory(team=other_team), name="bobs-run", user=bob)
    changelist = reverse("admin:experiments_run_changelist")
    offered = {spec.title for spec in admin_client.get(changelist).context["cl"].filter_specs}
    assert {"status", "team", "user", "started"} <= offered
    by_user = admin_client.get(changelist, {"user__id__exact": alice.pk}).content.decode()
    assert "alices-run" in by_user and "bobs-run" not in by_user
    by_team = admin_client.get(changelist, {"team__id__exact": other_team.pk}).content.decode()
    assert "bobs-run" in by_team and "alices-run" not in by_team


def test_experiment_filters_by_state_team_creator_and_date(admin_client, team, other_team):
    alice = UserFactory(username="alice")
    ExperimentFactory(team=team, name="alices-experiment", created_by=alice)
    ExperimentFactory(team=other_team, name="other-experiment", lifecycle_stage=LifecycleStage.DELETED)
    changelist = reverse("admin:experiments_experiment_changelist")

    def names(**query):
        content = admin_client.get(changelist, query).content.decode()
        return {name for name in ("alices-experiment", "other-experiment") if name in content}

    offered = {spec.title for spec in admin_client.get(changelist).context["cl"].filter_specs}
    assert {"lifecycle stage", "team", "created by", "created at"} <= offered
    assert names(created_by__id__exact=alice.pk) == {"alices-experiment"}
    assert names(team__id__exact=other_team.pk) == {"other-experiment"}
    assert names(lifecycle_stage__exact="deleted") == {"other-experiment"}
    assert names(created_at__gte="2000-01-01 00:00:00+00:00") == {"alices-experiment", "other-experiment"}
