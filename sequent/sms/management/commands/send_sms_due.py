"""`sequent send_sms_due [--now ISO8601]`: send the due SMS the per-second limit allows, then exit.

The worker calls ``sms.sending.send_due`` once per iteration; this command is for cron
and for trying SMS sending on its own. With a frozen ``--now`` the clock does not move,
so one run sends at most one second's worth (the workspace's per-second limit).
"""

from __future__ import annotations

import contextlib
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sequent.lib import clock
from sequent.sms.models import SmsMessage, SmsStatus
from sequent.sms.sending import send_due
from sequent.worker.loop import default_worker_id
from sequent.worker.management.commands.run_due import parse_instant

MAX_ROUNDS = 10_000


class Command(BaseCommand):
    help = "Send the due SMS (within the workspace's per-second limit), then exit."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--now", default=None, help="act as if it were this instant (ISO 8601)")

    def handle(self, *args: Any, **options: Any) -> None:
        frozen = clock.frozen(parse_instant(options["now"])) if options["now"] else contextlib.nullcontext()
        worker_id = default_worker_id()
        with frozen:
            started = clock.now()
            for _ in range(MAX_ROUNDS):
                if not send_due(worker_id):
                    break
            attempted = SmsMessage.objects.filter(attempted_at__gte=started)
            sent = attempted.filter(status__in=[SmsStatus.SENT, SmsStatus.DELIVERED]).count()
            failed = attempted.filter(status=SmsStatus.FAILED).count()
            waiting = SmsMessage.objects.filter(status=SmsStatus.QUEUED, not_before__lte=clock.now()).count()
        self.stdout.write(f"{sent} sent, {failed} failed, {waiting} still due")
