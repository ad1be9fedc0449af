"""Server-rendered pages, all under the ``pages`` namespace (registry pages are included here too)."""

from django.urls import include, path

from experiments.pages import auth, views

app_name = "pages"

urlpatterns = [
    path("login/", auth.LoginView.as_view(), name="login"),
    path("logout/", auth.LogoutView.as_view(), name="logout"),
    path("team/switch/", auth.team_switch, name="team_switch"),
    path("", views.experiment_list, name="experiment_list"),
    path("experiments/<int:experiment_id>/", views.experiment_runs, name="experiment_runs"),
    path("runs/<str:run_uuid>/", views.run_detail, name="run_detail"),
    path("runs/<str:run_uuid>/artifacts/", views.run_artifacts, name="run_artifacts"),
    path("runs/<str:run_uuid>/artifacts/raw/<path:path>", views.run_artifact_raw, name="run_artifact_raw"),
    path("compare/", views.compare_runs, name="compare_runs"),
    path("", include("registry.pages.urls")),
]
