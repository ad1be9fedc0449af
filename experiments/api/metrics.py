"""Metric history endpoints: one run and key (paged or downsampled), or many runs and keys at once."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from experiments import selectors
from experiments.api.base import ExperimentsAPIView, parse
from experiments.api.serializers import BulkHistoryInputSerializer, HistoryInputSerializer
from mlplatform.nonfinite import encode_points, json_bytes_response


class MetricHistoryView(ExperimentsAPIView):
    """A run's full history for one key, in step order."""

    @extend_schema(
        parameters=[
            OpenApiParameter("since_step", OpenApiTypes.INT, description="Only points with a greater step."),
            OpenApiParameter("max_points", OpenApiTypes.INT, description="LTTB-downsample to at most N points."),
            OpenApiParameter("page_size", OpenApiTypes.INT),
            OpenApiParameter("page_token", OpenApiTypes.STR),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, version: str, run_uuid: str, key: str) -> HttpResponse:
        """``{run_id, key, points: [{step, timestamp, value}], next, next_page_token}``."""
        data = parse(HistoryInputSerializer, request.query_params)
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        points, token = selectors.history_points(
            run=run,
            key=key,
            since_step=data["since_step"],
            max_points=data["max_points"],
            page_size=data["page_size"],
            page_token=data["page_token"] or None,
        )
        # Up to 25 000 points: rendered with orjson, not DRF's renderer walking every point twice.
        return json_bytes_response(
            {
                "run_id": run.run_uuid,
                "key": key,
                "points": encode_points(points),
                "next": replace_query_param(request.build_absolute_uri(), "page_token", token) if token else None,
                "next_page_token": token,
            }
        )


class MetricHistoryBulkView(ExperimentsAPIView):
    """History of several runs and keys in one request, for compare views."""

    @extend_schema(
        operation_id="runs_metrics_history_bulk",
        parameters=[
            OpenApiParameter("run_id", OpenApiTypes.STR, many=True, required=True),
            OpenApiParameter("key", OpenApiTypes.STR, many=True, required=True),
            OpenApiParameter("max_points", OpenApiTypes.INT),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, version: str) -> Response:
        """``{results: [{run_id, key, points}]}``, one entry per (run, key) pair."""
        data = parse(BulkHistoryInputSerializer, request.query_params)
        runs = selectors.runs_for_compare(user=request.user, run_uuids=data["run_id"])
        series = selectors.metric_history_bulk(runs=runs, keys=data["key"], max_points=data["max_points"])
        return Response(
            {"results": [{**entry, "points": selectors.encode_points(entry["points"])} for entry in series]}
        )
