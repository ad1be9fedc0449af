"""Registry pages: models, versions, deployments (included in the ``pages`` namespace)."""

from django.urls import path

from registry.pages import views

urlpatterns = [
    path("models/", views.model_list, name="model_list"),
    path("models/<int:model_id>/", views.model_detail, name="model_detail"),
    path("models/<int:model_id>/versions/<int:version>/", views.version_detail, name="version_detail"),
    path("deployments/", views.deployment_list, name="deployment_list"),
    path("deployments/<int:deployment_id>/", views.deployment_detail, name="deployment_detail"),
    path("deployments/<int:deployment_id>/rollback/", views.deployment_rollback, name="deployment_rollback"),
]
