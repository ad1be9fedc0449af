"""Create the benchmark user and an API token in our server's database; prints ``{"token": ...}``.

Run with the server's environment (``DATABASE_URL`` etc.): ``python -m bench.ours_setup``.
Goes through the same services an operator's sign-up and token creation use.
"""

from __future__ import annotations

import json
import os
import secrets

import django


def main() -> None:
    """Create (or reuse) the ``bench`` user, its personal team, and a fresh API token."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mlplatform.settings")
    django.setup()
    from accounts.models import User
    from accounts.services import api_token_create, personal_team_for

    user = User.objects.filter(username="bench").first()
    if user is None:
        user = User.objects.create_user(username="bench", password=secrets.token_urlsafe(24))
    personal_team_for(user)
    _token, plaintext = api_token_create(user=user, name=f"bench-{secrets.token_hex(4)}")
    print(json.dumps({"token": plaintext, "user": user.username}))


if __name__ == "__main__":
    main()
