"""Every write of the registry: models, versions, aliases, stages, deployments, monitoring, webhooks.

Keyword-only arguments, one transaction each, permission checks inside (``authorize``), so the native
API, the MLflow façade, admin actions and pages share every rule.
"""

from __future__ import annotations

import math
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, connection, transaction
from django.db.models import Avg, F, Max, ProtectedError, Q, QuerySet
from django.utils import timezone

from accounts.audit import record_event
from accounts.models import Team
from accounts.permissions import Action, authorize
from experiments import limits
from mlplatform.errors import Conflict, InvalidInput, NotFound
from mlplatform.events import deployment_group, publish_after_commit
from registry import webhooks
from registry.models import (
    KEY_MAX,
    NAME_MAX,
    SOURCE_MAX,
    TAG_VALUE_MAX,
    Alert,
    AlertRule,
    AlertState,
    Alias,
    Comparison,
    Deployment,
    DeploymentEvent,
    DeploymentEventKind,
    DeploymentOrigin,
    DeploymentStatus,
    Environment,
    ModelVersion,
    ModelVersionTag,
    MonitoringMetric,
    RegisteredModel,
    RegisteredModelTag,
    Stage,
    StageTransition,
    VersionStatus,
    Webhook,
    WebhookDelivery,
    WebhookEventType,
)

MAX_TAGS = 100
MAX_ALERT_RULES = 50
MAX_WINDOW_SECONDS = 7 * 24 * 3600
ALIAS_RE = re.compile(r"^[\w\-]+$")
RESERVED_ALIAS_RE = re.compile(r"^(latest|v\d+)$", re.IGNORECASE)
RUNS_URI_RE = re.compile(r"^runs:/(?P<run_id>[0-9a-fA-F]{32})(?:/(?P<path>.*))?$")
STAGES_BY_LOWER = {stage.value.lower(): Stage(stage.value) for stage in Stage}


# --------------------------------------------------------------------------- validation helpers


def _text(value: Any, field: str, *, max_length: int, allow_blank: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.", details={field: ["Must be a string."]})
    value = value.strip()
    if not value and not allow_blank:
        raise InvalidInput(f"{field} must not be empty.", details={field: ["This field may not be blank."]})
    if len(value) > max_length:
        raise InvalidInput(
            f"{field} is longer than the limit of {max_length} characters.",
            details={field: [f"At most {max_length} characters."]},
        )
    return limits.check_storable_text(value, where=field)


def _description(value: Any, field: str = "description") -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string.", details={field: ["Must be a string."]})
    if len(value) > TAG_VALUE_MAX:
        raise InvalidInput(f"{field} is longer than the limit of {TAG_VALUE_MAX} characters.")
    return limits.check_storable_text(value, where=field)


def _tag(key: Any, value: Any) -> tuple[str, str]:
    key = _text(key, "tag key", max_length=KEY_MAX)
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"Tag {key!r}: value must be a string.")
    if len(value) > TAG_VALUE_MAX:
        raise InvalidInput(f"Tag {key!r}: value is longer than the limit of {TAG_VALUE_MAX} characters.")
    return key, limits.check_storable_text(value, where=f"Tag {key!r} value")


def _tags(tags: Any) -> dict[str, str]:
    """Tags given as a mapping or a list of ``{key, value}``; at most MAX_TAGS."""
    if tags is None:
        return {}
    if isinstance(tags, dict):
        items = list(tags.items())
    elif isinstance(tags, list | tuple):
        items = []
        for item in tags:
            if not isinstance(item, dict) or "key" not in item:
                raise InvalidInput("Each tag must be an object with 'key' and 'value'.")
            items.append((item["key"], item.get("value", "")))
    else:
        raise InvalidInput("tags must be an object or a list of {key, value}.")
    if len(items) > MAX_TAGS:
        raise InvalidInput(f"Too many tags: {len(items)} given, the limit is {MAX_TAGS}.")
    return dict(_tag(key, value) for key, value in items)


def _touch(model: RegisteredModel) -> None:
    RegisteredModel.objects.filter(pk=model.pk).update(updated_at=timezone.now())


def _audit(action: str, *, actor: Any, target: Any, details: dict[str, Any] | None = None, request: Any = None) -> None:
    record_event(action=action, actor=actor, request=request, target=target, details=details)


def _username(user: Any) -> str:
    return user.get_username() if user is not None and user.is_authenticated else ""


# --------------------------------------------------------------------------- registered models


@transaction.atomic
def registered_model_create(
    *, user: Any, team: Team, name: str, description: str = "", tags: Any = None, request: Any = None
) -> RegisteredModel:
    """Register a new model name in a team (editor)."""
    authorize(user, Action.WRITE, team, label="Team")
    name = _text(name, "name", max_length=NAME_MAX)
    description = _description(description)
    tag_items = _tags(tags)
    if RegisteredModel.objects.filter(team=team, name=name).exists():
        raise Conflict(f"Registered model {name!r} already exists in team {team.name!r}.")
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(team=team, name=name, description=description, created_by=user)
    except IntegrityError as exc:  # lost a race with a concurrent create of the same name
        raise Conflict(f"Registered model {name!r} already exists in team {team.name!r}.") from exc
    RegisteredModelTag.objects.bulk_create(
        [RegisteredModelTag(model=model, key=key, value=value) for key, value in tag_items.items()]
    )
    _audit("registry.model.create", actor=user, request=request, target=model)
    return model


def _set_description(user: Any, obj: RegisteredModel | ModelVersion, description: str, label: str) -> None:
    """Authorize a write on ``obj`` (editor), then store its new description and ``updated_at``."""
    authorize(user, Action.WRITE, obj, label=label)
    obj.description = _description(description)
    obj.updated_at = timezone.now()
    obj.save(update_fields=["description", "updated_at"])


@transaction.atomic
def registered_model_update(*, user: Any, model: RegisteredModel, description: str) -> RegisteredModel:
    """Change a model's description (editor)."""
    _set_description(user, model, description, "Registered model")
    return model


@transaction.atomic
def registered_model_rename(
    *, user: Any, model: RegisteredModel, new_name: str, request: Any = None
) -> RegisteredModel:
    """Rename a model within its team (editor); the new name must be free."""
    authorize(user, Action.WRITE, model, label="Registered model")
    new_name = _text(new_name, "name", max_length=NAME_MAX)
    if new_name == model.name:
        return model
    if RegisteredModel.objects.filter(team_id=model.team_id, name=new_name).exists():
        raise Conflict(f"Registered model {new_name!r} already exists in this team.")
    old_name = model.name
    model.name = new_name
    model.updated_at = timezone.now()
    try:
        with transaction.atomic():
            model.save(update_fields=["name", "updated_at"])
    except IntegrityError as exc:
        raise Conflict(f"Registered model {new_name!r} already exists in this team.") from exc
    _audit(
        "registry.model.rename", actor=user, request=request, target=model, details={"from": old_name, "to": new_name}
    )
    return model


