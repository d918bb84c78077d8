"""``sequent sync_mail``: read the reps' mailboxes now (replies, bounces, auto-replies,
uncertain sends), as the worker does every minute."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sequent.lib import clock
from sequent.mail import inbound
from sequent.mail.models import Mailbox


class Command(BaseCommand):
    help = "Read the IMAP mailboxes whose turn has come (or one mailbox with --mailbox) and record what came back."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--mailbox", type=int, help="Read this mailbox now, whatever its turn.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Sync, then print what was found."""
        total = inbound.SyncReport()
        mailboxes = 0
        errors: list[str] = []
        if options["mailbox"] is not None:
            mailbox = Mailbox.objects.filter(pk=options["mailbox"]).first()
            if mailbox is None:
                self.stderr.write(f"mailbox: no mailbox {options['mailbox']}")
                return
            chosen = [mailbox]
        else:
            chosen = []
            while (taken := inbound.take_due_mailbox(clock.now())) is not None:
                chosen.append(taken)
        for mailbox in chosen:
            report = inbound.sync_mailbox(mailbox)
            mailboxes += 1
            total.add(report)
            if report.error:
                errors.append(f"{mailbox.email_address}: {report.error}")
        self.stdout.write(
            f"{mailboxes} mailbox(es) read: {total.fetched} new messages, {total.replies} replies, "
            f"{total.hard_bounces} hard bounces, {total.soft_bounces} delayed, "
            f"{total.auto_replies} auto-replies, {total.unsubscribes} unsubscribes"
        )
        for error in errors:
            self.stderr.write(error)
