"""Inbound email over IMAP: replies, bounces and auto-replies in the reps' mailboxes.

`sync_due` (called by the worker loop and by ``sequent sync_mail``) takes one mailbox
whose turn has come and, in one IMAP session:

1. reads each watched folder from the stored UIDVALIDITY and last UID (a changed
   UIDVALIDITY means the folder was rebuilt: it is read again, and events deduplicated
   on the inbound Message-ID keep that from counting anything twice);
2. fetches headers only, then the whole message only for mail that may concern us
   (it names one of our Message-IDs, comes from an address we emailed, or looks like
   a delivery report), classified by `sequent.mail.inbound_parse`;
3. records what it found: replies exit enrollments (sequences that exit on reply) and
   may opt the contact out, hard bounces mark the contact bounced, auto-replies pause
   the enrollment until the return date;
4. settles uncertain sends against the Sent folder (`sequent.mail.reconcile`).

A refused login pauses the mailbox (sync and sending) until its settings change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Lower
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

from sequent.crm import actions as crm_actions
from sequent.crm.models import ActivityKind
from sequent.lib import clock
from sequent.lib.crypto import CryptoError
from sequent.mail import actions, inbound_parse, reconcile
from sequent.mail.inbound_parse import Inbound
from sequent.mail.models import (
    PENDING_MESSAGE_STATUSES,
    EmailEvent,
    EmailEventKind,
    Mailbox,
    MailboxFolderState,
    MailboxStatus,
    MessageStatus,
    OutboundMessage,
    Security,
)
from sequent.mail.tokens import UnsubscribeTarget
from sequent.sequences.exits import exit_enrollments
from sequent.sequences.models import Enrollment, EnrollmentStatus, ExitReason

log = logging.getLogger(__name__)

# How often one mailbox is read at most.
SYNC_INTERVAL = dt.timedelta(seconds=60)
# How long an auto-reply pauses an enrollment when it names no return date.
AUTO_REPLY_PAUSE = dt.timedelta(days=14)
# Messages whose headers are fetched per round trip.
FETCH_BATCH = 200
# Larger messages are classified from their headers alone.
MAX_BODY_BYTES = 5 * 1024 * 1024
# Mailboxes looked at per call before saying none is due.
CANDIDATES = 10
IMAP_PREFIX = "IMAP:"


@dataclass
class SyncReport:
    """What one mailbox sync did."""

    fetched: int = 0
    replies: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    auto_replies: int = 0
    unsubscribes: int = 0
    reconciled: reconcile.ReconcileReport | None = None
    error: str = ""

    def add(self, other: SyncReport) -> None:
        """Add *other*'s counts to this report."""
        for name in ("fetched", "replies", "hard_bounces", "soft_bounces", "auto_replies", "unsubscribes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def imap_timeout() -> float:
    """Seconds each IMAP command may take (``SEQUENT_IMAP_TIMEOUT``, default 30)."""
    return float(getattr(settings, "SEQUENT_IMAP_TIMEOUT", 30))


# --- which mailbox --------------------------------------------------------------------------


def _candidates(now: dt.datetime) -> Q:
    # Active (or only quota-paused: reading is not sending) mailboxes with IMAP; a mailbox
    # paused by a refused IMAP login is retried once its settings changed since the refusal.
    retry_after_edit = (
        Q(status=MailboxStatus.PAUSED_AUTH)
        & Q(last_error__startswith=IMAP_PREFIX)
        & (Q(last_checked_at__isnull=True) | Q(updated_at__gt=F("last_checked_at")))
    )
    return (
        ~Q(imap_host="")
        & (Q(status__in=(MailboxStatus.ACTIVE, MailboxStatus.PAUSED_QUOTA)) | retry_after_edit)
        & (Q(inbound_due_at__isnull=True) | Q(inbound_due_at__lte=now))
    )


def take_due_mailbox(now: dt.datetime) -> Mailbox | None:
    """Take the mailbox whose sync is most overdue: moving its ``inbound_due_at`` one
    interval ahead is both the throttle and the lease between workers."""
    for pk in (
        Mailbox.objects.filter(_candidates(now))
        .order_by(F("inbound_due_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:CANDIDATES]
    ):
        with transaction.atomic():
            taken = Mailbox.objects.filter(
                Q(pk=pk) & (Q(inbound_due_at__isnull=True) | Q(inbound_due_at__lte=now))
            ).update(inbound_due_at=now + SYNC_INTERVAL)
        if taken:
            try:
                return Mailbox.objects.get(pk=pk)
            except CryptoError as exc:
                do_pause_inbound(pk, f"{IMAP_PREFIX} the stored password cannot be read ({exc})")
    return None


def sync_due(worker_id: str) -> bool:
    """Sync one mailbox whose turn has come (each at most every SYNC_INTERVAL);
    False when none is due. The worker loop calls this once per iteration."""
    mailbox = take_due_mailbox(clock.now())
    if mailbox is None:
        return False
    log.debug("worker %s syncs mailbox %s", worker_id, mailbox.pk)
    sync_mailbox(mailbox)
    return True


# --- pausing on a refused login ---------------------------------------------------------------


def do_pause_inbound(mailbox_pk: int, error: str) -> None:
    """Pause a mailbox whose IMAP login was refused, for reading and sending alike; it is
    tried again once its settings are saved (``updated_at`` after ``last_checked_at``)."""
    now = clock.now()
    with transaction.atomic():
        mailbox = Mailbox.objects.only("pk").get(pk=mailbox_pk)
        actions.do_pause_mailbox(mailbox, MailboxStatus.PAUSED_AUTH, error)
        Mailbox.objects.filter(pk=mailbox_pk).update(last_checked_at=now)


def do_resume_inbound(mailbox: Mailbox) -> None:
    """The IMAP login works again: a mailbox paused for its refusal resumes."""
    now = clock.now()
    with transaction.atomic():
        Mailbox.objects.filter(
            pk=mailbox.pk, status=MailboxStatus.PAUSED_AUTH, last_error__startswith=IMAP_PREFIX
        ).update(status=MailboxStatus.ACTIVE, last_error="", last_checked_at=now, updated_at=now)
    mailbox.refresh_from_db(fields=["status", "last_error", "last_checked_at", "updated_at"])


# --- one mailbox ------------------------------------------------------------------------------


def connect(mailbox: Mailbox) -> IMAPClient:
    """A logged-in IMAP session for *mailbox*; raises LoginError when the login is refused."""
    imap = actions.imap_settings_for(mailbox, imap_timeout())
    if imap is None:
        raise IMAPClientError("the mailbox has no IMAP server")
    client = IMAPClient(
        imap.host,
        port=imap.port,
        ssl=imap.security == Security.SSL,
        ssl_context=imap.ssl_context,
        timeout=imap.timeout,
    )
    try:
        if imap.security == Security.STARTTLS:
            client.starttls(imap.ssl_context)
        client.login(imap.username, imap.password)
    except BaseException:
        _close(client)
        raise
    return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except (IMAPClientError, OSError):
        try:
            client.shutdown()
        except (IMAPClientError, OSError):
            pass


def sync_mailbox(mailbox: Mailbox) -> SyncReport:
    """Read the new mail of every watched folder of *mailbox*, record what it means, and
    reconcile uncertain sends. A refused login pauses the mailbox; other connection
    problems are reported and tried again at the next interval."""
    report = SyncReport()
    where = f"{mailbox.imap_host}:{mailbox.imap_port}"
    try:
        client = connect(mailbox)
    except LoginError as exc:
        detail = str(exc.args[0] if exc.args else exc)
        if detail[:2] in ("b'", 'b"'):  # imapclient passes on the server's words as repr(bytes)
            detail = detail[2:-1]
        report.error = f"{IMAP_PREFIX} login refused by {where} ({detail}); save the new password to resume"
        do_pause_inbound(mailbox.pk, report.error)
        return report
    except CryptoError as exc:
        report.error = f"{IMAP_PREFIX} the stored password cannot be read ({exc})"
        do_pause_inbound(mailbox.pk, report.error)
        return report
    except (IMAPClientError, OSError) as exc:
        report.error = f"{IMAP_PREFIX} cannot read {where} ({exc})"
        log.warning("mailbox %s: %s", mailbox.pk, report.error)
        return report
    try:
        if mailbox.status == MailboxStatus.PAUSED_AUTH:
            do_resume_inbound(mailbox)
        for folder in mailbox.imap_folders or ["INBOX"]:
            try:
                report.add(sync_folder(client, mailbox, folder))
            except IMAPClientError as exc:
                log.warning("mailbox %s: folder %r not read: %s", mailbox.pk, folder, exc)
        report.reconciled = reconcile.reconcile_mailbox(client, mailbox, clock.now())
    except OSError as exc:
        report.error = f"{IMAP_PREFIX} connection to {where} lost ({exc})"
        log.warning("mailbox %s: %s", mailbox.pk, report.error)
    finally:
        _close(client)
    return report


def _resync_start(mailbox: Mailbox) -> dt.date | None:
    # Reading a folder from scratch: only mail since our first send from this mailbox
    # can concern us (None: nothing was ever sent, skip to the end).
    first = (
        OutboundMessage.objects.filter(mailbox=mailbox, sent_at__isnull=False)
        .order_by("sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    return (first - dt.timedelta(days=1)).date() if first else None


def sync_folder(client: IMAPClient, mailbox: Mailbox, folder: str) -> SyncReport:
    """Read the new messages of one folder and record what they mean."""
    report = SyncReport()
    state, _ = MailboxFolderState.objects.get_or_create(mailbox=mailbox, folder=folder)
    selected = client.select_folder(folder, readonly=True)
    uidvalidity = int(selected[b"UIDVALIDITY"])
    uidnext = int(selected.get(b"UIDNEXT", 0) or 0)
    last_uid = state.last_uid if state.uidvalidity == uidvalidity else 0
    if last_uid == 0:
        start = _resync_start(mailbox)
        if start is None:
            uids: list[int] = []
            last_uid = max(uidnext - 1, 0)
        else:
            uids = sorted(int(uid) for uid in client.search(["SINCE", start]))
    else:
        # "N:*" always names the last message, even when its UID is below N.
        uids = sorted(int(uid) for uid in client.search(["UID", f"{last_uid + 1}:*"]) if int(uid) > last_uid)
    for offset in range(0, len(uids), FETCH_BATCH):
        chunk = uids[offset : offset + FETCH_BATCH]
        report.add(_process_chunk(client, mailbox, chunk))
        last_uid = max(last_uid, chunk[-1])
        do_save_folder_state(state, uidvalidity, last_uid)
    do_save_folder_state(state, uidvalidity, last_uid)
    return report


def do_save_folder_state(state: MailboxFolderState, uidvalidity: int, last_uid: int) -> None:
    """Remember how far a folder was read."""
    with transaction.atomic():
        state.uidvalidity, state.last_uid, state.synced_at = uidvalidity, last_uid, clock.now()
        state.save(update_fields=["uidvalidity", "last_uid", "synced_at"])


# --- classifying and matching -----------------------------------------------------------------


def _lower(values: Iterable[str]) -> set[str]:
    return {value.lower() for value in values if value}


def _relevant(mailbox: Mailbox, headers: dict[int, Any]) -> set[int]:
    """UIDs worth a full fetch, judged from headers with two queries."""
    references: dict[int, list[str]] = {}
    senders: dict[int, str] = {}
    own_ids: dict[int, str] = {}
    relevant: set[int] = set()
    own_address = mailbox.email_address.lower()
    for uid, message in headers.items():
        if inbound_parse.looks_like_bounce(message):
            relevant.add(uid)
            continue
        sender = inbound_parse.parse_address(str(message.get("From", "") or ""))
        if sender == own_address:
            continue  # the rep's own mail (a watched Sent folder, a copy to self)
        references[uid] = inbound_parse.referenced_ids(message)
        senders[uid] = sender
        own_ids[uid] = (inbound_parse.message_ids_in(str(message.get("Message-ID", "") or "")) or [""])[0]
    ours = set(
        OutboundMessage.objects.filter(
            message_id__in={ref for refs in references.values() for ref in refs} | set(own_ids.values())
        ).values_list("message_id", flat=True)
    )
    emailed = set(
        OutboundMessage.objects.annotate(to_lower=Lower("to_email"))
        .filter(to_lower__in=_lower(senders.values()), sent_at__isnull=False)
        .values_list("to_lower", flat=True)
        .distinct()
    )
    for uid, refs in references.items():
        if own_ids[uid] in ours:
            continue  # one of our own emails, not an answer to it
        if ours.intersection(refs) or senders[uid] in emailed:
            relevant.add(uid)
    return relevant


def _process_chunk(client: IMAPClient, mailbox: Mailbox, uids: list[int]) -> SyncReport:
    report = SyncReport(fetched=len(uids))
    fetched = client.fetch(uids, ["BODY.PEEK[HEADER]", "RFC822.SIZE"])
    headers = {
        uid: inbound_parse.parse_bytes(data.get(b"BODY[HEADER]") or b"")
        for uid, data in fetched.items()
        if data.get(b"BODY[HEADER]")
    }
    wanted = sorted(_relevant(mailbox, headers))
    small = [uid for uid in wanted if int(fetched[uid].get(b"RFC822.SIZE", 0) or 0) <= MAX_BODY_BYTES]
    bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
    today = clock.now().date()
    items: list[tuple[Inbound, bytes]] = []
    for uid in wanted:
        raw = bodies.get(uid, {}).get(b"BODY[]") or fetched[uid].get(b"BODY[HEADER]") or b""
        items.append((inbound_parse.classify(raw, today=today), raw))
    matches = _match(mailbox, [item for item, _ in items])
    for item, raw in items:
        message = matches.get(id(item))
        if message is None:
            continue
        key_source = item.message_id or hashlib.sha256(raw[:65536]).hexdigest()
        if item.kind == "reply":
            outcome = do_record_reply(message, item, key_source)
            report.replies += outcome[0]
            report.unsubscribes += outcome[1]
        elif item.kind == "hard_bounce":
            report.hard_bounces += do_record_bounce(message, item, key_source)
        elif item.kind == "soft_bounce":
            report.soft_bounces += 1
            log.info(
                "temporary delivery problem for message %s (%s): %s",
                message.pk,
                ", ".join(f"{b.recipient} {b.action} {b.status}" for b in item.bounces),
                "; ".join(b.diagnostic for b in item.bounces if b.diagnostic),
            )
        elif item.kind == "auto_reply":
            report.auto_replies += do_record_auto_reply(message, item, key_source)
    return report


def _match(mailbox: Mailbox, items: list[Inbound]) -> dict[int, OutboundMessage]:
    """The outbound message each inbound item concerns (keyed by ``id(item)``): the one
    its headers name, else the latest we sent to the address it is about before it came."""
    by_id = {
        m.message_id: m
        for m in OutboundMessage.objects.filter(
            message_id__in={ref for item in items for ref in item.referenced_ids}
        ).select_related("contact", "enrollment__sequence")
    }
    addresses: dict[int, str] = {}
    for item in items:
        if item.kind in ("hard_bounce", "soft_bounce"):
            failed = [b.recipient for b in item.bounces if b.action in ("failed", "delayed")]
            addresses[id(item)] = failed[0] if failed else ""
        else:
            addresses[id(item)] = item.from_address
    latest: dict[str, list[OutboundMessage]] = {}
    for m in (
        OutboundMessage.objects.annotate(to_lower=Lower("to_email"))
        .filter(
            to_lower__in=_lower(addresses.values()),
            sent_at__isnull=False,
            status=MessageStatus.SENT,
        )
        .filter(Q(mailbox=mailbox) | Q(mailbox__owner_id=mailbox.owner_id) | Q(mailbox__isnull=True))
        .select_related("contact", "enrollment__sequence")
        .order_by("-sent_at", "-pk")
    ):
        latest.setdefault(m.to_email.lower(), []).append(m)
    now = clock.now()
    matched: dict[int, OutboundMessage] = {}
    for item in items:
        named = next((by_id[ref] for ref in item.referenced_ids if ref in by_id), None)
        if named is not None:
            matched[id(item)] = named
            continue
        received = min(item.date or now, now)
        sent_before = [m for m in latest.get(addresses[id(item)], []) if m.sent_at and m.sent_at <= received]
        if sent_before:
            matched[id(item)] = sent_before[0]
    return matched


def _key(kind: str, source: str, extra: str = "") -> str:
    return f"in:{kind}:{hashlib.sha256(f'{source}|{extra}'.encode()).hexdigest()}"


def _when(item: Inbound) -> dt.datetime:
    now = clock.now()
    return min(item.date, now) if item.date else now


# --- recording --------------------------------------------------------------------------------


def do_record_reply(message: OutboundMessage, item: Inbound, key_source: str) -> tuple[int, int]:
    """Record a reply to *message*: the replied event and activity (the text without its
    quoted history), the exit of the enrollment when its sequence exits on reply, and an
    opt-out when the first line asks for one. Returns (replies, unsubscribes) recorded."""
    now = clock.now()
    occurred = _when(item)
    with transaction.atomic():
        _, created = EmailEvent.objects.get_or_create(
            dedupe_key=_key("replied", key_source),
            defaults={
                "message": message,
                "contact_id": message.contact_id,
                "enrollment_id": message.enrollment_id,
                "step_id": message.step_id,
                "kind": EmailEventKind.REPLIED,
                "occurred_at": occurred,
                "metadata": {"inbound_message_id": item.message_id[:255], "from": item.from_address},
            },
        )
        if not created:
            return 0, 0
        crm_actions.do_record_activity(
            message.contact,
            ActivityKind.EMAIL_REPLIED,
            occurred_at=occurred,
            subject=item.subject,
            body=item.reply_text,
            metadata={"message": message.pk, "inbound_message_id": item.message_id},
        )
        if message.enrollment_id is not None:
            exit_enrollments(
                Enrollment.objects.filter(pk=message.enrollment_id, sequence__exit_on_reply=True),
                ExitReason.REPLIED,
                now,
            )
            if message.contact.account_id is not None:
                exit_enrollments(
                    Enrollment.objects.filter(
                        sequence__enrollments=message.enrollment_id,
                        sequence__exit_account_on_reply=True,
                        contact__account_id=message.contact.account_id,
                    ).exclude(pk=message.enrollment_id),
                    ExitReason.ACCOUNT_REPLIED,
                    now,
                )
        if item.wants_unsubscribe:
            actions.do_unsubscribe(UnsubscribeTarget(kind="message", pk=message.pk))
            return 1, 1
    return 1, 0


def do_record_bounce(message: OutboundMessage, item: Inbound, key_source: str) -> int:
    """Record a hard bounce of *message*: the bounced event and activity, the contact's
    email status bounced, its enrollments that exit on bounce exited, and every email
    still waiting for that address cancelled. Returns 1 when newly recorded."""
    now = clock.now()
    hard = [b for b in item.bounces if b.is_hard]
    report = next((b for b in hard if b.recipient == message.to_email.lower()), hard[0])
    with transaction.atomic():
        _, created = EmailEvent.objects.get_or_create(
            dedupe_key=_key("bounced", key_source, report.recipient),
            defaults={
                "message": message,
                "contact_id": message.contact_id,
                "enrollment_id": message.enrollment_id,
                "step_id": message.step_id,
                "kind": EmailEventKind.BOUNCED,
                "occurred_at": _when(item),
                "metadata": {
                    "source": "imap",
                    "recipient": report.recipient,
                    "status": report.status,
                    "reason": report.diagnostic,
                    "inbound_message_id": item.message_id[:255],
                },
            },
        )
        if not created:
            return 0
        actions.do_record_email_activities(
            [
                actions.EmailActivity(
                    message.contact_id,
                    ActivityKind.EMAIL_BOUNCED,
                    _when(item),
                    message.owner_id,
                    message.subject,
                    {"message": message.pk, "status": report.status, "reason": report.diagnostic},
                )
            ]
        )
        actions.do_bounce_contacts({message.contact_id}, now)
        # Other contacts may share the address: nothing more goes to it.
        OutboundMessage.objects.annotate(to_lower=Lower("to_email")).filter(
            to_lower=report.recipient or message.to_email.lower(), status__in=PENDING_MESSAGE_STATUSES
        ).update(
            status=MessageStatus.CANCELLED,
            reason_code="bounced",
            last_error="the address bounced",
            claimed_by="",
            lease_until=None,
        )
    return 1


def pause_until(message: OutboundMessage, item: Inbound, now: dt.datetime) -> dt.datetime:
    """When an enrollment paused by an auto-reply resumes: the start of the return day in
    the sequence's time zone, else AUTO_REPLY_PAUSE from now."""
    if item.return_date is None:
        return now + AUTO_REPLY_PAUSE
    enrollment = message.enrollment
    zone_name = enrollment.sequence.time_zone if enrollment is not None else "UTC"
    try:
        zone: dt.tzinfo = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = dt.UTC
    start = dt.datetime.combine(item.return_date, dt.time(), tzinfo=zone).astimezone(dt.UTC)
    return max(start, now)


def do_record_auto_reply(message: OutboundMessage, item: Inbound, key_source: str) -> int:
    """Record an auto-reply (never a reply): the auto_reply event, and the enrollment
    paused until the return date it gives (or two weeks). Returns 1 when newly recorded."""
    now = clock.now()
    until = pause_until(message, item, now)
    with transaction.atomic():
        _, created = EmailEvent.objects.get_or_create(
            dedupe_key=_key("auto_reply", key_source),
            defaults={
                "message": message,
                "contact_id": message.contact_id,
                "enrollment_id": message.enrollment_id,
                "step_id": message.step_id,
                "kind": EmailEventKind.AUTO_REPLY,
                "occurred_at": _when(item),
                "is_automated": True,
                "metadata": {
                    "inbound_message_id": item.message_id[:255],
                    "return_date": item.return_date.isoformat() if item.return_date else None,
                    "paused_until": until.isoformat(),
                },
            },
        )
        if not created:
            return 0
        if message.enrollment_id is not None:
            Enrollment.objects.filter(pk=message.enrollment_id, status=EnrollmentStatus.ACTIVE).update(
                status=EnrollmentStatus.PAUSED, paused_until=until
            )
    return 1