def deployment_history_conflict(deployments: QuerySet[Deployment], what: str) -> Conflict | None:
    """The 409 refusing to delete ``what`` (a model or a version) when it was ever deployed; None if never.

    Deployments and their events are the release history (who put which version where, and when), so they
    are never deleted with the version they deployed (``Deployment.version``/``model`` are PROTECT too).
    Shared by the services and the admin's delete pages.
    """
    rows = list(deployments.values_list("status", "environment__name"))
    if not rows:
        return None
    environments = sorted({name for _, name in rows})
    active = sorted({status for status, _ in rows if status in (DeploymentStatus.LIVE, DeploymentStatus.PENDING)})
    now = f" ({' and '.join(active)} now)" if active else ""
    return Conflict(
        f"{what} has been deployed ({len(rows)} deployment{'s' if len(rows) != 1 else ''}{now}, to "
        f"{', '.join(environments)}). Its deployment history (who deployed it where, and when) is kept, so it "
        "cannot be deleted; archive it instead (stage Archived).",
        code="deployment_history",
        details={"deployments": len(rows), "environments": environments, "active": active},
    )


def _delete_keeping_history(obj: RegisteredModel | ModelVersion, deployments: QuerySet[Deployment], what: str) -> None:
    """Delete ``obj`` unless it was deployed; a deployment created meanwhile still refuses it (PROTECT)."""
    conflict = deployment_history_conflict(deployments, what)
    if conflict is not None:
        raise conflict
    try:
        with transaction.atomic():
            obj.delete()
    except ProtectedError as exc:  # deployed concurrently, after the check above
        raise deployment_history_conflict(deployments, what) or Conflict(f"{what} cannot be deleted.") from exc


@transaction.atomic
def registered_model_delete(*, user: Any, model: RegisteredModel, request: Any = None) -> None:
    """Delete a model with its versions (admin); refused (409) when any of its versions was ever deployed."""
    authorize(user, Action.DELETE, model, label="Registered model")
    _audit("registry.model.delete", actor=user, request=request, target=model, details={"name": model.name})
    _delete_keeping_history(model, model.deployments.all(), f"Registered model {model.name!r}")


@transaction.atomic
def registered_model_set_tag(*, user: Any, model: RegisteredModel, key: str, value: str) -> RegisteredModelTag:
    """Set (create or overwrite) a tag on a model (editor)."""
    authorize(user, Action.WRITE, model, label="Registered model")
    key, value = _tag(key, value)
    tag, _ = RegisteredModelTag.objects.update_or_create(model=model, key=key, defaults={"value": value})
    _touch(model)
    return tag


@transaction.atomic
def registered_model_delete_tag(*, user: Any, model: RegisteredModel, key: str) -> None:
    """Remove a tag from a model (editor); 404 when it is not set."""
    authorize(user, Action.WRITE, model, label="Registered model")
    deleted, _ = RegisteredModelTag.objects.filter(model=model, key=key).delete()
    if not deleted:
        raise NotFound(f"Registered model {model.name!r} has no tag {key!r}.")
    _touch(model)


# --------------------------------------------------------------------------- model versions


def _resolve_run(*, user: Any, source: str, run: Any) -> tuple[Any, str | None]:
    """The run a version comes from and the artifact path inside it to check (None: nothing to check)."""
    from experiments.models import Run

    match = RUNS_URI_RE.match(source)
    run_uuid = match.group("run_id").lower() if match else None
    if isinstance(run, str):
        run_uuid_arg = run.strip().lower()
        if run_uuid and run_uuid != run_uuid_arg:
            raise InvalidInput(f"source {source!r} points at another run than run_id {run!r}.")
        run_uuid, run = run_uuid_arg, None
    elif run is not None and run_uuid and run.run_uuid != run_uuid:
        raise InvalidInput(f"source {source!r} points at another run than run_id {run.run_uuid!r}.")
    if run is None and run_uuid:
        run = Run.objects.filter(run_uuid=run_uuid).first()
        if run is None:
            raise NotFound(f"Run {run_uuid} not found.")
    if run is None:
        return None, None
    authorize(user, Action.READ, run, label="Run")
    if run.lifecycle_stage != "active":
        raise InvalidInput(f"Run {run.run_uuid} is deleted; restore it before registering a version from it.")
    if match:
        return run, match.group("path") or ""
    base = (run.artifact_uri or "").rstrip("/")
    if base and source.startswith(base + "/"):
        return run, source[len(base) + 1 :]
    if base and source.rstrip("/") == base:
        return run, ""
    return run, None


def _check_artifact_path(run: Any, path: str) -> None:
    """The artifact ``path`` must exist in the run (a file or a directory)."""
    from experiments import artifacts

    path = path.strip("/")
    if not path:
        return
    path = artifacts.safe_artifact_path(path)
    parent, _, _name = path.rpartition("/")
    entries = artifacts.artifact_list(run, parent)
    if not any(_entry_path(entry).strip("/") == path for entry in entries):
        raise InvalidInput(f"Run {run.run_uuid} has no artifact at {path!r}; log the model before registering it.")


def _entry_path(entry: Any) -> str:
    return entry["path"] if isinstance(entry, dict) else entry.path


@transaction.atomic
def model_version_create(
    *,
    user: Any,
    model: RegisteredModel,
    source: str,
    run: Any = None,
    description: str = "",
    tags: Any = None,
    run_link: str = "",
) -> ModelVersion:
    """Register the next version (1, 2, 3… without gaps) of a model from an artifact source (editor).

    With a run (given, or named by ``runs:/<run_id>/path``) the run must exist and be readable by the user,
    and a path inside its artifacts must exist.
    """
    authorize(user, Action.WRITE, model, label="Registered model")
    source = _text(source, "source", max_length=SOURCE_MAX)
    run_link = _text(run_link or "", "run_link", max_length=SOURCE_MAX, allow_blank=True)
    description = _description(description)
    tag_items = _tags(tags)
    run, artifact_path = _resolve_run(user=user, source=source, run=run)
    if artifact_path is not None:
        _check_artifact_path(run, artifact_path)
    # The row lock serialises numbering per model; the unique (model, version) constraint backs it up.
    locked = RegisteredModel.objects.select_for_update().get(pk=model.pk)
    number = locked.last_version + 1
    now = timezone.now()
    RegisteredModel.objects.filter(pk=model.pk).update(last_version=number, updated_at=now)
    model.last_version, model.updated_at = number, now
    version = ModelVersion.objects.create(
        model=model,
        team_id=model.team_id,
        version=number,
        source=source,
        run=run,
        run_link=run_link,
        description=description,
        status=VersionStatus.READY,
        created_by=user,
        created_at=now,
        updated_at=now,
    )
    ModelVersionTag.objects.bulk_create(
        [ModelVersionTag(version=version, key=key, value=value) for key, value in tag_items.items()]
    )
    webhooks.enqueue_event(
        team_id=model.team_id,
        event_type=WebhookEventType.VERSION_CREATED,
        data={"model_version": _version_data(version), "actor": _username(user)},
    )
    return version


