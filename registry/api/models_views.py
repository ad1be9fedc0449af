"""Registered models, versions, tags, aliases and stage transitions."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Team
from accounts.services import personal_team_for
from mlplatform.api import CursorPagination, paginated
from mlplatform.errors import NotFound
from registry import selectors, services
from registry.api import serializers as s
from registry.api.base import RegistryView, query, valid
from registry.models import ModelVersion, RegisteredModel

SEARCH_PARAMS = [
    OpenApiParameter("filter", str, description="MLflow filter, e.g. name LIKE 'fraud%' AND tags.owner = 'ml'"),
    OpenApiParameter("order_by", str, many=True, description="e.g. 'name ASC' (repeatable)"),
    OpenApiParameter("max_results", int),
    OpenApiParameter("page_token", str),
]


def _model(request: Request, model_id: int) -> RegisteredModel:
    return selectors.registered_model_by_id(user=request.user, model_id=model_id)


def _version(request: Request, model_id: int, version: int) -> ModelVersion:
    return selectors.model_version_get(user=request.user, model=_model(request, model_id), version=version)


def _version_out(version: ModelVersion) -> dict:
    fresh = selectors.version_queryset().get(pk=version.pk)
    return s.VersionOutput(fresh).data


def _model_out(model: RegisteredModel) -> dict:
    return s.ModelOutput(selectors.model_queryset().get(pk=model.pk)).data


class ModelListView(RegistryView):
    """Registered models of the caller's teams; POST registers a new name."""

    pagination_class = CursorPagination

    @extend_schema(parameters=[s.ModelListQuery], responses=s.ModelOutput(many=True))
    def get(self, request: Request, version: str) -> Response:
        """List models (``?team=``, ``?search=`` substring of the name)."""
        params = query(s.ModelListQuery, request)
        models = selectors.registered_model_list(
            user=request.user, team=params.get("team"), name_contains=params.get("search")
        )
        return paginated(request, self, models, s.ModelOutput)

    @extend_schema(request=s.ModelCreateInput, responses={201: s.ModelOutput})
    def post(self, request: Request, version: str) -> Response:
        """Register a model name in a team (editor); the team defaults to the caller's personal team."""
        data = valid(s.ModelCreateInput, request.data)
        if "team" in data:
            team = Team.objects.filter(pk=data["team"]).first()
            if team is None:
                raise NotFound("Team not found.")
        else:
            team = personal_team_for(request.user)
        model = services.registered_model_create(
            user=request.user,
            team=team,
            name=data["name"],
            description=data["description"],
            tags=data.get("tags"),
            request=request,
        )
        return Response(_model_out(model), status=201)


class ModelSearchView(RegistryView):
    """MLflow-grammar search over registered models."""

    @extend_schema(parameters=SEARCH_PARAMS, responses=s.ModelSearchOutput)
    def get(self, request: Request, version: str) -> Response:
        """Search models with ``filter``, ``order_by``, ``max_results``, ``page_token``."""
        params = query(s.RegistrySearchInput, request)
        models, token = selectors.search_registered_models(
            user=request.user,
            filter_string=params["filter"],
            order_by=params["order_by"],
            max_results=params.get("max_results", 100),
            page_token=params["page_token"] or None,
        )
        return Response({"results": s.ModelOutput(models, many=True).data, "next_page_token": token})


class ModelDetailView(RegistryView):
    """One registered model."""

    @extend_schema(responses=s.ModelOutput)
    def get(self, request: Request, version: str, model_id: int) -> Response:
        """Show the model with its tags and aliases."""
        return Response(s.ModelOutput(_model(request, model_id)).data)

    @extend_schema(request=s.ModelUpdateInput, responses=s.ModelOutput)
    def patch(self, request: Request, version: str, model_id: int) -> Response:
        """Rename and/or describe the model (editor)."""
        model = _model(request, model_id)
        data = valid(s.ModelUpdateInput, request.data)
        with transaction.atomic():  # rename + describe succeed or fail together
            model = self._apply(request, model, data)
        return Response(_model_out(model))

    @staticmethod
    def _apply(request: Request, model: RegisteredModel, data: dict) -> RegisteredModel:
        if "name" in data:
            model = services.registered_model_rename(
                user=request.user, model=model, new_name=data["name"], request=request
            )
        if "description" in data:
            model = services.registered_model_update(user=request.user, model=model, description=data["description"])
        return model

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, model_id: int) -> Response:
        """Delete the model and its versions (admin); refused while deployed."""
        services.registered_model_delete(user=request.user, model=_model(request, model_id), request=request)
        return Response(status=204)


