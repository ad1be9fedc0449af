"""A URLconf with views that raise each kind of error, for the envelope tests."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.urls import path, re_path
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from mlplatform.api import api_not_found
from mlplatform.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge


class EchoSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    count = serializers.IntegerField(min_value=0)


class EchoView(APIView):
    permission_classes = [AllowAny]
    throttle_classes: list = []

    def post(self, request, **kwargs):
        serializer = EchoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


class RaiseView(APIView):
    permission_classes = [AllowAny]
    throttle_classes: list = []
    errors = {
        "service-invalid": InvalidInput("Key 'x' is too long (limit 250).", details={"key": "x"}),
        "service-not-found": NotFound("Run abc not found."),
        "service-conflict": Conflict("Name taken."),
        "service-too-large": PayloadTooLarge("Over 1 MB."),
        "django-404": Http404("No such thing."),
        "django-denied": DjangoPermissionDenied("Nope."),
        "django-invalid": DjangoValidationError({"name": ["Bad name."]}),
        "unexpected": RuntimeError("secret internals"),
    }

    def get(self, request, kind, **kwargs):
        raise self.errors[kind]


class PrivateView(APIView):
    permission_classes = [IsAuthenticated]

    def get(self, request, **kwargs):
        return Response({"ok": True})


class OnePerDayThrottle(AnonRateThrottle):
    scope = "envelope-test"
    rate = "1/day"

    def get_rate(self):
        return self.rate


class ThrottledView(APIView):
    permission_classes = [AllowAny]
    throttle_classes = [OnePerDayThrottle]

    def get(self, request, **kwargs):
        return Response({"ok": True})


urlpatterns = [
    path("api/echo/", EchoView.as_view()),
    path("api/raise/<str:kind>/", RaiseView.as_view()),
    path("api/private/", PrivateView.as_view()),
    path("api/throttled/", ThrottledView.as_view()),
    re_path(r"^api/", api_not_found),
]