def _version_data(version: ModelVersion) -> dict[str, Any]:
    return {
        "model_id": version.model_id,
        "name": version.model.name,
        "version": version.version,
        "source": version.source,
        "run_id": version.run.run_uuid if version.run_id else None,
        "current_stage": version.current_stage,
        "status": version.status,
    }


@transaction.atomic
def model_version_update(*, user: Any, version: ModelVersion, description: str) -> ModelVersion:
    """Change a version's description (editor)."""
    _set_description(user, version, description, "Model version")
    return version


@transaction.atomic
def model_version_delete(*, user: Any, version: ModelVersion, request: Any = None) -> None:
    """Delete a version (admin); its number is never reused. Refused (409) when it was ever deployed."""
    authorize(user, Action.DELETE, version, label="Model version")
    _audit("registry.version.delete", actor=user, request=request, target=version, details={"version": version.version})
    _delete_keeping_history(version, version.deployments.all(), f"Version {version.version} of {version.model.name!r}")
    _touch(version.model)


@transaction.atomic
def model_version_set_tag(*, user: Any, version: ModelVersion, key: str, value: str) -> ModelVersionTag:
    """Set a tag on a version (editor)."""
    authorize(user, Action.WRITE, version, label="Model version")
    key, value = _tag(key, value)
    tag, _ = ModelVersionTag.objects.update_or_create(version=version, key=key, defaults={"value": value})
    ModelVersion.objects.filter(pk=version.pk).update(updated_at=timezone.now())
    return tag


@transaction.atomic
def model_version_delete_tag(*, user: Any, version: ModelVersion, key: str) -> None:
    """Remove a tag from a version (editor); 404 when it is not set."""
    authorize(user, Action.WRITE, version, label="Model version")
    deleted, _ = ModelVersionTag.objects.filter(version=version, key=key).delete()
    if not deleted:
        raise NotFound(f"Version {version.version} has no tag {key!r}.")


def parse_stage(stage: Any) -> Stage:
    """MLflow stage names, case-insensitive ("production" → "Production")."""
    if not isinstance(stage, str) or stage.strip().lower() not in STAGES_BY_LOWER:
        allowed = ", ".join(s.value for s in Stage)
        raise InvalidInput(f"Invalid stage {stage!r}; use one of {allowed}.")
    return STAGES_BY_LOWER[stage.strip().lower()]


@transaction.atomic
def model_version_transition_stage(
    *,
    user: Any,
    version: ModelVersion,
    stage: str,
    archive_existing_versions: bool = False,
    comment: str = "",
    request: Any = None,
) -> ModelVersion:
    """Move a version to an MLflow stage (editor), optionally archiving the model's other versions in it."""
    authorize(user, Action.WRITE, version, label="Model version")
    target = parse_stage(stage)
    comment = _description(comment, "comment")
    if archive_existing_versions and target not in (Stage.STAGING, Stage.PRODUCTION):
        raise InvalidInput("archive_existing_versions applies only to the Staging and Production stages.")
    RegisteredModel.objects.select_for_update().get(pk=version.model_id)  # one transition per model at a time
    version.refresh_from_db(fields=["current_stage"])
    now = timezone.now()
    transitions = []
    archived = []
    if archive_existing_versions:
        archived = list(
            ModelVersion.objects.filter(model_id=version.model_id, current_stage=target).exclude(pk=version.pk)
        )
        ModelVersion.objects.filter(pk__in=[v.pk for v in archived]).update(
            current_stage=Stage.ARCHIVED, updated_at=now
        )
        transitions += [
            StageTransition(
                version=other,
                from_stage=target,
                to_stage=Stage.ARCHIVED,
                user=user,
                comment=f"Archived when version {version.version} moved to {target}.",
                created_at=now,
            )
            for other in archived
        ]
    previous = version.current_stage
    transitions.append(
        StageTransition(
            version=version, from_stage=previous, to_stage=target, user=user, comment=comment, created_at=now
        )
    )
    version.current_stage = target
    version.updated_at = now
    version.save(update_fields=["current_stage", "updated_at"])
    StageTransition.objects.bulk_create(transitions)
    _touch(version.model)
    details = {
        "version": version.version,
        "from": previous,
        "to": target.value,
        "archived_versions": [v.version for v in archived],
    }
    _audit("registry.version.stage", actor=user, request=request, target=version, details=details)
    webhooks.enqueue_event(
        team_id=version.team_id,
        event_type=WebhookEventType.STAGE_CHANGED,
        data={"model_version": _version_data(version), **details, "comment": comment, "actor": _username(user)},
    )
    return version


def _alias_name(alias: Any) -> str:
    alias = _text(alias, "alias", max_length=NAME_MAX)
    if not ALIAS_RE.match(alias):
        raise InvalidInput(f"Invalid alias {alias!r}: use letters, digits, '_' and '-'.")
    if RESERVED_ALIAS_RE.match(alias):
        raise InvalidInput(f"Alias {alias!r} is reserved ('latest' and 'v<number>' name versions).")
    return alias


@transaction.atomic
def alias_set(
    *, user: Any, model: RegisteredModel, alias: str, version: ModelVersion | int, request: Any = None
) -> Alias:
    """Point ``alias`` at a version of the model (editor); an existing alias moves in one UPDATE."""
    authorize(user, Action.WRITE, model, label="Registered model")
    alias = _alias_name(alias)
    if isinstance(version, ModelVersion):
        if version.model_id != model.pk:
            raise InvalidInput(f"Version {version.version} belongs to another model.")
    else:
        if isinstance(version, bool) or not isinstance(version, int):
            raise InvalidInput("version must be a version number.")
        found = ModelVersion.objects.filter(model=model, version=version).first()
        if found is None:
            raise NotFound(f"Registered model {model.name!r} has no version {version}.")
        version = found
    RegisteredModel.objects.select_for_update().get(pk=model.pk)
    current = Alias.objects.filter(model=model, alias=alias).first()
    previous = current.version.version if current else None
    if current is None:
        current = Alias.objects.create(model=model, alias=alias, version=version, updated_by=user)
    else:
        current.version, current.updated_by, current.updated_at = version, user, timezone.now()
        current.save(update_fields=["version", "updated_by", "updated_at"])
    details = {"alias": alias, "from_version": previous, "to_version": version.version}
    _audit("registry.alias.set", actor=user, request=request, target=model, details=details)
    webhooks.enqueue_event(
        team_id=model.team_id,
        event_type=WebhookEventType.ALIAS_CHANGED,
        data={"model_id": model.pk, "name": model.name, **details, "actor": _username(user)},
    )
    return current


