"""Run endpoints: search/list, create, detail, update, soft delete, restore, log-batch, tags, live catch-up."""

from __future__ import annotations

from typing import Any

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
    LogBatchInputSerializer,
    RunCreateInputSerializer,
    RunOutputSerializer,
    RunSearchInputSerializer,
    RunUpdateInputSerializer,
    TagInputSerializer,
)
from mlplatform.api import PageTokenPagination


class RunListView(ExperimentsAPIView):
    """Search runs with the filter language, and start new runs."""

    pagination_class = PageTokenPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("experiment_id", OpenApiTypes.INT, many=True),
            OpenApiParameter("filter", OpenApiTypes.STR, description="e.g. metrics.acc > 0.9 and params.model = 'cnn'"),
            OpenApiParameter("order_by", OpenApiTypes.STR, many=True, description="e.g. metrics.acc DESC"),
            OpenApiParameter("run_view", OpenApiTypes.STR, enum=["active", "deleted", "all"]),
            OpenApiParameter("page_size", OpenApiTypes.INT),
            OpenApiParameter("page_token", OpenApiTypes.STR),
        ],
        responses=RunOutputSerializer(many=True),
    )
    def get(self, request: Request, version: str) -> Response:
        """One page of runs: ``{results, next, next_page_token}``."""
        data = parse(RunSearchInputSerializer, request.query_params)
        page = selectors.search_runs(
            user=request.user,
            experiment_ids=data["experiment_id"],
            filter_string=data["filter"],
            order_by=data["order_by"],
            run_view=data["run_view"],
            max_results=data["page_size"],
            page_token=data["page_token"] or None,
        )
        results = RunOutputSerializer(page.runs, many=True).data
        return self.pagination_class().page_response(request, results, page.next_page_token)

    @extend_schema(request=RunCreateInputSerializer, responses={201: RunOutputSerializer})
    def post(self, request: Request, version: str) -> Response:
        """Start a run in an experiment (editors)."""
        data = parse(RunCreateInputSerializer, request.data)
        experiment = selectors.experiment_get(user=request.user, experiment_id=data.pop("experiment_id"))
        run = services.run_create(user=request.user, experiment=experiment, **data)
        run = selectors.run_detail(user=request.user, run_uuid=run.run_uuid)
        return Response(RunOutputSerializer(run).data, status=status.HTTP_201_CREATED)


class RunDetailView(ExperimentsAPIView):
    """Read, update or soft-delete one run."""

    @extend_schema(responses=RunOutputSerializer)
    def get(self, request: Request, version: str, run_uuid: str) -> Response:
        """The run with params, tags and latest metrics."""
        run = selectors.run_detail(user=request.user, run_uuid=run_uuid)
        return Response(RunOutputSerializer(run).data)

    @extend_schema(request=RunUpdateInputSerializer, responses=RunOutputSerializer)
    def patch(self, request: Request, version: str, run_uuid: str) -> Response:
        """Change status, end time or name (editors)."""
        data = parse(RunUpdateInputSerializer, request.data)
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        services.run_update(user=request.user, run=run, **data)
        run = selectors.run_detail(user=request.user, run_uuid=run_uuid)
        return Response(RunOutputSerializer(run).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, run_uuid: str) -> Response:
        """Soft-delete the run (admins)."""
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        services.run_delete(user=request.user, run=run, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunRestoreView(ExperimentsAPIView):
    """Restore a soft-deleted run."""

    @extend_schema(request=None, responses=RunOutputSerializer)
    def post(self, request: Request, version: str, run_uuid: str) -> Response:
        """Restore it (admins)."""
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        services.run_restore(user=request.user, run=run, request=request)
        run = selectors.run_detail(user=request.user, run_uuid=run_uuid)
        return Response(RunOutputSerializer(run).data)


class RunLogBatchView(ExperimentsAPIView):
    """Log metrics, params and tags in one atomic batch."""

    @extend_schema(request=LogBatchInputSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request: Request, version: str, run_uuid: str) -> Response:
        """All or nothing; answers ``{"seq": n}``, the run's sequence after the batch."""
        data = parse(LogBatchInputSerializer, request.data)
        run = selectors.run_for_logging(user=request.user, run_uuid=run_uuid)
        seq = services.log_batch(user=request.user, run=run, **data)
        return Response({"seq": seq})


class RunTagListView(ExperimentsAPIView):
    """Set a run tag."""

    @extend_schema(request=TagInputSerializer, responses=TagInputSerializer)
    def post(self, request: Request, version: str, run_uuid: str) -> Response:
        """Create or overwrite one tag (editors)."""
        data = parse(TagInputSerializer, request.data)
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        services.set_tag(user=request.user, run=run, **data)
        return Response(data)


class RunTagDetailView(ExperimentsAPIView):
    """Delete a run tag."""

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, run_uuid: str, key: str) -> Response:
        """Delete one tag (editors)."""
        run = selectors.run_get(user=request.user, run_uuid=run_uuid, action=Action.READ)
        services.delete_tag(user=request.user, run=run, key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RunEventsView(ExperimentsAPIView):
    """Catch up on what a live view missed."""

    @extend_schema(parameters=[OpenApiParameter("since", OpenApiTypes.INT)], responses=OpenApiTypes.OBJECT)
    def get(self, request: Request, version: str, run_uuid: str) -> Response:
        """Metric points logged after sequence ``since``, grouped by key, and the sequence to resume from."""
        since: Any = request.query_params.get("since", "0")
        if not since.isdigit():
            raise ValidationError({"since": ["A non-negative integer is required."]})
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        return Response(selectors.run_events_since(run, int(since)))
