"""Account API routes (every one named; the authorization matrix refers to the names)."""

from django.urls import path

from accounts.api import jwt, views

urlpatterns = [
    path("me/", views.MeView.as_view(), name="me"),
    path("me/password/", views.PasswordChangeView.as_view(), name="me-password"),
    path("tokens/", views.ApiTokenListView.as_view(), name="token-list"),
    path("tokens/<int:token_id>/", views.ApiTokenDetailView.as_view(), name="token-detail"),
    path("tokens/<int:token_id>/revoke/", views.ApiTokenRevokeView.as_view(), name="token-revoke"),
    path("teams/", views.TeamListView.as_view(), name="team-list"),
    path("teams/<int:team_id>/", views.TeamDetailView.as_view(), name="team-detail"),
    path("teams/<int:team_id>/members/", views.MemberListView.as_view(), name="team-member-list"),
    path("teams/<int:team_id>/members/<int:user_id>/", views.MemberDetailView.as_view(), name="team-member-detail"),
    path("auth/token/", jwt.TokenObtainView.as_view(), name="auth-token"),
    path("auth/token/refresh/", jwt.TokenRefreshView.as_view(), name="auth-token-refresh"),
    path("auth/logout/", jwt.LogoutView.as_view(), name="auth-logout"),
    path("auth/signup/", views.SignupView.as_view(), name="auth-signup"),
]