@transaction.atomic
def alias_delete(*, user: Any, model: RegisteredModel, alias: str, request: Any = None) -> None:
    """Remove an alias (editor); 404 when it does not exist."""
    authorize(user, Action.WRITE, model, label="Registered model")
    current = Alias.objects.filter(model=model, alias=alias).select_related("version").first()
    if current is None:
        raise NotFound(f"Registered model {model.name!r} has no alias {alias!r}.")
    details = {"alias": alias, "from_version": current.version.version, "to_version": None}
    current.delete()
    _audit("registry.alias.delete", actor=user, request=request, target=model, details=details)
    webhooks.enqueue_event(
        team_id=model.team_id,
        event_type=WebhookEventType.ALIAS_CHANGED,
        data={"model_id": model.pk, "name": model.name, **details, "actor": _username(user)},
    )


# --------------------------------------------------------------------------- environments


def _position(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput("position must be a whole number ≥ 0.")
    return value


@transaction.atomic
def environment_create(
    *, user: Any, team: Team, name: str, position: int | None = None, description: str = "", request: Any = None
) -> Environment:
    """Add an environment to a team's promotion path (admin); by default it goes last."""
    authorize(user, Action.MANAGE, team, label="Team")
    name = _text(name, "name", max_length=100)
    description = _description(description)
    if position is None:
        highest = Environment.objects.filter(team=team).aggregate(top=Max("position"))["top"]
        position = 0 if highest is None else highest + 1
    position = _position(position)
    if Environment.objects.filter(team=team, name=name).exists():
        raise Conflict(f"Environment {name!r} already exists in team {team.name!r}.")
    if Environment.objects.filter(team=team, position=position).exists():
        raise Conflict(f"Another environment of team {team.name!r} already has position {position}.")
    try:
        with transaction.atomic():
            environment = Environment.objects.create(team=team, name=name, position=position, description=description)
    except IntegrityError as exc:
        raise Conflict(f"Environment {name!r} or position {position} already exists in this team.") from exc
    _audit("registry.environment.create", actor=user, request=request, target=environment, details={"name": name})
    return environment


@transaction.atomic
def environment_update(
    *,
    user: Any,
    environment: Environment,
    name: str | None = None,
    position: int | None = None,
    description: str | None = None,
) -> Environment:
    """Rename, re-order or describe an environment (admin)."""
    authorize(user, Action.MANAGE, environment, label="Environment")
    siblings = Environment.objects.filter(team_id=environment.team_id).exclude(pk=environment.pk)
    if name is not None:
        name = _text(name, "name", max_length=100)
        if siblings.filter(name=name).exists():
            raise Conflict(f"Environment {name!r} already exists in this team.")
        environment.name = name
    if position is not None:
        position = _position(position)
        if siblings.filter(position=position).exists():
            raise Conflict(f"Another environment of this team already has position {position}.")
        environment.position = position
    if description is not None:
        environment.description = _description(description)
    try:
        with transaction.atomic():
            environment.save()
    except IntegrityError as exc:
        raise Conflict("Another environment of this team has that name or position.") from exc
    return environment


@transaction.atomic
def environment_delete(*, user: Any, environment: Environment, request: Any = None) -> None:
    """Delete an environment that has never been deployed to (admin)."""
    authorize(user, Action.MANAGE, environment, label="Environment")
    if environment.deployments.exists():
        raise Conflict(f"Environment {environment.name!r} has deployments; it is kept for their history.")
    _audit(
        "registry.environment.delete",
        actor=user,
        request=request,
        target=environment,
        details={"name": environment.name},
    )
    environment.delete()


# --------------------------------------------------------------------------- deployments


def _bump_seq(deployment: Deployment, count: int = 1) -> int:
    """Reserve ``count`` sequence numbers on the deployment; returns the last one.

    ``status`` is re-read with it: the row is locked by the UPDATE, so what follows (alert evaluation of a
    metric batch) sees the status as stored now, not as the caller loaded it.
    """
    Deployment.objects.filter(pk=deployment.pk).update(last_seq=F("last_seq") + count)
    deployment.last_seq, deployment.status = Deployment.objects.values_list("last_seq", "status").get(pk=deployment.pk)
    return deployment.last_seq


def deployment_data(deployment: Deployment) -> dict[str, Any]:
    """A deployment as it appears in live messages and webhook payloads."""
    return {
        "id": deployment.pk,
        "model_id": deployment.model_id,
        "model": deployment.model.name,
        "version": deployment.version.version,
        "environment_id": deployment.environment_id,
        "environment": deployment.environment.name,
        "status": deployment.status,
        "origin": deployment.origin,
        "endpoint_url": deployment.endpoint_url,
    }


def _event(
    deployment: Deployment,
    *,
    kind: str,
    actor: Any,
    from_status: str = "",
    to_status: str = "",
    message: str = "",
    details: dict[str, Any] | None = None,
) -> DeploymentEvent:
    """Record one deployment event with the next seq and announce it after commit."""
    seq = _bump_seq(deployment)
    event = DeploymentEvent.objects.create(
        deployment=deployment,
        seq=seq,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        message=message,
        details=webhooks.json_safe(details or {}),
        actor=actor if actor is not None and actor.is_authenticated else None,
    )
    live_kind = "alert" if kind in (DeploymentEventKind.ALERT_RAISED, DeploymentEventKind.ALERT_RESOLVED) else "status"
    publish_after_commit(
        deployment_group(deployment.pk),
        {
            "type": "deployment.event",
            "v": 1,
            "deployment_id": deployment.pk,
            "seq": seq,
            "kind": live_kind,
            "event": event_data(event),
            "deployment": deployment_data(deployment),
        },
    )
    return event


def event_data(event: DeploymentEvent) -> dict[str, Any]:
    """A deployment event as it appears in live messages."""
    return {
        "seq": event.seq,
        "kind": event.kind,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "message": event.message,
        "details": event.details,
        "actor": event.actor.get_username() if event.actor_id else None,
        "created_at": event.created_at.isoformat(),
    }


def _announce(deployment: Deployment, *, actor: Any, action: str, details: dict[str, Any], request: Any = None) -> None:
    """Audit event + ``deployment.changed`` webhook for a deployment change."""
    _audit(f"deployment.{action}", actor=actor, request=request, target=deployment, details=details)
    webhooks.enqueue_event(
        team_id=deployment.team_id,
        event_type=WebhookEventType.DEPLOYMENT_CHANGED,
        data={"action": action, "deployment": deployment_data(deployment), **details, "actor": _username(actor)},
    )


def _set_status(deployment: Deployment, status: str, *, actor: Any, message: str) -> None:
    previous = deployment.status
    now = timezone.now()
    deployment.status = status
    deployment.updated_at = now
    fields = ["status", "updated_at"]
    if status == DeploymentStatus.RETIRED:
        deployment.retired_at = now
        fields.append("retired_at")
    if status == DeploymentStatus.LIVE:
        deployment.went_live_at = now
        fields.append("went_live_at")
    deployment.save(update_fields=fields)
    _event(
        deployment,
        kind=DeploymentEventKind.STATUS,
        actor=actor,
        from_status=previous,
        to_status=status,
        message=message,
    )
    if status not in ALERTING_STATUSES:
        _resolve_firing(
            deployment, Alert.objects.filter(deployment=deployment), actor=actor, reason=f"deployment {status}"
        )


def _retire_live(*, model_id: int, environment: Environment, actor: Any, message: str) -> list[Deployment]:
    """Retire whatever is live for (model, environment), locking it first."""
    current = list(
        Deployment.objects.select_for_update(of=("self",))
        .select_related("model", "version", "environment")
        .filter(model_id=model_id, environment=environment, status=DeploymentStatus.LIVE)
    )
    for deployment in current:
        _set_status(deployment, DeploymentStatus.RETIRED, actor=actor, message=message)
    return current


def _lost_race(version: ModelVersion, environment: Environment) -> Conflict:
    return Conflict(
        f"Another deployment of {version.model.name!r} to {environment.name!r} went live at the same time; "
        "reload the deployments and retry.",
        code="concurrent_deployment",
    )


def _go_live(
    *,
    user: Any,
    version: ModelVersion,
    environment: Environment,
    origin: str,
    source: Deployment | None,
    endpoint_url: str,
    config: dict[str, Any],
    kind: str,
    message: str,
) -> tuple[Deployment, list[Deployment]]:
    """Retire the live deployment of (model, environment) and insert the new live one.

    Two concurrent callers cannot both win: the partial unique index on live deployments makes the loser's
    INSERT fail, which becomes a 409.
    """
    retired = _retire_live(
        model_id=version.model_id,
        environment=environment,
        actor=user,
        message=f"Replaced by version {version.version} ({origin}).",
    )
    now = timezone.now()
    try:
        with transaction.atomic():
            deployment = Deployment.objects.create(
                team_id=version.team_id,
                model_id=version.model_id,
                version=version,
                environment=environment,
                status=DeploymentStatus.LIVE,
                origin=origin,
                source=source,
                endpoint_url=endpoint_url,
                config=config,
                created_by=user,
                created_at=now,
                updated_at=now,
                went_live_at=now,
            )
    except IntegrityError as exc:
        raise _lost_race(version, environment) from exc
    details = {"version": version.version, "environment": environment.name}
    if retired:
        details["replaced_version"] = retired[0].version.version
        details["replaced_deployment"] = retired[0].pk
    _event(deployment, kind=kind, actor=user, to_status=DeploymentStatus.LIVE, message=message, details=details)
    return deployment, retired


def _deploy_inputs(endpoint_url: Any, config: Any) -> tuple[str, dict[str, Any]]:
    endpoint_url = _text(endpoint_url or "", "endpoint_url", max_length=SOURCE_MAX, allow_blank=True)
    if endpoint_url and urlsplit(endpoint_url).scheme not in {"http", "https"}:
        raise InvalidInput("endpoint_url must be an http(s) URL.")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidInput("config must be a JSON object.")
    return endpoint_url, config


@transaction.atomic
def deploy(
    *,
    user: Any,
    version: ModelVersion,
    environment: Environment,
    endpoint_url: str = "",
    config: dict[str, Any] | None = None,
    activate: bool = True,
    comment: str = "",
    request: Any = None,
) -> Deployment:
    """Deploy a version to an environment (admin). Live at once, or ``pending`` until a status report."""
    authorize(user, Action.DEPLOY, version, label="Model version")
    authorize(user, Action.READ, environment, label="Environment")
    if environment.team_id != version.team_id:
        raise InvalidInput(f"Environment {environment.name!r} belongs to another team than the model.")
    if version.status != VersionStatus.READY:
        raise InvalidInput(f"Version {version.version} is {version.status}; only READY versions can be deployed.")
    endpoint_url, config = _deploy_inputs(endpoint_url, config)
    comment = _description(comment, "comment")
    if activate:
        if Deployment.objects.filter(
            model_id=version.model_id, environment=environment, version=version, status=DeploymentStatus.LIVE
        ).exists():
            raise Conflict(f"Version {version.version} is already live in {environment.name!r}.")
        deployment, retired = _go_live(
            user=user,
            version=version,
            environment=environment,
            origin=DeploymentOrigin.DEPLOY,
            source=None,
            endpoint_url=endpoint_url,
            config=config,
            kind=DeploymentEventKind.CREATED,
            message=comment or f"Deployed version {version.version} to {environment.name}.",
        )
    else:
        deployment = Deployment.objects.create(
            team_id=version.team_id,
            model_id=version.model_id,
            version=version,
            environment=environment,
            status=DeploymentStatus.PENDING,
            endpoint_url=endpoint_url,
            config=config,
            created_by=user,
        )
        retired = []
        _event(
            deployment,
            kind=DeploymentEventKind.CREATED,
            actor=user,
            to_status=DeploymentStatus.PENDING,
            message=comment or f"Deployment of version {version.version} to {environment.name} requested.",
        )
    _announce(
        deployment,
        actor=user,
        request=request,
        action="deploy",
        details={"version": version.version, "environment": environment.name, "retired": [d.pk for d in retired]},
    )
    return deployment


@transaction.atomic
def promote(
    *,
    user: Any,
    deployment: Deployment,
    endpoint_url: str = "",
    config: dict[str, Any] | None = None,
    comment: str = "",
    request: Any = None,
) -> Deployment:
    """Deploy a live deployment's version to the next environment of the promotion path (admin)."""
    authorize(user, Action.DEPLOY, deployment, label="Deployment")
    deployment = Deployment.objects.select_related("model", "version", "environment").get(pk=deployment.pk)
    if deployment.status != DeploymentStatus.LIVE:
        raise Conflict(f"Only a live deployment can be promoted; this one is {deployment.status}.")
    current_env = deployment.environment
    target = (
        Environment.objects.filter(team_id=deployment.team_id, position__gt=current_env.position)
        .order_by("position")
        .first()
    )
    if target is None:
        raise Conflict(
            f"{current_env.name!r} is the last environment of the promotion path; there is nowhere to promote to."
        )
    version = deployment.version
    if Deployment.objects.filter(
        model_id=version.model_id, environment=target, version=version, status=DeploymentStatus.LIVE
    ).exists():
        raise Conflict(f"Version {version.version} is already live in {target.name!r}.")
    endpoint_url, config = _deploy_inputs(endpoint_url, deployment.config if config is None else config)
    comment = _description(comment, "comment")
    promoted, retired = _go_live(
        user=user,
        version=version,
        environment=target,
        origin=DeploymentOrigin.PROMOTE,
        source=deployment,
        endpoint_url=endpoint_url,
        config=config,
        kind=DeploymentEventKind.PROMOTED,
        message=comment or f"Promoted version {version.version} from {current_env.name} to {target.name}.",
    )
    _announce(
        promoted,
        actor=user,
        request=request,
        action="promote",
        details={
            "version": version.version,
            "from_environment": current_env.name,
            "environment": target.name,
            "retired": [d.pk for d in retired],
        },
    )
    return promoted


@transaction.atomic
def rollback(
    *, user: Any, model: RegisteredModel, environment: Environment, comment: str = "", request: Any = None
) -> Deployment:
    """Put the previously live version of a model back live in an environment (admin).

    "Current" is the live deployment there or, when the newest deployment to have gone live has since
    been reported failed, that failed one (rolling back is what one does about it). "Previous" is the
    most recently live deployment there whose version differs from the current one; when there is
    none, nothing changes and the answer is a 409 saying so.
    """
    authorize(user, Action.DEPLOY, model, label="Registered model")
    if environment.team_id != model.team_id:
        raise InvalidInput(f"Environment {environment.name!r} belongs to another team than the model.")
    current = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("version")
        .filter(model=model, environment=environment, status=DeploymentStatus.LIVE)
        .first()
    )
    if current is None:
        newest = (
            Deployment.objects.select_related("version")
            .filter(model=model, environment=environment, went_live_at__isnull=False)
            .order_by("-went_live_at", "-id")
            .first()
        )
        if newest is None or newest.status != DeploymentStatus.FAILED:
            raise Conflict(
                f"{model.name!r} has no live deployment in {environment.name!r}; there is nothing to roll back."
            )
        current = newest
    previous = (
        Deployment.objects.select_related("version", "version__model")
        .filter(model=model, environment=environment, went_live_at__isnull=False)
        .exclude(version_id=current.version_id)
        .order_by("-went_live_at", "-id")
        .first()
    )
    if previous is None:
        raise Conflict(
            f"No previous version of {model.name!r} was live in {environment.name!r}; "
            f"version {current.version.version} is the only one deployed there, so there is nothing to roll back to.",
            code="no_previous_version",
        )
    comment = _description(comment, "comment")
    restored, retired = _go_live(
        user=user,
        version=previous.version,
        environment=environment,
        origin=DeploymentOrigin.ROLLBACK,
        source=previous,
        endpoint_url=previous.endpoint_url,
        config=previous.config,
        kind=DeploymentEventKind.ROLLED_BACK,
        message=comment
        or f"Rolled back {environment.name} from version {current.version.version} to {previous.version.version}.",
    )
    _announce(
        restored,
        actor=user,
        request=request,
        action="rollback",
        details={
            "from_version": current.version.version,
            "to_version": previous.version.version,
            "environment": environment.name,
            "retired": [d.pk for d in retired],
        },
    )
    return restored


