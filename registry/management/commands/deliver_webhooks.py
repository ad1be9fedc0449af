"""``manage.py deliver_webhooks``: send every due webhook delivery (retries after a restart, or from cron)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from registry.webhooks import deliver_due


class Command(BaseCommand):
    """Deliver due pending webhook deliveries, once or in a loop."""

    help = "Send due pending webhook deliveries; failed attempts are re-scheduled with exponential back-off."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--loop", action="store_true", help="Keep running, checking every --interval seconds.")
        parser.add_argument("--interval", type=float, default=10.0, help="Seconds between checks with --loop.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Deliver what is due (and repeat with --loop)."""
        while True:
            done = deliver_due()
            succeeded = sum(1 for d in done if d.status == "succeeded")
            self.stdout.write(
                f"{len(done)} deliveries attempted, {succeeded} succeeded, {len(done) - succeeded} failed."
            )
            if not options["loop"]:
                return
            time.sleep(options["interval"])
