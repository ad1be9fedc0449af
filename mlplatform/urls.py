"""Top-level URL configuration: admin, health, native API v1, pages."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from mlplatform.api import api_not_found
from mlplatform.health import healthz

admin.site.site_header = "mlplatform operations"
admin.site.site_title = "mlplatform admin"
admin.site.index_title = "Operators' console"

api_v1 = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("", include("accounts.api.urls")),
    path("", include("experiments.api.urls")),
    path("", include("registry.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # MLflow REST API façade (/api/2.0/mlflow/..., /ajax-api/..., /api/3.0/...): before api/<version>/.
    path("", include("mlplatform.mlflow_api")),
    path("api/<version>/", include(api_v1)),
    re_path(r"^api/", api_not_found),
    path("", include("experiments.pages.urls")),
]

handler500 = "mlplatform.api.server_error"
