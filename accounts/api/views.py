"""Account endpoints: who am I."""

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.serializers import MeSerializer


class MeView(APIView):
    """The authenticated user with their teams and roles."""

    @extend_schema(responses=MeSerializer)
    def get(self, request: Request, version: str) -> Response:
        """Return the current user."""
        return Response(MeSerializer(request.user).data)