class ModelTagsView(RegistryView):
    """Set a tag on a model."""

    @extend_schema(request=s.RegistryTagInput, responses=s.RegistryTagOutput)
    def post(self, request: Request, version: str, model_id: int) -> Response:
        """Set (create or overwrite) a tag (editor)."""
        data = valid(s.RegistryTagInput, request.data)
        tag = services.registered_model_set_tag(user=request.user, model=_model(request, model_id), **data)
        return Response(s.RegistryTagOutput(tag).data)


class ModelTagDetailView(RegistryView):
    """Delete a tag of a model."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, model_id: int, key: str) -> Response:
        """Remove the tag (editor)."""
        services.registered_model_delete_tag(user=request.user, model=_model(request, model_id), key=key)
        return Response(status=204)


class LatestVersionsView(RegistryView):
    """The newest version per stage."""

    @extend_schema(
        parameters=[OpenApiParameter("stages", str, many=True, enum=s.STAGE_CHOICES)],
        responses=s.VersionOutput(many=True),
    )
    def get(self, request: Request, version: str, model_id: int) -> Response:
        """Latest version in each stage (``?stages=`` repeatable)."""
        params = query(s.StagesQuery, request)
        versions = selectors.latest_versions(
            user=request.user, model=_model(request, model_id), stages=params["stages"]
        )
        return Response(s.VersionOutput(versions, many=True).data)


class VersionListView(RegistryView):
    """A model's versions; POST registers the next one."""

    pagination_class = CursorPagination

    @extend_schema(
        parameters=[OpenApiParameter("stage", str, enum=s.STAGE_CHOICES)], responses=s.VersionOutput(many=True)
    )
    def get(self, request: Request, version: str, model_id: int) -> Response:
        """List versions, newest first (``?stage=``)."""
        versions = selectors.model_version_list(
            user=request.user, model=_model(request, model_id), stage=request.query_params.get("stage")
        )
        return paginated(request, self, versions, s.VersionOutput, ordering="-version")

    @extend_schema(request=s.VersionCreateInput, responses={201: s.VersionOutput})
    def post(self, request: Request, version: str, model_id: int) -> Response:
        """Register version N+1 from ``source`` (and ``run_id``) (editor)."""
        model = _model(request, model_id)
        data = valid(s.VersionCreateInput, request.data)
        created = services.model_version_create(
            user=request.user,
            model=model,
            source=data["source"],
            run=data.get("run_id") or None,
            description=data["description"],
            tags=data.get("tags"),
            run_link=data["run_link"],
        )
        return Response(_version_out(created), status=201)


class VersionDetailView(RegistryView):
    """One model version."""

    @extend_schema(responses=s.VersionOutput)
    def get(self, request: Request, version: str, model_id: int, number: int) -> Response:
        """Show the version."""
        return Response(s.VersionOutput(_version(request, model_id, number)).data)

    @extend_schema(request=s.VersionDescriptionInput, responses=s.VersionOutput)
    def patch(self, request: Request, version: str, model_id: int, number: int) -> Response:
        """Change the description (editor)."""
        target = _version(request, model_id, number)
        data = valid(s.VersionDescriptionInput, request.data)
        updated = services.model_version_update(user=request.user, version=target, description=data["description"])
        return Response(_version_out(updated))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, model_id: int, number: int) -> Response:
        """Delete the version (admin); refused while deployed."""
        services.model_version_delete(user=request.user, version=_version(request, model_id, number), request=request)
        return Response(status=204)


