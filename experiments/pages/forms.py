"""Forms of the browser pages."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from accounts.throttling import LoginThrottled


class LoginForm(AuthenticationForm):
    """Django's login form; a throttled login is a form error instead of a bare 429 page."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "autofocus": True})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})

    def clean(self) -> dict[str, Any]:
        """Check the credentials; over the failure limit say when to try again."""
        try:
            return super().clean()
        except LoginThrottled as exc:
            wait = int(exc.wait or 1)
            raise forms.ValidationError(
                f"Too many failed login attempts. Try again in {wait} seconds.", code="throttled"
            ) from exc


class TeamSwitchForm(forms.Form):
    """The header's team switcher: a team id, or empty for all the user's teams."""

    team = forms.IntegerField(required=False, min_value=1)
    next = forms.CharField(required=False, max_length=2000)
