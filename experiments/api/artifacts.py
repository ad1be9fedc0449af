"""Artifact endpoints: list a folder, upload (streamed PUT), download (streamed), delete."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import Action
from experiments import artifacts, selectors
from experiments.api.base import ExperimentsAPIView
from experiments.api.serializers import ArtifactEntrySerializer, ArtifactListingSerializer


class ArtifactListView(ExperimentsAPIView):
    """The files and folders in a run's artifacts."""

    @extend_schema(
        operation_id="runs_artifacts_list",
        parameters=[OpenApiParameter("path", OpenApiTypes.STR, description="Folder to list (root by default).")],
        responses=ArtifactListingSerializer,
    )
    def get(self, request: Request, version: str, run_uuid: str) -> Response:
        """``{root_uri, path, files: [{path, is_dir, file_size}]}``."""
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        path = request.query_params.get("path", "")
        entries = artifacts.artifact_list(run, path)
        return Response({"root_uri": run.artifact_uri, "path": path, "files": entries})


class ArtifactView(ExperimentsAPIView):
    """One artifact file: download, upload (raw request body) or delete."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, version: str, run_uuid: str, path: str) -> FileResponse:
        """Stream the file with its content type."""
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        opened = artifacts.artifact_open(run, path)
        response = FileResponse(opened.file, content_type=opened.content_type, filename=opened.name)
        response["Content-Length"] = str(opened.size)
        # Artifacts are user content: never let an HTML artifact run script on this origin.
        response["Content-Security-Policy"] = "sandbox"
        response["X-Content-Type-Options"] = "nosniff"
        return response

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY}, responses={201: ArtifactEntrySerializer})
    def put(self, request: Request, version: str, run_uuid: str, path: str) -> Response:
        """Store the raw body at ``path``, streamed to storage in chunks (editors)."""
        stream, size = artifacts.request_upload(request)
        run = selectors.run_get(user=request.user, run_uuid=run_uuid)
        entry = artifacts.artifact_write(user=request.user, run=run, path=path, stream=stream, size_hint=size)
        return Response(entry, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, version: str, run_uuid: str, path: str) -> Response:
        """Delete the file or folder (admins)."""
        run = selectors.run_get(user=request.user, run_uuid=run_uuid, action=Action.READ)
        artifacts.artifact_delete(user=request.user, run=run, path=path, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