ALLOWED_STATUS_CHANGES = {
    DeploymentStatus.PENDING: {DeploymentStatus.LIVE, DeploymentStatus.FAILED, DeploymentStatus.RETIRED},
    DeploymentStatus.LIVE: {DeploymentStatus.FAILED, DeploymentStatus.RETIRED},
    DeploymentStatus.FAILED: {DeploymentStatus.RETIRED},
    DeploymentStatus.RETIRED: set(),
}


@transaction.atomic
def deployment_set_status(
    *, user: Any, deployment: Deployment, status: str, message: str = "", request: Any = None
) -> Deployment:
    """Record a status report from the deployer (admin): pending → live/failed, live → failed/retired…"""
    authorize(user, Action.DEPLOY, deployment, label="Deployment")
    if status not in DeploymentStatus.values:
        raise InvalidInput(f"Invalid status {status!r}; use one of {', '.join(DeploymentStatus.values)}.")
    message = _description(message, "message")
    deployment = (
        Deployment.objects.select_for_update(of=("self",))
        .select_related("model", "version", "environment")
        .get(pk=deployment.pk)
    )
    if status not in ALLOWED_STATUS_CHANGES[DeploymentStatus(deployment.status)]:
        raise Conflict(f"A {deployment.status} deployment cannot become {status}.")
    if status == DeploymentStatus.LIVE:
        retired = _retire_live(
            model_id=deployment.model_id,
            environment=deployment.environment,
            actor=user,
            message=f"Replaced by version {deployment.version.version}.",
        )
        try:
            with transaction.atomic():
                _set_status(deployment, status, actor=user, message=message)
        except IntegrityError as exc:
            raise _lost_race(deployment.version, deployment.environment) from exc
        details: dict[str, Any] = {"status": status, "retired": [d.pk for d in retired]}
    else:
        _set_status(deployment, status, actor=user, message=message)
        details = {"status": status}
    _announce(deployment, actor=user, request=request, action="status", details=details)
    return deployment


