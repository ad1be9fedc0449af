"""Registry pages: model list and detail, version detail, deployments with live monitoring and rollback."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from accounts.permissions import Action, authorize, can
from experiments.pages.context import current_team_id
from experiments.pages.errors import page_errors
from mlplatform.errors import Conflict
from registry import selectors, services
from registry.models import DeploymentStatus
from registry.pages import selectors as page_selectors


@login_required
@page_errors
def model_list(request: HttpRequest) -> HttpResponse:
    """Registered models of the user's teams (or the chosen team), searchable by name."""
    query = request.GET.get("q", "").strip()[:200]
    models = selectors.registered_model_list(
        user=request.user, team=current_team_id(request), name_contains=query or None
    ).order_by("name", "id")[:500]
    return render(request, "registry/model_list.html", {"nav_section": "models", "models": models, "query": query})


@login_required
@page_errors
def model_detail(request: HttpRequest, model_id: int) -> HttpResponse:
    """A model: its versions, aliases, stage history and where it is live."""
    model = selectors.registered_model_by_id(user=request.user, model_id=model_id)
    versions = list(selectors.model_version_list(user=request.user, model=model))
    return render(
        request,
        "registry/model_detail.html",
        {
            "nav_section": "models",
            "model": model,
            "versions": versions,
            "aliases": list(model.aliases.all()),
            "history": list(page_selectors.model_stage_history(user=request.user, model=model)),
            "live": list(page_selectors.live_deployments(user=request.user, model_id=model.pk)),
        },
    )


@login_required
@page_errors
def version_detail(request: HttpRequest, model_id: int, version: int) -> HttpResponse:
    """A model version: source, link to the run that made it, tags, aliases, stage history, deployments."""
    model = selectors.registered_model_by_id(user=request.user, model_id=model_id)
    found = selectors.model_version_get(user=request.user, model=model, version=version)
    run = found.run if found.run_id and can(request.user, Action.READ, found.run) else None
    return render(
        request,
        "registry/version_detail.html",
        {
            "nav_section": "models",
            "model": model,
            "version": found,
            "run": run,
            "transitions": list(selectors.stage_transitions(user=request.user, version=found)),
            "deployments": list(
                page_selectors.version_deployments(user=request.user, version_id=found.pk, team_id=model.team_id)
            ),
        },
    )


@login_required
@page_errors
def deployment_list(request: HttpRequest) -> HttpResponse:
    """Per environment what is live, and the latest deployments."""
    team_id = current_team_id(request)
    environments = list(selectors.environment_list(user=request.user, team=team_id))
    live_by_env: dict[int, list[Any]] = {env.pk: [] for env in environments}
    for deployment in page_selectors.live_deployments(user=request.user, team_id=team_id):
        live_by_env.setdefault(deployment.environment_id, []).append(deployment)
    return render(
        request,
        "registry/deployment_list.html",
        {
            "nav_section": "deployments",
            "environments": [{"environment": env, "live": live_by_env.get(env.pk, [])} for env in environments],
            "recent": list(page_selectors.recent_deployments(user=request.user, team_id=team_id)),
            "show_team": len({env.team_id for env in environments}) > 1,
        },
    )


@login_required
@page_errors
def deployment_detail(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """One deployment: status, events, alerts, live monitoring charts, and rollback for admins."""
    deployment = selectors.deployment_get(user=request.user, deployment_id=deployment_id)
    last_seq = deployment.last_seq
    series = page_selectors.monitoring_series(user=request.user, deployment=deployment)
    events = list(selectors.deployment_events(user=request.user, deployment=deployment).order_by("-seq")[:100])
    alerts = list(selectors.alert_list(user=request.user, deployment=deployment)[:50])
    rules = list(selectors.alert_rule_list(user=request.user, deployment=deployment))
    return render(
        request,
        "registry/deployment_detail.html",
        {
            "nav_section": "deployments",
            "deployment": deployment,
            "events": events,
            "alerts": alerts,
            "rules": rules,
            "can_rollback": deployment.status == DeploymentStatus.LIVE and can(request.user, Action.DEPLOY, deployment),
            "chart_data": {
                "deployment_id": deployment.pk,
                "since": last_seq,
                "ws_path": f"/ws/deployments/{deployment.pk}/",
                "series": {key: [[ts, ts, value] for ts, value in points] for key, points in series.items()},
            },
        },
    )


class RollbackForm(forms.Form):
    """Rollback confirmation: an optional comment recorded on the deployment event."""

    comment = forms.CharField(required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


@login_required
@page_errors
def deployment_rollback(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """GET asks for confirmation; POST rolls the environment back to the previously live version (admin)."""
    deployment = selectors.deployment_get(user=request.user, deployment_id=deployment_id)
    authorize(request.user, Action.DEPLOY, deployment, label="Deployment")
    detail_url = reverse("pages:deployment_detail", args=[deployment.pk])
    form = RollbackForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            restored = services.rollback(
                user=request.user,
                model=deployment.model,
                environment=deployment.environment,
                comment=form.cleaned_data["comment"],
                request=request,
            )
        except Conflict as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(detail_url)
        messages.success(
            request,
            f"Rolled {deployment.environment.name} back to {restored.model.name} version {restored.version.version}.",
        )
        return HttpResponseRedirect(reverse("pages:deployment_detail", args=[restored.pk]))
    return render(
        request,
        "registry/rollback_confirm.html",
        {"nav_section": "deployments", "deployment": deployment, "form": form},
        status=400 if request.method == "POST" else 200,
    )
