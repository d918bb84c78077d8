"""`sequent run-due [--now ISO8601]`: do all the work due at that instant, then exit.

For cron, and for tests that move the clock across simulated days.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sequent.lib import clock
from sequent.worker.loop import Worker


def parse_instant(text: str) -> dt.datetime:
    """An aware instant from ISO 8601; a value without offset is read as UTC."""
    try:
        instant = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(
            f"--now: {text!r} is not an ISO 8601 instant such as 2026-03-02T09:00:00Z"
        ) from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(dt.UTC)


class Command(BaseCommand):
    help = "Run every due sequence run and process every due enrollment, then exit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", default=None, help="act as if it were this instant (ISO 8601)")
        parser.add_argument("--batch-size", type=int, default=500, help="enrollments claimed at a time")
        parser.add_argument("--no-mail", action="store_true", help="queue emails but do not deliver them")

    def handle(self, *args: Any, **options: Any) -> None:
        frozen = clock.frozen(parse_instant(options["now"])) if options["now"] else contextlib.nullcontext()
        with frozen:
            stats = Worker(batch_size=options["batch_size"], mail=not options["no_mail"]).run(until_idle=True)
        self.stdout.write(
            f"{stats.runs_started} runs started, {stats.batches} batches "
            f"({stats.enrollments} enrollments), {stats.runs_finished} runs finished, {stats.imports} imports"
        )
