"""`sequent send_due [--now ISO8601]`: deliver every due outbox email, then exit.

The worker does the same one batch at a time; this command is for cron and for
trying delivery on its own.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sequent.lib import clock
from sequent.mail.delivery import BATCH_SIZE, BatchReport, deliver_once
from sequent.worker.loop import default_worker_id
from sequent.worker.management.commands.run_due import parse_instant

# A safety stop: a batch that keeps finding work (a clock far in the future) ends here.
MAX_ROUNDS = 100_000


class Command(BaseCommand):
    help = "Send every due email of the outbox (per mailbox, within the sending limits), then exit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", default=None, help="act as if it were this instant (ISO 8601)")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="emails claimed at a time")

    def handle(self, *args: Any, **options: Any) -> None:
        frozen = clock.frozen(parse_instant(options["now"])) if options["now"] else contextlib.nullcontext()
        total = BatchReport()
        worker_id = default_worker_id()
        with frozen:
            for _ in range(MAX_ROUNDS):
                worked, report = deliver_once(worker_id, options["batch_size"])
                total.add(report)
                if not worked:
                    break
        self.stdout.write(
            f"{total.sent} sent, {total.deferred} deferred, {total.failed} failed "
            f"({total.bounced} bounced), {total.cancelled} cancelled, {total.uncertain} uncertain, "
            f"{total.requeued} back in the queue"
        )
