"""Reconciling uncertain sends against the mailbox's Sent folder.

A row is ``uncertain`` when the worker sending it stopped (or the connection died)
after the server may have taken the message. Its Message-ID was fixed before sending,
so the Sent folder tells: found -> the row is sent; still missing a lease after the
first look (time for the provider to file its copy) -> queued again, once; missing
again after that second attempt -> failed, never sent a third time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from sequent.crm.models import ActivityKind
from sequent.mail import actions
from sequent.mail.models import EmailEvent, EmailEventKind, Mailbox, MessageStatus, OutboundMessage

log = logging.getLogger(__name__)

# How long a row may be missing from the Sent folder before it is queued again: the
# delivery lease, so a copy still being filed by the provider is not sent twice.
GRACE = dt.timedelta(minutes=15)
# Rows looked up per sync (one IMAP SEARCH each).
BATCH = 200


@dataclass
class ReconcileReport:
    """What one reconciliation did."""

    sent: int = 0
    waiting: int = 0
    requeued: int = 0
    failed: int = 0


def sent_folder(client: IMAPClient, mailbox: Mailbox) -> str | None:
    """The mailbox's Sent folder: the one set on the mailbox, else the folder flagged \\Sent."""
    if mailbox.imap_sent_folder:
        return mailbox.imap_sent_folder
    try:
        found = client.find_special_folder(b"\\Sent")
    except IMAPClientError:
        return None
    return str(found) if found else None


def _sent_dates(client: IMAPClient, message_ids: dict[int, str]) -> dict[int, dt.datetime | None]:
    """For each row found in the selected folder, when the copy was filed."""
    found: dict[int, int] = {}
    for pk, message_id in message_ids.items():
        uids = client.search(["HEADER", "Message-ID", message_id])
        if uids:
            found[pk] = int(uids[0])
    dates: dict[int, dt.datetime | None] = dict.fromkeys(found)
    if found:
        fetched = client.fetch(list(found.values()), ["INTERNALDATE"])
        for pk, uid in found.items():
            value = fetched.get(uid, {}).get(b"INTERNALDATE")
            if isinstance(value, dt.datetime):
                dates[pk] = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return dates


def reconcile_mailbox(client: IMAPClient, mailbox: Mailbox, now: dt.datetime) -> ReconcileReport:
    """Look up the mailbox's uncertain rows in its Sent folder over *client* (logged in)
    and settle them. Rows stay uncertain when there is no Sent folder to look in."""
    rows = dict(
        OutboundMessage.objects.filter(mailbox=mailbox, status=MessageStatus.UNCERTAIN)
        .order_by("pk")
        .values_list("pk", "message_id")[:BATCH]
    )
    if not rows:
        return ReconcileReport()
    folder = sent_folder(client, mailbox)
    if folder is None:
        log.warning("mailbox %s has uncertain sends but no Sent folder to check", mailbox.pk)
        return ReconcileReport(waiting=len(rows))
    try:
        client.select_folder(folder, readonly=True)
        dates = _sent_dates(client, rows)
    except IMAPClientError as exc:
        log.warning("mailbox %s: cannot search the Sent folder %r: %s", mailbox.pk, folder, exc)
        return ReconcileReport(waiting=len(rows))
    return do_settle_uncertain(dates, [pk for pk in rows if pk not in dates], now)


def do_settle_uncertain(
    found: dict[int, dt.datetime | None], missing: list[int], now: dt.datetime
) -> ReconcileReport:
    """Mark rows *found* in the Sent folder sent (with their event and activity); start
    the grace period of rows *missing*, queue them again once it has passed, and fail
    those that were already queued again once."""
    report = ReconcileReport()
    with transaction.atomic():
        settled = list(
            OutboundMessage.objects.select_for_update().filter(
                pk__in=list(found), status=MessageStatus.UNCERTAIN
            )
        )
        for message in settled:
            message.status = MessageStatus.SENT
            message.sent_at = min(found[message.pk] or now, now)
            message.reason_code = ""
            message.last_error = "found in the Sent folder after an uncertain send"
            message.reconcile_missed_at = None
        actions.bulk_set(settled, ["status", "sent_at", "reason_code", "last_error", "reconcile_missed_at"])
        EmailEvent.objects.bulk_create(
            [
                EmailEvent(
                    message_id=m.pk,
                    contact_id=m.contact_id,
                    enrollment_id=m.enrollment_id,
                    step_id=m.step_id,
                    kind=EmailEventKind.SENT,
                    occurred_at=m.sent_at or now,
                    dedupe_key=f"sent:{m.pk}",  # the key delivery uses: one sent event per row
                    metadata={"source": "sent_folder"},
                )
                for m in settled
            ],
            ignore_conflicts=True,
        )
        actions.do_record_email_activities(
            [
                actions.EmailActivity(
                    m.contact_id,
                    ActivityKind.EMAIL_SENT,
                    m.sent_at or now,
                    m.owner_id,
                    m.subject,
                    {"message": m.pk},
                )
                for m in settled
            ]
        )
        report.sent = len(settled)
        uncertain = OutboundMessage.objects.filter(pk__in=missing, status=MessageStatus.UNCERTAIN)
        uncertain.filter(reconcile_missed_at__isnull=True).update(reconcile_missed_at=now)
        overdue = uncertain.filter(reconcile_missed_at__lte=now - GRACE)
        report.failed = overdue.filter(reconcile_requeued=True).update(
            status=MessageStatus.FAILED,
            reason_code="uncertain",
            last_error="it may have been sent twice already and is not in the Sent folder; "
            "it is not sent again",
            reconcile_missed_at=None,
        )
        report.requeued = overdue.filter(reconcile_requeued=False).update(
            status=MessageStatus.QUEUED,
            not_before=now,
            reason_code="",
            last_error="queued again: an uncertain send was not found in the Sent folder",
            reconcile_missed_at=None,
            reconcile_requeued=True,
        )
        report.waiting = uncertain.count()
    return report
