"""Experiment endpoints: list/search, create, detail, update, soft delete, restore, tags."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import Action
from experiments import selectors, services
from experiments.api.base import ExperimentsAPIView, parse
from experiments.api.serializers import (
    ExperimentCreateInputSerializer,
    ExperimentOutputSerializer,
    ExperimentUpdateInputSerializer,
    TagInputSerializer,
)
from mlplatform.api import CursorPagination, paginated


class ExperimentListView(ExperimentsAPIView):
    """List (search by name) and create experiments."""

    pagination_class = CursorPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("name", OpenApiTypes.STR, description="Case-insensitive substring of the name."),
            OpenApiParameter("team", OpenApiTypes.INT),
            OpenApiParameter("view", OpenApiTypes.STR, enum=["active", "deleted", "all"]),
        ],
        responses=ExperimentOutputSerializer(many=True),
    )
    def get(self, request: Request, version: str) -> Response:
        """Experiments the caller may read, newest first, cursor-paginated."""
        team = request.query_params.get("team") or None
        # ASCII digits, at most 18 (below int64): "²" or a huge id would be a 500 further down.
        if team is not None and not (team.isascii() and team.isdigit() and len(team) <= 18):
            raise ValidationError({"team": ["A valid integer is required."]})
        queryset = selectors.experiment_list(
            user=request.user,
            name=request.query_params.get("name") or None,
            team_id=int(team) if team else None,
            view=request.query_params.get("view", "active"),
        )
        return paginated(request, self, queryset, ExperimentOutputSerializer)

    @extend_schema(request=ExperimentCreateInputSerializer, responses={201: ExperimentOutputSerializer})
    def post(self, request: Request, version: str) -> Response:
        """Create an experiment (in the caller's personal team unless ``team`` is given)."""
        data = parse(ExperimentCreateInputSerializer, request.data)
        team_id = data.pop("team")
        team = selectors.team_get(team_id=team_id) if team_id is not None else None
        experiment = services.experiment_create(user=request.user, team=team, **data)
        experiment = selectors.experiment_get(user=request.user, experiment_id=experiment.pk)
        return Response(ExperimentOutputSerializer(experiment).data, status=status.HTTP_201_CREATED)


class ExperimentDetailView(ExperimentsAPIView):
    """Read, update or soft-delete one experiment."""

    @extend_schema(responses=ExperimentOutputSerializer)
    def get(self, request: Request, version: str, experiment_id: int) -> Response:
        """One experiment with its tags."""
        experiment = selectors.experiment_get(user=request.user, experiment_id=experiment_id)
        return Response(ExperimentOutputSerializer(experiment).data)

    @extend_schema(request=ExperimentUpdateInputSerializer, responses=ExperimentOutputSerializer)
    def patch(self, request: Request, version: str, experiment_id: int) -> Response:
        """Rename it or change its description."""
        data = parse(ExperimentUpdateInputSerializer, request.data)
        experiment = selectors.experiment_get(user=request.user, experiment_id=experiment_id)
        services.experiment_update(user=request.user, experiment=experiment, **data)
        return Response(ExperimentOutputSerializer(experiment).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, experiment_id: int) -> Response:
        """Soft-delete it and its runs (admins)."""
        experiment = selectors.experiment_get(user=request.user, experiment_id=experiment_id)
        services.experiment_delete(user=request.user, experiment=experiment, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ExperimentRestoreView(ExperimentsAPIView):
    """Restore a soft-deleted experiment."""

    @extend_schema(request=None, responses=ExperimentOutputSerializer)
    def post(self, request: Request, version: str, experiment_id: int) -> Response:
        """Restore it and its runs (admins)."""
        experiment = selectors.experiment_get(user=request.user, experiment_id=experiment_id)
        services.experiment_restore(user=request.user, experiment=experiment, request=request)
        return Response(ExperimentOutputSerializer(experiment).data)


class ExperimentTagListView(ExperimentsAPIView):
    """Set an experiment tag."""

    @extend_schema(request=TagInputSerializer, responses=TagInputSerializer)
    def post(self, request: Request, version: str, experiment_id: int) -> Response:
        """Create or overwrite one tag."""
        data = parse(TagInputSerializer, request.data)
        experiment = selectors.experiment_get(user=request.user, experiment_id=experiment_id)
        tag = services.experiment_set_tag(user=request.user, experiment=experiment, **data)
        return Response({"key": tag.key, "value": tag.value})


class ExperimentTagDetailView(ExperimentsAPIView):
    """Delete an experiment tag."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, experiment_id: int, key: str) -> Response:
        """Delete one tag (editors)."""
        experiment = selectors.experiment_get(user=request.user, experiment_id=experiment_id, action=Action.READ)
        services.experiment_delete_tag(user=request.user, experiment=experiment, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)