# --------------------------------------------------------------------------- monitoring


COMPARE = {
    Comparison.GT: lambda mean, limit: mean > limit,
    Comparison.GTE: lambda mean, limit: mean >= limit,
    Comparison.LT: lambda mean, limit: mean < limit,
    Comparison.LTE: lambda mean, limit: mean <= limit,
}


# Alerts are about a serving deployment: a failed or retired one resolves its alerts and raises no more.
ALERTING_STATUSES = frozenset({DeploymentStatus.PENDING, DeploymentStatus.LIVE})


def _evaluate_rules(
    deployment: Deployment,
    newest: dict[str, int],
    *,
    actor: Any,
    rules: list[AlertRule] | None = None,
    reason: str = "",
) -> list[Alert]:
    """Evaluate the enabled rules on the metrics just ingested: one aggregate query for all of them.

    ``rules`` (default: the deployment's enabled rules on those metrics) and ``reason`` serve the
    re-evaluation of an edited rule (``_reevaluate_rule``): there a firing alert whose new window holds
    nothing to judge is resolved, since the condition it was raised for no longer exists.
    """
    if deployment.status not in ALERTING_STATUSES:
        return []
    if rules is None:
        rules = list(AlertRule.objects.filter(deployment=deployment, is_enabled=True, metric__in=list(newest)))
    if not rules:
        return []
    means = MonitoringMetric.objects.filter(deployment=deployment).aggregate(
        **{
            f"rule_{rule.pk}": Avg(
                "value",
                filter=Q(
                    key=rule.metric,
                    timestamp__gt=newest[rule.metric] - rule.window_seconds * 1000,
                    timestamp__lte=newest[rule.metric],
                ),
            )
            for rule in rules
        }
    )
    firing = {alert.rule_id: alert for alert in Alert.objects.filter(rule__in=rules, state=AlertState.FIRING)}
    changed = []
    for rule in rules:
        mean = means[f"rule_{rule.pk}"]
        open_alert = firing.get(rule.pk)
        if mean is None:  # only NaN points (or none) in the window: nothing to judge
            if reason and open_alert is not None:
                changed.append(_resolve_alert(deployment, rule, open_alert, actor=actor, value=None, reason=reason))
            continue
        breached = COMPARE[Comparison(rule.comparison)](mean, rule.threshold)
        if breached and open_alert is None:
            alert = Alert.objects.create(rule=rule, deployment=deployment, value=mean)
            _alert_changed(deployment, rule, alert, actor=actor, reason=reason)
            changed.append(alert)
        elif not breached and open_alert is not None:
            changed.append(_resolve_alert(deployment, rule, open_alert, actor=actor, value=mean, reason=reason))
    return changed


