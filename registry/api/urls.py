"""API routes for this app."""

urlpatterns: list = []