class VersionTagsView(RegistryView):
    """Set a tag on a version."""

    @extend_schema(request=s.RegistryTagInput, responses=s.RegistryTagOutput)
    def post(self, request: Request, version: str, model_id: int, number: int) -> Response:
        """Set (create or overwrite) a tag (editor)."""
        data = valid(s.RegistryTagInput, request.data)
        tag = services.model_version_set_tag(user=request.user, version=_version(request, model_id, number), **data)
        return Response(s.RegistryTagOutput(tag).data)


class VersionTagDetailView(RegistryView):
    """Delete a tag of a version."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, model_id: int, number: int, key: str) -> Response:
        """Remove the tag (editor)."""
        services.model_version_delete_tag(user=request.user, version=_version(request, model_id, number), key=key)
        return Response(status=204)


class VersionStageView(RegistryView):
    """Move a version to an MLflow stage."""

    @extend_schema(request=s.StageInput, responses=s.VersionOutput)
    def post(self, request: Request, version: str, model_id: int, number: int) -> Response:
        """Transition the stage (editor); ``archive_existing_versions`` archives the others in it."""
        target = _version(request, model_id, number)
        data = valid(s.StageInput, request.data)
        moved = services.model_version_transition_stage(user=request.user, version=target, request=request, **data)
        return Response(_version_out(moved))


class VersionTransitionsView(RegistryView):
    """A version's stage history."""

    pagination_class = CursorPagination

    @extend_schema(responses=s.TransitionOutput(many=True))
    def get(self, request: Request, version: str, model_id: int, number: int) -> Response:
        """Stage transitions, newest first."""
        transitions = selectors.stage_transitions(user=request.user, version=_version(request, model_id, number))
        return paginated(request, self, transitions, s.TransitionOutput)


class VersionSearchView(RegistryView):
    """MLflow-grammar search over model versions of every visible model."""

    @extend_schema(parameters=SEARCH_PARAMS, responses=s.VersionSearchOutput)
    def get(self, request: Request, version: str) -> Response:
        """Search versions (``name='x'``, ``run_id='…'``, ``version_number>2``, ``tags.k='v'``…)."""
        params = query(s.RegistrySearchInput, request)
        versions, token = selectors.search_model_versions(
            user=request.user,
            filter_string=params["filter"],
            order_by=params["order_by"],
            max_results=params.get("max_results", 1000),
            page_token=params["page_token"] or None,
        )
        return Response({"results": s.VersionOutput(versions, many=True).data, "next_page_token": token})


class AliasListView(RegistryView):
    """A model's aliases."""

    @extend_schema(responses=s.AliasOutput(many=True))
    def get(self, request: Request, version: str, model_id: int) -> Response:
        """List aliases."""
        aliases = selectors.alias_list(user=request.user, model=_model(request, model_id))
        return Response(s.AliasOutput(aliases, many=True).data)


class AliasDetailView(RegistryView):
    """One alias: GET the version it names, PUT moves it, DELETE removes it."""

    @extend_schema(responses=s.VersionOutput)
    def get(self, request: Request, version: str, model_id: int, alias: str) -> Response:
        """The version the alias points at."""
        found = selectors.model_version_by_alias(user=request.user, model=_model(request, model_id), alias=alias)
        return Response(s.VersionOutput(found).data)

    @extend_schema(request=s.AliasInput, responses=s.AliasOutput)
    def put(self, request: Request, version: str, model_id: int, alias: str) -> Response:
        """Point the alias at ``version`` (editor); moving it is atomic."""
        model = _model(request, model_id)
        data = valid(s.AliasInput, request.data)
        row = services.alias_set(user=request.user, model=model, alias=alias, version=data["version"], request=request)
        return Response(s.AliasOutput(row).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, model_id: int, alias: str) -> Response:
        """Remove the alias (editor)."""
        services.alias_delete(user=request.user, model=_model(request, model_id), alias=alias, request=request)
        return Response(status=204)