def _resolve_alert(
    deployment: Deployment, rule: AlertRule, alert: Alert, *, actor: Any, value: float | None, reason: str = ""
) -> Alert:
    """Resolve a firing alert and record it (``_alert_changed``); ``value`` None when there was nothing to judge."""
    alert.state = AlertState.RESOLVED
    alert.resolved_value = value
    alert.resolved_at = timezone.now()
    alert.save(update_fields=["state", "resolved_value", "resolved_at"])
    _alert_changed(deployment, rule, alert, actor=actor, reason=reason)
    return alert


def _resolve_firing(deployment: Deployment, alerts: QuerySet[Alert], *, actor: Any, reason: str) -> list[Alert]:
    """Resolve the firing ones of ``alerts`` for ``reason`` (not new points: nothing was judged), each recorded."""
    firing = alerts.filter(state=AlertState.FIRING).select_related("rule")
    return [_resolve_alert(deployment, alert.rule, alert, actor=actor, value=None, reason=reason) for alert in firing]


def _reevaluate_rule(rule: AlertRule, *, actor: Any, reason: str) -> list[Alert]:
    """After a rule changed: resolve its firing alert when it is off, else judge it anew on the stored points.

    The window ends at the newest stored point of the rule's metric, as it would on ingest.
    """
    deployment = rule.deployment
    if not rule.is_enabled or deployment.status not in ALERTING_STATUSES:
        return _resolve_firing(deployment, Alert.objects.filter(rule=rule), actor=actor, reason=reason)
    newest = MonitoringMetric.objects.filter(deployment=deployment, key=rule.metric).aggregate(t=Max("timestamp"))["t"]
    return _evaluate_rules(deployment, {rule.metric: newest or 0}, actor=actor, rules=[rule], reason=reason)


def alert_data(alert: Alert, rule: AlertRule) -> dict[str, Any]:
    """An alert as it appears in events, live messages and webhooks."""
    return {
        "id": alert.pk,
        "rule_id": rule.pk,
        "metric": rule.metric,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "window_seconds": rule.window_seconds,
        "state": alert.state,
        "value": alert.value if alert.state == AlertState.FIRING else alert.resolved_value,
        "raised_at": alert.raised_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def _alert_changed(deployment: Deployment, rule: AlertRule, alert: Alert, *, actor: Any, reason: str = "") -> None:
    """Record a raise or resolution: deployment event (and live message), ``monitoring.alert`` webhook.

    ``reason`` says why it changed when it was not new monitoring points (rule disabled, edited or deleted,
    deployment retired or failed); it goes into the message, the event details and the webhook payload.
    """
    raised = alert.state == AlertState.FIRING
    data = alert_data(alert, rule)
    if reason:
        data["reason"] = reason
    verb = "raised" if raised else "resolved"
    because = f" ({reason})" if reason else ""
    if data["value"] is None:
        judged = f"nothing to judge mean {rule.metric} over {rule.window_seconds}s on."
    else:
        judged = (
            f"mean {rule.metric} over {rule.window_seconds}s is {data['value']:.6g} "
            f"({rule.get_comparison_display()} {rule.threshold:g} is {'true' if raised else 'false'})."
        )
    _event(
        deployment,
        kind=DeploymentEventKind.ALERT_RAISED if raised else DeploymentEventKind.ALERT_RESOLVED,
        actor=actor,
        message=f"Alert {verb}{because}: {judged}",
        details={"alert": data},
    )
    webhooks.enqueue_event(
        team_id=deployment.team_id,
        event_type=WebhookEventType.MONITORING_ALERT,
        data={"alert": data, "deployment": deployment_data(deployment)},
    )


def _insert_points(deployment: Deployment, seq: int, points: list[tuple[str, float, int]]) -> None:
    """One multi-row INSERT for the whole batch (bulk_create splits it into 199-row chunks on SQLite)."""
    quote = connection.ops.quote_name
    table = quote(MonitoringMetric._meta.db_table)
    columns = ", ".join(quote(column) for column in ("deployment_id", "key", "value", "timestamp", "seq"))
    rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(points))
    params: list[Any] = []
    for key, value, timestamp in points:
        params.extend((deployment.pk, key, None if math.isnan(value) else value, timestamp, seq))
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {rows}", params)  # noqa: S608 (only placeholders)


@transaction.atomic
def monitoring_ingest(*, user: Any, deployment: Deployment, metrics: Any) -> int:
    """Store a batch of monitoring points (editor) and evaluate alert rules; returns the batch's seq.

    Constant number of queries whatever the batch size: one bulk INSERT for the points and one aggregate
    for every rule. NaN is stored as NULL, so it is ignored by the windowed means.
    """
    authorize(user, Action.WRITE, deployment, label="Deployment")
    points = [(p.key, p.value, p.timestamp) for p in limits.clean_metrics(metrics)]
    if deployment.status == DeploymentStatus.RETIRED:
        raise Conflict("This deployment is retired; it no longer accepts monitoring metrics.")
    if not points:
        return deployment.last_seq
    seq = _bump_seq(deployment)
    _insert_points(deployment, seq, points)
    grouped: dict[str, list[list[Any]]] = {}
    newest: dict[str, int] = {}
    for key, value, ts in points:
        grouped.setdefault(key, []).append([ts, value])
        newest[key] = max(ts, newest.get(key, ts))
    publish_after_commit(
        deployment_group(deployment.pk),
        {
            "type": "deployment.event",
            "v": 1,
            "deployment_id": deployment.pk,
            "seq": seq,
            "kind": "metrics",
            "metrics": grouped,
        },
    )
    _evaluate_rules(deployment, newest, actor=user)
    return seq


