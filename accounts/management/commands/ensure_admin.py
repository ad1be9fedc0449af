"""First-run helper: create a superuser when the database has no users."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    """Create ``admin`` with ADMIN_PASSWORD or a random password printed once."""

    help = "Create the first superuser (admin) if there are no users yet."

    def handle(self, *args: object, **options: object) -> None:
        """Create the user, or say nothing needs doing."""
        user_model = get_user_model()
        if user_model.objects.exists():
            self.stdout.write("Users exist; not creating an admin.")
            return
        username = os.environ.get("ADMIN_USERNAME", "admin")
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user_model.objects.create_superuser(username=username, email="", password=password)
        shown = "(from ADMIN_PASSWORD)" if os.environ.get("ADMIN_PASSWORD") else password
        banner = "=" * 64
        self.stdout.write(
            self.style.SUCCESS(
                f"{banner}\nCreated superuser {username!r} with password: {shown}\n"
                f"It is shown only once; change it in the admin.\n{banner}"
            )
        )