def _rule_inputs(metric: Any, comparison: Any, threshold: Any, window_seconds: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if metric is not None:
        values["metric"] = limits.validate_key(metric, where="metric")
    if comparison is not None:
        if comparison not in Comparison.values:
            raise InvalidInput(f"comparison must be one of {', '.join(Comparison.values)}.")
        values["comparison"] = comparison
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
            raise InvalidInput("threshold must be a finite number.")
        values["threshold"] = float(threshold)
    if window_seconds is not None:
        if (
            isinstance(window_seconds, bool)
            or not isinstance(window_seconds, int)
            or not 1 <= window_seconds <= MAX_WINDOW_SECONDS
        ):
            raise InvalidInput(f"window_seconds must be a whole number from 1 to {MAX_WINDOW_SECONDS}.")
        values["window_seconds"] = window_seconds
    return values


@transaction.atomic
def alert_rule_create(
    *,
    user: Any,
    deployment: Deployment,
    metric: str,
    comparison: str,
    threshold: float,
    window_seconds: int = 300,
    request: Any = None,
) -> AlertRule:
    """Add an alert rule to a deployment (admin)."""
    authorize(user, Action.DEPLOY, deployment, label="Deployment")
    if metric is None or comparison is None or threshold is None:
        raise InvalidInput("metric, comparison and threshold are required.")
    values = _rule_inputs(metric, comparison, threshold, window_seconds)
    if AlertRule.objects.filter(deployment=deployment).count() >= MAX_ALERT_RULES:
        raise InvalidInput(f"A deployment has at most {MAX_ALERT_RULES} alert rules.")
    rule = AlertRule.objects.create(deployment=deployment, created_by=user, **values)
    _audit("deployment.alert_rule.create", actor=user, request=request, target=deployment, details={"rule": str(rule)})
    return rule


@transaction.atomic
def alert_rule_update(
    *,
    user: Any,
    rule: AlertRule,
    comparison: str | None = None,
    threshold: float | None = None,
    window_seconds: int | None = None,
    is_enabled: bool | None = None,
    metric: str | None = None,
) -> AlertRule:
    """Change an alert rule's condition or switch it on/off (admin).

    Its firing alert does not outlive the change: switching the rule off resolves it, and a changed
    condition is judged again at once on the stored points (resolving or raising, recorded as usual).
    """
    authorize(user, Action.DEPLOY, rule.deployment, label="Deployment")
    values = _rule_inputs(metric, comparison, threshold, window_seconds)
    if is_enabled is not None:
        if not isinstance(is_enabled, bool):
            raise InvalidInput("is_enabled must be true or false.")
        values["is_enabled"] = is_enabled
    changed = sorted(field for field, value in values.items() if getattr(rule, field) != value)
    for field, value in values.items():
        setattr(rule, field, value)
    rule.save()
    if changed:
        reason = "rule disabled" if not rule.is_enabled else f"rule changed: {', '.join(changed)}"
        _reevaluate_rule(rule, actor=user, reason=reason)
    return rule


@transaction.atomic
def alert_rule_delete(*, user: Any, rule: AlertRule, request: Any = None) -> None:
    """Delete an alert rule and its alerts (admin); a firing one is resolved first, so the change is recorded."""
    authorize(user, Action.DEPLOY, rule.deployment, label="Deployment")
    _resolve_firing(rule.deployment, Alert.objects.filter(rule=rule), actor=user, reason="rule deleted")
    _audit(
        "deployment.alert_rule.delete", actor=user, request=request, target=rule.deployment, details={"rule": str(rule)}
    )
    rule.delete()


# --------------------------------------------------------------------------- webhooks

SUBSCRIBABLE = [t.value for t in WebhookEventType if t is not WebhookEventType.TEST]


def clean_webhook_url(url: Any) -> str:
    """A webhook URL: absolute http(s), host not resolving to a refused address (link-local always, private
    ones when ``WEBHOOK_ALLOW_PRIVATE_HOSTS`` is off); raises InvalidInput otherwise (API and admin)."""
    url = _text(url, "url", max_length=SOURCE_MAX)
    try:
        parts = urlsplit(url)
        valid = parts.scheme in {"http", "https"} and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:
        valid = False
    if not valid:
        raise InvalidInput("url must be an absolute http(s) URL.")
    refused = webhooks.check_url_host(url)
    if refused is not None:
        raise InvalidInput(f"url refused: {refused}.")
    return url


def clean_event_types(event_types: Any) -> list[str]:
    """Subscribed event types: a non-empty list drawn from SUBSCRIBABLE, sorted and de-duplicated."""
    if not isinstance(event_types, list | tuple) or not event_types:
        raise InvalidInput(f"event_types must be a non-empty list drawn from {', '.join(SUBSCRIBABLE)}.")
    unknown = [item for item in event_types if item not in SUBSCRIBABLE]
    if unknown:
        raise InvalidInput(f"Unknown event type(s) {unknown}; use {', '.join(SUBSCRIBABLE)}.")
    return sorted(set(event_types))


@transaction.atomic
def webhook_create(
    *, user: Any, team: Team, name: str, url: str, event_types: list[str], is_active: bool = True, request: Any = None
) -> Webhook:
    """Create a webhook (admin) with a fresh signing secret, readable only on the returned object."""
    authorize(user, Action.MANAGE, team, label="Team")
    webhook = Webhook.objects.create(
        team=team,
        name=_text(name, "name", max_length=100),
        url=clean_webhook_url(url),
        event_types=clean_event_types(event_types),
        is_active=bool(is_active),
        secret="whsec_" + secrets.token_urlsafe(32),
        created_by=user,
    )
    _audit(
        "webhook.create",
        actor=user,
        request=request,
        target=webhook,
        details={"url": webhook.url, "events": webhook.event_types},
    )
    return webhook


@transaction.atomic
def webhook_update(
    *,
    user: Any,
    webhook: Webhook,
    name: str | None = None,
    url: str | None = None,
    event_types: list[str] | None = None,
    is_active: bool | None = None,
    request: Any = None,
) -> Webhook:
    """Change a webhook's name, URL, subscriptions or active flag (admin)."""
    authorize(user, Action.MANAGE, webhook, label="Webhook")
    if name is not None:
        webhook.name = _text(name, "name", max_length=100)
    if url is not None:
        webhook.url = clean_webhook_url(url)
    if event_types is not None:
        webhook.event_types = clean_event_types(event_types)
    if is_active is not None:
        if not isinstance(is_active, bool):
            raise InvalidInput("is_active must be true or false.")
        webhook.is_active = is_active
    webhook.save()
    _audit(
        "webhook.update",
        actor=user,
        request=request,
        target=webhook,
        details={"url": webhook.url, "events": webhook.event_types, "active": webhook.is_active},
    )
    return webhook


@transaction.atomic
def webhook_delete(*, user: Any, webhook: Webhook, request: Any = None) -> None:
    """Delete a webhook and its delivery log (admin)."""
    authorize(user, Action.MANAGE, webhook, label="Webhook")
    _audit("webhook.delete", actor=user, request=request, target=webhook, details={"url": webhook.url})
    webhook.delete()


@transaction.atomic
def webhook_send_test(*, user: Any, webhook: Webhook) -> WebhookDelivery:
    """Queue a signed ``webhook.test`` delivery (admin); it is sent in the background after commit."""
    authorize(user, Action.MANAGE, webhook, label="Webhook")
    return webhooks.enqueue_test(webhook)
