"""Delivering the outbox: claim due rows per mailbox, check, render, build, send, record.

One call of `deliver_due` handles one batch of one mailbox (docs/EMAIL.md, "Delivery"):

1. Housekeeping: a row left ``sending`` after its lease expired becomes ``uncertain``
   (it may have left; it is never resent), a quota pause whose window passed ends,
   and rows without a mailbox get their owner's (or the workspace default).
2. Claim: up to the mailbox's per-minute room of due ``queued``/``deferred`` rows,
   under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's IMMEDIATE
   transaction serialises claims). Rows over their owner's daily limit are deferred
   to the sequence's next run.
3. The send-time gate, rendering and building, for the whole batch with a fixed
   number of queries; the rendered subject and body are stored before any SMTP.
4. One SMTP connection for the batch; each failure class has its state (DESIGN 5).
5. Outcomes, events, activities and bounces written in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import smtplib
import uuid
import zoneinfo
from collections import defaultdict, deque
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce, Least

from sequent.crm.models import ActivityKind, Contact, EmailStatus
from sequent.lib import clock
from sequent.lib.bulk import insert_rows
from sequent.lib.crypto import CryptoError
from sequent.mail import actions, building, links, smtp, templating, tracking
from sequent.mail.models import (
    EmailEvent,
    EmailEventKind,
    Mailbox,
    MailboxStatus,
    MessageStatus,
    OutboundMessage,
    TrackedLink,
)
from sequent.sequences import schedule as sched
from sequent.sequences.models import (
    EnrollmentStatus,
    Sequence,
    SequenceStatus,
    Step,
    StepKind,
    ThreadMode,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 100
# Long enough for a full batch over a slow server (each SMTP step has its own timeout).
LEASE = dt.timedelta(minutes=15)
# How many mailboxes with due rows one call looks at before saying there is nothing to do.
MAILBOX_CANDIDATES = 20
# A reply that waits for the earlier email of its thread looks again after this long.
THREAD_WAIT = dt.timedelta(minutes=1)
# Rows with no mailbox to send from, or of a paused sequence, look again after this long.
RECHECK = dt.timedelta(hours=1)

DUE_STATUSES = (MessageStatus.QUEUED, MessageStatus.DEFERRED)


class Reason:
    """``OutboundMessage.reason_code`` values: why a row waits, was cancelled or failed."""

    DAILY_LIMIT = "daily_limit"
    NO_MAILBOX = "no_mailbox"
    MAILBOX_PAUSED = "mailbox_paused"
    TEMPORARY = "temporary"
    GAVE_UP = "gave_up"
    AUTH = "auth"
    QUOTA = "quota"
    RECIPIENT = "recipient_rejected"
    PERMANENT = "permanent"
    UNCERTAIN = "uncertain"
    STALE = "stale_lease"
    TEMPLATE = "template"
    BUILD = "build"
    OPTED_OUT = "opted_out"
    BOUNCED = "bounced"
    NO_ADDRESS = "no_address"
    ENROLLMENT = "enrollment_inactive"
    ENROLLMENT_PAUSED = "enrollment_paused"
    SEQUENCE_PAUSED = "sequence_paused"
    SEQUENCE_ENDED = "sequence_ended"
    STEP_DELETED = "step_deleted"
    THREAD_WAIT = "thread_wait"
    UNSUBSCRIBED = "unsubscribed"


# --- policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off after temporary failures, Postfix-like: ``first`` doubling up to
    ``maximum``, giving up ``give_up_after`` the first attempt. ``quota_pause`` is how
    long a mailbox rests after the provider's sending limit."""

    first: dt.timedelta = dt.timedelta(minutes=5)
    maximum: dt.timedelta = dt.timedelta(hours=4)
    give_up_after: dt.timedelta = dt.timedelta(days=5)
    quota_pause: dt.timedelta = dt.timedelta(hours=1)


def retry_policy() -> RetryPolicy:
    """The policy from settings (``SEQUENT_MAIL_RETRY_FIRST_SECONDS``,
    ``..._RETRY_MAX_SECONDS``, ``..._GIVE_UP_HOURS``, ``..._QUOTA_PAUSE_SECONDS``)."""
    default = RetryPolicy()

    def seconds(name: str, fallback: dt.timedelta) -> dt.timedelta:
        value = getattr(settings, name, None)
        return dt.timedelta(seconds=float(value)) if value else fallback

    give_up = getattr(settings, "SEQUENT_MAIL_GIVE_UP_HOURS", None)
    return RetryPolicy(
        first=seconds("SEQUENT_MAIL_RETRY_FIRST_SECONDS", default.first),
        maximum=seconds("SEQUENT_MAIL_RETRY_MAX_SECONDS", default.maximum),
        give_up_after=dt.timedelta(hours=float(give_up)) if give_up else default.give_up_after,
        quota_pause=seconds("SEQUENT_MAIL_QUOTA_PAUSE_SECONDS", default.quota_pause),
    )


def retry_delay(policy: RetryPolicy, attempts: int) -> dt.timedelta:
    """The wait after the *attempts*-th failed attempt: first, 2x, 4x ... capped at maximum."""
    exponent = min(max(attempts - 1, 0), 30)
    return min(policy.first * (2**exponent), policy.maximum)


def smtp_timeout() -> float:
    """Seconds each SMTP step may take (``SEQUENT_SMTP_TIMEOUT``, default 30)."""
    return float(getattr(settings, "SEQUENT_SMTP_TIMEOUT", 30) or 30)


# --- template sources -------------------------------------------------------------------


def email_sources(step: Step) -> tuple[str, str]:
    """The Liquid subject and body an email step sends: its template when it has one,
    else its own subject and body. The one place delivery reads a step's text."""
    template = getattr(step, "template", None)
    if template is not None:
        return template.subject, template.body
    return step.subject, step.body


def _sends_rows_own_text(message: OutboundMessage) -> bool:
    # An email reminder is a draft the rep personalised: its subject and body are final.
    return message.step is None or message.step.kind == StepKind.EMAIL_REMINDER


# --- housekeeping --------------------------------------------------------------------------


def _due(now: dt.datetime) -> QuerySet[OutboundMessage]:
    return OutboundMessage.objects.filter(status__in=DUE_STATUSES, not_before__lte=now)


def recover_stale(now: dt.datetime) -> int:
    """Rows left ``sending`` by a worker whose lease expired: those never handed to SMTP
    are queued again; the others become ``uncertain``: the message may have left, so it
    is never resent blindly (reconciled through the Sent folder). Returns how many."""
    stale = OutboundMessage.objects.filter(status=MessageStatus.SENDING, lease_until__lt=now)
    with transaction.atomic():
        requeued = stale.filter(handed_at__isnull=True).update(
            status=MessageStatus.QUEUED, claimed_by="", lease_until=None
        )
        return requeued + stale.update(
            status=MessageStatus.UNCERTAIN,
            reason_code=Reason.STALE,
            last_error="the worker sending it stopped before recording the result; it may have been "
            "sent, so it is not sent again until the Sent folder has been checked",
            claimed_by="",
            lease_until=None,
        )


def _wake_mailboxes(now: dt.datetime) -> int:
    # A provider's quota window has passed: the mailbox may send again.
    with transaction.atomic():
        return Mailbox.objects.filter(status=MailboxStatus.PAUSED_QUOTA, paused_until__lte=now).update(
            status=MailboxStatus.ACTIVE, paused_until=None, last_error="", updated_at=now
        )


def _assign_mailboxes(now: dt.datetime) -> int:
    """Give due rows without a mailbox their owner's first mailbox, else the workspace
    default; rows left without one wait (deferred) with the reason. Set-based."""
    homeless = _due(now).filter(mailbox__isnull=True)
    if not homeless.exists():
        return 0
    with transaction.atomic():
        first_own = (
            Mailbox.objects.filter(owner=OuterRef("owner_id"))
            .exclude(status=MailboxStatus.DISABLED)
            .order_by("pk")
            .values("pk")[:1]
        )
        changed = homeless.update(mailbox=Subquery(first_own))
        default = (
            Mailbox.objects.filter(is_workspace_default=True)
            .exclude(status=MailboxStatus.DISABLED)
            .values_list("pk", flat=True)
            .first()
        )
        if default is not None:
            _due(now).filter(mailbox__isnull=True).update(mailbox_id=default)
        changed += (
            _due(now)
            .filter(mailbox__isnull=True)
            .update(
                status=MessageStatus.DEFERRED,
                not_before=now + RECHECK,
                reason_code=Reason.NO_MAILBOX,
                last_error="no mailbox to send from: connect a mailbox (or ask an administrator for a "
                "workspace default mailbox)",
            )
        )
    return changed


# --- claiming ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """Rows of one mailbox that one worker holds until ``until``."""

    token: str
    mailbox_id: int
    ids: list[int]
    until: dt.datetime


def _local_midnight(zone_name: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The start of the local day holding *now* and of the next one, as UTC instants."""
    try:
        zone = zoneinfo.ZoneInfo(zone_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    local = now.astimezone(zone)
    start = dt.datetime.combine(local.date(), dt.time(0), tzinfo=zone)
    following = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start.astimezone(dt.UTC), following.astimezone(dt.UTC)


def _daily_room(owner_ids: Iterable[int], now: dt.datetime) -> dict[int, tuple[int, int, dt.datetime]]:
    """Per owner: (limit, emails still allowed today, start of their next local day).

    Today is the owner's local day (``User.time_zone``); sent and in-flight rows count."""
    from sequent.users.models import User

    room: dict[int, tuple[int, int, dt.datetime]] = {}
    owners = list(User.objects.filter(pk__in=list(owner_ids)).only("pk", "daily_email_limit", "time_zone"))
    # Two narrow counts instead of one OR, each on its own index: rows in flight (few,
    # through the status index) and each owner's sent rows of today (owner, sent_at).
    sending = dict(
        OutboundMessage.objects.filter(status=MessageStatus.SENDING, owner_id__in=[o.pk for o in owners])
        .values("owner_id")
        .annotate(n=Count("pk"))
        .values_list("owner_id", "n")
    )
    for owner in owners:
        start, following = _local_midnight(owner.time_zone, now)
        sent = OutboundMessage.objects.filter(
            owner_id=owner.pk, sent_at__gte=start, status=MessageStatus.SENT
        ).count()
        used = sent + sending.get(owner.pk, 0)
        room[owner.pk] = (owner.daily_email_limit, owner.daily_email_limit - used, following)
    return room


def _next_run_after(sequence: Sequence | None, after: dt.datetime) -> dt.datetime:
    """The sequence's first run slot after *after* (the instant itself for no sequence)."""
    if sequence is None:
        return after
    try:
        return sched.next_slot(
            sequence.schedule, after - dt.timedelta(microseconds=1), anchor=sequence.anchor_date
        )[1]
    except ValueError:
        return after


def _defer_over_daily_limit(
    rows: list[dict[str, Any]], room: dict[int, tuple[int, int, dt.datetime]]
) -> None:
    """Defer *rows* (over their owner's daily limit) to their sequence's next run after
    the owner's local midnight: one UPDATE per (sequence, owner)."""
    groups: dict[tuple[int | None, int], list[int]] = defaultdict(list)
    for row in rows:
        groups[(row["sequence_id"], row["owner_id"])].append(row["pk"])
    sequences = Sequence.objects.in_bulk([sid for sid, _ in groups if sid is not None])
    for (sequence_id, owner_id), ids in groups.items():
        limit, _, following = room[owner_id]
        when = _next_run_after(sequences.get(sequence_id) if sequence_id else None, following)
        OutboundMessage.objects.filter(pk__in=ids).update(
            status=MessageStatus.DEFERRED,
            not_before=when,
            reason_code=Reason.DAILY_LIMIT,
            last_error=f"the daily sending limit ({limit} emails a day) is reached; it goes out at the next run",
            claimed_by="",
            lease_until=None,
        )


def _skip_locked() -> bool:
    return bool(connection.features.has_select_for_update_skip_locked)


def _oldest_due_rows(mailbox_id: int, now: dt.datetime, size: int) -> list[dict[str, Any]]:
    """The mailbox's *size* oldest due rows (locked, skipping locked ones, on
    PostgreSQL). One ordered index range per status, merged here: an IN on status
    would make PostgreSQL read and sort every due row of the mailbox."""
    rows: list[dict[str, Any]] = []
    for status in DUE_STATUSES:
        qs = OutboundMessage.objects.filter(
            mailbox_id=mailbox_id, status=status, not_before__lte=now
        ).order_by("not_before", "pk")
        if _skip_locked():
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        rows += [dict(row) for row in qs.values("pk", "owner_id", "sequence_id", "not_before")[:size]]
    rows.sort(key=lambda row: (row["not_before"], row["pk"]))
    return rows[:size]


def claim(
    worker_id: str, now: dt.datetime, limit: int = BATCH_SIZE, lease: dt.timedelta = LEASE
) -> tuple[Claim | None, bool]:
    """Claim a batch of due rows of one active mailbox: (claim or None, whether rows
    were deferred for a daily limit). The per-minute room of the mailbox caps the batch."""
    # Per active mailbox, its oldest due row: one seek per status in the (mailbox,
    # status, not_before) index, however long the outbox is (with an IN on status,
    # PostgreSQL would read and sort every due row of the mailbox).
    queued, deferred = (
        Subquery(
            OutboundMessage.objects.filter(mailbox_id=OuterRef("pk"), status=status, not_before__lte=now)
            .order_by("not_before")
            .values("not_before")[:1]
        )
        for status in DUE_STATUSES
    )
    candidates = list(
        Mailbox.objects.filter(status=MailboxStatus.ACTIVE)
        .annotate(first=Least(Coalesce(queued, deferred), Coalesce(deferred, queued)))
        .filter(first__isnull=False)
        .order_by("first", "pk")
        .values_list("pk", flat=True)[:MAILBOX_CANDIDATES]
    )
    deferred_any = False
    for mailbox_id in candidates:
        with transaction.atomic():
            boxes = Mailbox.objects.filter(pk=mailbox_id, status=MailboxStatus.ACTIVE).only(
                "pk", "per_minute_limit"
            )
            if _skip_locked():
                # Another worker filling this mailbox's minute holds the lock: take the next mailbox.
                boxes = boxes.select_for_update(skip_locked=True)
            mailbox = boxes.first()
            if mailbox is None:
                continue
            # Sent in the last minute, plus in flight: two index ranges, not one OR over
            # every row of the mailbox.
            recent = now - dt.timedelta(minutes=1)
            mailbox_rows = OutboundMessage.objects.filter(mailbox_id=mailbox_id)
            used = (
                mailbox_rows.filter(sent_at__gt=recent).count()
                + mailbox_rows.filter(status=MessageStatus.SENDING).exclude(sent_at__gt=recent).count()
            )
            size = min(limit, mailbox.per_minute_limit - used)
            if size <= 0:
                continue
            rows = _oldest_due_rows(mailbox_id, now, size)
            if not rows:
                continue
            room = _daily_room({row["owner_id"] for row in rows}, now)
            taken: list[int] = []
            over: list[dict[str, Any]] = []
            left = {owner: allowed for owner, (_, allowed, _) in room.items()}
            for row in rows:
                if left[row["owner_id"]] > 0:
                    left[row["owner_id"]] -= 1
                    taken.append(row["pk"])
                else:
                    over.append(row)
            if over:
                _defer_over_daily_limit(over, room)
                deferred_any = True
            if not taken:
                continue
            token = f"{worker_id[:40]}/{uuid.uuid4().hex[:16]}"
            until = now + lease
            # By primary key alone: the rows were read due in this transaction, which holds
            # them (row locks on PostgreSQL, the write lock on SQLite). A status test here
            # would let SQLite walk the status index over the whole outbox instead.
            OutboundMessage.objects.filter(pk__in=taken).update(
                status=MessageStatus.SENDING, claimed_by=token, lease_until=until, handed_at=None
            )
            return Claim(token, mailbox_id, taken, until), deferred_any
    return None, deferred_any


# --- preparing a batch ----------------------------------------------------------------------


@dataclass
class Prepared:
    """A row ready for SMTP."""

    message: OutboundMessage
    data: bytes
    envelope_from: str
    recipients: list[str]
    links: list[str] = field(default_factory=list)  # tracked link i -> its original URL


@dataclass
class BatchReport:
    """What one batch did, by outcome."""

    claimed: int = 0
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    cancelled: int = 0
    uncertain: int = 0
    requeued: int = 0
    bounced: int = 0

    def add(self, other: BatchReport) -> None:
        """Add *other*'s counts to these."""
        for name in (f.name for f in dataclasses.fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Batch:
    """Working state of one batch: rows, their outcomes, what to record."""

    claim: Claim
    now: dt.datetime
    mailbox: Mailbox
    policy: RetryPolicy
    messages: list[OutboundMessage] = field(default_factory=list)
    done: dict[int, OutboundMessage] = field(default_factory=dict)
    sent: list[OutboundMessage] = field(default_factory=list)
    bounced: list[OutboundMessage] = field(default_factory=list)
    report: BatchReport = field(default_factory=BatchReport)


# Which BatchReport counter each outcome status adds to.
_REPORT_FIELD: dict[str, str] = {
    MessageStatus.SENT: "sent",
    MessageStatus.DEFERRED: "deferred",
    MessageStatus.FAILED: "failed",
    MessageStatus.CANCELLED: "cancelled",
    MessageStatus.UNCERTAIN: "uncertain",
    MessageStatus.QUEUED: "requeued",
}


def _finish(
    batch: _Batch, message: OutboundMessage, status: str, reason: str = "", error: str = "", **changes: Any
) -> None:
    """Set a row's outcome in memory; `_write_outcomes` stores them all at once."""
    message.status = status
    message.reason_code = reason
    message.last_error = error[:2000]
    message.claimed_by = ""
    message.lease_until = None
    for name, value in changes.items():
        setattr(message, name, value)
    batch.done[message.pk] = message
    counter = _REPORT_FIELD[status]
    setattr(batch.report, counter, getattr(batch.report, counter) + 1)


def _gate(batch: _Batch, message: OutboundMessage) -> bool:
    """The send-time check: False (and the row's outcome set) when it must not leave now."""
    now = batch.now
    enrollment, sequence, contact = message.enrollment, message.sequence, message.contact
    if message.step is not None and message.step.deleted_at is not None:
        _finish(
            batch,
            message,
            MessageStatus.CANCELLED,
            Reason.STEP_DELETED,
            "the step was removed from the sequence",
        )
        return False
    if sequence is not None and sequence.status == SequenceStatus.ARCHIVED:
        _finish(batch, message, MessageStatus.CANCELLED, Reason.SEQUENCE_ENDED, "the sequence was archived")
        return False
    if enrollment is not None and enrollment.status == EnrollmentStatus.PAUSED:
        until = (
            enrollment.paused_until
            if enrollment.paused_until and enrollment.paused_until > now
            else now + dt.timedelta(days=1)
        )
        _finish(
            batch,
            message,
            MessageStatus.DEFERRED,
            Reason.ENROLLMENT_PAUSED,
            f"the enrollment is paused until {until.isoformat()}",
            not_before=until,
        )
        return False
    # A completed enrollment still sends: its last steps' emails were queued as it completed.
    if enrollment is not None and enrollment.status == EnrollmentStatus.EXITED:
        why = f" ({enrollment.exit_reason})" if enrollment.exit_reason else ""
        _finish(
            batch,
            message,
            MessageStatus.CANCELLED,
            Reason.ENROLLMENT,
            f"the enrollment is {enrollment.status}{why}",
        )
        return False
    if sequence is not None and sequence.status == SequenceStatus.PAUSED:
        _finish(
            batch,
            message,
            MessageStatus.DEFERRED,
            Reason.SEQUENCE_PAUSED,
            "the sequence is paused",
            not_before=now + RECHECK,
        )
        return False
    if contact.email_opt_out:
        _finish(batch, message, MessageStatus.CANCELLED, Reason.OPTED_OUT, "the contact opted out of email")
        return False
    if contact.email_status == EmailStatus.BOUNCED:
        _finish(
            batch, message, MessageStatus.CANCELLED, Reason.BOUNCED, "the contact's email address bounced"
        )
        return False
    if not (contact.email or message.to_email):
        _finish(
            batch, message, MessageStatus.CANCELLED, Reason.NO_ADDRESS, "the contact has no email address"
        )
        return False
    return True


def _contact_context(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email,
        "mobile": contact.mobile,
        "job_title": contact.job_title,
        "time_zone": contact.time_zone,
        "country": contact.country,
        "tags": [tag.name for tag in contact.tags.all()],
        "custom": dict(contact.custom or {}),
    }


def render_context(
    contact: Contact,
    owner: Any,
    mailbox: Mailbox | None,
    sequence: Sequence | dict[str, Any] | None,
    unsubscribe_link: str | None,
) -> dict[str, Any]:
    """The Liquid context of one email (docs/EMAIL.md, "Placeholders")."""
    account = contact.account
    account_data = None
    if account is not None:
        account_data = {
            "name": account.name,
            "domain": account.domain,
            "industry": account.industry,
            "custom": dict(account.custom or {}),
        }
    sender = {
        "first_name": owner.first_name,
        "last_name": owner.last_name,
        "full_name": owner.get_full_name(),
        "email": mailbox.email_address if mailbox is not None else owner.email,
        "name": (mailbox.display_name if mailbox is not None else "") or owner.get_full_name(),
        "user_email": owner.email,
    }
    sequence_data = sequence if isinstance(sequence, dict) or sequence is None else {"name": sequence.name}
    return templating.build_context(
        _contact_context(contact), account_data, sender, sequence_data, unsubscribe_link
    )


@dataclass(frozen=True)
class _Parent:
    message_id: str
    subject: str
    references: str


def _thread_parents(messages: list[OutboundMessage]) -> dict[int, _Parent | str | None]:
    """For each reply-mode row: the sent message it answers, "wait" when an earlier email
    of the enrollment is still on its way, or None (no earlier email was sent). One query."""
    replies = [
        m
        for m in messages
        if m.step is not None and m.enrollment_id is not None and m.step.thread == ThreadMode.REPLY
    ]
    if not replies:
        return {}
    earlier: dict[int, list[tuple[int, OutboundMessage]]] = defaultdict(list)
    for other in (
        OutboundMessage.objects.filter(
            enrollment_id__in={m.enrollment_id for m in replies}, step__isnull=False
        )
        .select_related("step")
        .only(
            "pk",
            "enrollment_id",
            "status",
            "subject",
            "message_id",
            "thread_references",
            "step__position",
            "step__kind",
        )
    ):
        assert other.step is not None and other.enrollment_id is not None
        if other.step.kind == StepKind.EMAIL or other.status == MessageStatus.SENT:
            earlier[other.enrollment_id].append((other.step.position, other))
    parents: dict[int, _Parent | str | None] = {}
    for message in replies:
        assert message.step is not None and message.enrollment_id is not None
        found: _Parent | str | None = None
        for _, other in sorted(earlier[message.enrollment_id], key=lambda item: -item[0]):
            if other.pk == message.pk or other.step is None or other.step.position >= message.step.position:
                continue
            if other.status == MessageStatus.SENT:
                found = _Parent(other.message_id, other.subject, other.thread_references)
                break
            if other.status in (MessageStatus.QUEUED, MessageStatus.DEFERRED, MessageStatus.SENDING):
                found = "wait"
                break
        parents[message.pk] = found
    return parents


def _prepare_steps(
    batch: _Batch, message: OutboundMessage, parent: _Parent | str | None
) -> Generator[None, None, Prepared | None]:
    """Render and build one row, or set its outcome (template or build error, thread wait).

    A generator that pauses between the stages (render, tracking, plain text, build),
    each a fraction of a millisecond, so the sender can run them while it waits for
    the SMTP server (`_Feed`). Returns the row ready to send, or None (its outcome set)."""
    now, mailbox = batch.now, batch.mailbox
    step = message.step
    if parent == "wait":
        _finish(
            batch,
            message,
            MessageStatus.DEFERRED,
            Reason.THREAD_WAIT,
            "waits for the earlier email of its thread to be sent",
            not_before=now + THREAD_WAIT,
        )
        return None
    include_unsubscribe = step.include_unsubscribe if step is not None else False
    unsubscribe_url = tracking.unsubscribe_url(message.pk) if include_unsubscribe else None
    if _sends_rows_own_text(message):
        subject, html = message.subject.strip(), message.body
        if not subject or not html.strip():
            _finish(
                batch, message, MessageStatus.FAILED, Reason.TEMPLATE, "the draft has no subject or no body"
            )
            return None
    else:
        assert step is not None
        subject_src, body_src = email_sources(step)
        if not subject_src.strip() and isinstance(parent, _Parent):
            subject_src = parent.subject
        if not subject_src.strip():
            _finish(
                batch,
                message,
                MessageStatus.FAILED,
                Reason.TEMPLATE,
                "subject: the step replies to an earlier email that was not sent, and has no subject of its own",
            )
            return None
        context = render_context(message.contact, message.owner, mailbox, message.sequence, unsubscribe_url)
        try:
            rendered = templating.render_email(subject_src, body_src, context)
        except templating.TemplateRenderError as exc:
            _finish(batch, message, MessageStatus.FAILED, Reason.TEMPLATE, f"template: {exc.message}")
            return None
        subject, html = rendered.subject, rendered.html
        yield

    track_clicks = step.track_clicks if step is not None else False
    track_opens = step.track_opens if step is not None else False
    tracked_html, urls = links.prepare_tracking(
        html,
        click_url_for=(lambda index, _url: tracking.click_url(message.pk, index)) if track_clicks else None,
        open_pixel_url=tracking.open_url(message.pk) if track_opens else None,
        keep_urls=[unsubscribe_url] if unsubscribe_url else (),
    )
    yield
    text = building.html_to_text(tracked_html)
    yield
    to_address = message.contact.email or message.to_email
    request = building.BuildRequest(
        sender=building.Mailbox(mailbox.email_address, mailbox.display_name or message.owner.get_full_name()),
        to=[building.Mailbox(to_address, message.contact.full_name)],
        subject=subject,
        html=tracked_html,
        message_id=message.message_id,
        cc=[building.Mailbox(address) for address in (step.cc if step is not None else [])],
        bcc=[building.Mailbox(address) for address in (step.bcc if step is not None else [])],
        reply_to=[building.Mailbox(step.reply_to)] if step is not None and step.reply_to else [],
        date=now,
        thread_parent_message_id=parent.message_id if isinstance(parent, _Parent) else None,
        thread_references=parent.references.split() if isinstance(parent, _Parent) else (),
        thread_subject=parent.subject if isinstance(parent, _Parent) else None,
        unsubscribe_url=unsubscribe_url,
        text=text,
    )
    try:
        built = building.build(request)
    except building.MessageBuildError as exc:
        _finish(batch, message, MessageStatus.FAILED, Reason.BUILD, str(exc))
        return None
    message.subject = built.subject
    message.body = html
    message.to_email = to_address
    message.from_email = mailbox.email_address
    message.in_reply_to = built.in_reply_to
    message.thread_references = built.references
    return Prepared(message, built.data, built.envelope_from, built.recipients, urls if track_clicks else [])


_RENDERED_FIELDS = ["subject", "body", "to_email", "from_email", "in_reply_to", "thread_references"]
_OUTCOME_FIELDS = [
    "status",
    "reason_code",
    "last_error",
    "claimed_by",
    "lease_until",
    "not_before",
    "sent_at",
    "attempts",
    "first_attempt_at",
]


class _Feed:
    """The rows of a batch that passed the gate, prepared, stored and handed to the
    sending loop in order.

    `next` prepares up to `CHUNK` rows and stores them in one transaction when none is
    ready. ``work`` runs one step ahead of that: store a prepared row, else one
    preparation step (`_prepare_steps`). The sending loop calls it while a slow SMTP
    server has not answered yet (``smtp.send(idle=...)``), so the next emails are
    rendered and stored while the server handles this one.
    """

    CHUNK = 25

    def __init__(self, batch: _Batch, messages: list[OutboundMessage], parents: dict[int, Any]) -> None:
        self.batch = batch
        self.parents = parents
        self.todo: deque[OutboundMessage] = deque(messages)
        self.current: OutboundMessage | None = None
        self.steps: Generator[None, None, Prepared | None] | None = None
        self.prepared: deque[Prepared] = deque()  # not stored yet
        self.ready: deque[Prepared] = deque()  # stored
        self.error: Exception | None = None

    def _prepare_step(self) -> bool:
        if self.steps is None:
            if not self.todo:
                return False
            self.current = self.todo.popleft()
            self.steps = _prepare_steps(self.batch, self.current, self.parents.get(self.current.pk))
        try:
            next(self.steps)
        except StopIteration as done:
            if done.value is not None:
                self.prepared.append(done.value)
            self.steps = self.current = None
        return True

    def _store(self, count: int) -> None:
        items = [self.prepared.popleft() for _ in range(min(count, len(self.prepared)))]
        _store_rendered(items, self.batch.claim.token)
        self.ready.extend(items)

    def work(self) -> bool:
        """Run one step; False when there is nothing left to prepare or store.

        An unexpected error is kept and raised by `next`, outside any SMTP exchange."""
        if self.error is not None:
            return False
        try:
            if self.prepared:
                self._store(1)
                return True
            return self._prepare_step()
        except Exception as exc:
            self.error = exc
            return False

    def next(self) -> Prepared | None:
        """The next row to send, stored; None when every row has been handed out."""
        if self.error is not None:
            raise self.error
        if not self.ready:
            while len(self.prepared) < self.CHUNK and self._prepare_step():
                pass
            if self.prepared:
                self._store(len(self.prepared))
        return self.ready.popleft() if self.ready else None

    def rest(self) -> list[OutboundMessage]:
        """Every row not handed out yet (stored, prepared or not), in order; the feed is
        then empty."""
        if self.steps is not None:
            self.steps.close()
        rows = [p.message for p in (*self.ready, *self.prepared)]
        rows += [self.current] if self.current is not None else []
        rows += list(self.todo)
        self.ready.clear()
        self.prepared.clear()
        self.todo.clear()
        self.steps = self.current = None
        return rows


def _write_outcomes(batch: _Batch) -> None:
    actions.bulk_set(list(batch.done.values()), _OUTCOME_FIELDS)
    batch.done = {}


# --- sending ----------------------------------------------------------------------------------


def _attempted(message: OutboundMessage, now: dt.datetime) -> dict[str, Any]:
    return {"attempts": message.attempts + 1, "first_attempt_at": message.first_attempt_at or now}


def _temporary(batch: _Batch, message: OutboundMessage, error: str) -> None:
    now = batch.now
    changes = _attempted(message, now)
    if now - changes["first_attempt_at"] >= batch.policy.give_up_after:
        days = batch.policy.give_up_after.total_seconds() / 86400
        _finish(
            batch,
            message,
            MessageStatus.FAILED,
            Reason.GAVE_UP,
            f"gave up after {days:g} days of temporary failures; the last: {error}",
            **changes,
        )
        return
    delay = retry_delay(batch.policy, changes["attempts"])
    _finish(
        batch, message, MessageStatus.DEFERRED, Reason.TEMPORARY, error, not_before=now + delay, **changes
    )


def _requeue(batch: _Batch, messages: Iterable[OutboundMessage], reason: str, error: str) -> None:
    for message in messages:
        _finish(batch, message, MessageStatus.QUEUED, reason, error)


def _column_of(field: Any) -> str:
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{field} is not a concrete column")
    return column


@dataclass(frozen=True)
class _RowSql:
    store: str  # the rendered fields of a row
    hand_over: str  # its handed_at
    delete_links: str
    insert_link: str


@functools.cache
def _row_sql(vendor: str) -> _RowSql:
    # Plain statements built once from the models: they run once per email, between
    # or during SMTP exchanges, where the ORM's per-query cost would show.
    quote = connection.ops.quote_name
    message_meta, link_meta = OutboundMessage._meta, TrackedLink._meta
    table = quote(message_meta.db_table)
    columns = [_column_of(message_meta.get_field(name)) for name in _RENDERED_FIELDS]
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    mine = f"WHERE {quote('id')} = %s AND {quote('claimed_by')} = %s"
    link_table = quote(link_meta.db_table)
    message_column = quote(_column_of(link_meta.get_field("message")))
    return _RowSql(
        store=f"UPDATE {table} SET {assignments} {mine}",  # noqa: S608
        hand_over=f"UPDATE {table} SET {quote('handed_at')} = %s {mine}",  # noqa: S608
        delete_links=f"DELETE FROM {link_table} WHERE {message_column} = %s",  # noqa: S608
        insert_link=f"INSERT INTO {link_table} ({message_column}, {quote('index')}, {quote('url')}) "  # noqa: S608
        "VALUES (%s, %s, %s)",
    )


def _store_rendered(items: list[Prepared], token: str) -> None:
    """Store what is about to be sent, in one transaction: rendered subject and body,
    addresses, thread headers, tracked links (a click can only be followed once they
    are stored)."""
    sql = _row_sql(connection.vendor)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # No wait for the WAL flush here: each row's hand-over commits after this
            # and waits for it, and PostgreSQL flushes WAL in order, so the stored
            # content is durable before any SMTP whatever happens. Until then, a lost
            # store loses nothing (the row is not handed over; it is rendered again).
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.executemany(
            sql.store,
            [[*(getattr(i.message, name) for name in _RENDERED_FIELDS), i.message.pk, token] for i in items],
        )
        # A retried row is rendered again (templates edited later apply): its links too.
        cursor.executemany(sql.delete_links, [[i.message.pk] for i in items])
        links = [(i.message.pk, index, url) for i in items for index, url in enumerate(i.links)]
        if links:
            cursor.executemany(sql.insert_link, links)


def _hand_over(message: OutboundMessage, token: str, now: dt.datetime) -> None:
    """Commit the row's ``handed_at`` just before its SMTP transaction: after a crash,
    only rows without it are sent again. One UPDATE in autocommit."""
    with connection.cursor() as cursor:
        cursor.execute(
            _row_sql(connection.vendor).hand_over,
            [connection.ops.adapt_datetimefield_value(now), message.pk, token],
        )


def _send_all(batch: _Batch, feed: _Feed) -> None:
    """Send the rows of *feed* over one connection, setting each row's outcome."""
    mailbox = batch.mailbox
    try:
        settings_ = actions.smtp_settings_for(mailbox, timeout=smtp_timeout())
    except CryptoError as exc:
        actions.do_pause_mailbox(
            mailbox, MailboxStatus.PAUSED_AUTH, f"the stored password cannot be read: {exc}"
        )
        _requeue(
            batch,
            feed.rest(),
            Reason.MAILBOX_PAUSED,
            "waiting: the mailbox password must be entered again",
        )
        return
    conn: smtplib.SMTP | None = None
    try:
        while (item := feed.next()) is not None:
            message = item.message
            try:
                if conn is None:
                    conn = smtp.open_connection(settings_)
                _hand_over(message, batch.claim.token, batch.now)
                result = smtp.send(conn, item.envelope_from, item.recipients, item.data, idle=feed.work)
            except smtp.AuthFailure as exc:
                conn = None
                actions.do_pause_mailbox(mailbox, MailboxStatus.PAUSED_AUTH, exc.message)
                _requeue(
                    batch,
                    [message, *feed.rest()],
                    Reason.AUTH,
                    f"waiting: the mailbox login was refused ({exc.message})",
                )
                return
            except smtp.QuotaExceeded as exc:
                until = batch.now + batch.policy.quota_pause
                actions.do_pause_mailbox(mailbox, MailboxStatus.PAUSED_QUOTA, exc.message, until=until)
                _finish(
                    batch,
                    message,
                    MessageStatus.DEFERRED,
                    Reason.QUOTA,
                    f"the mailbox reached its provider's sending limit ({exc.message})",
                    not_before=until,
                    **_attempted(message, batch.now),
                )
                _requeue(
                    batch,
                    feed.rest(),
                    Reason.QUOTA,
                    "waiting: the mailbox reached its provider's sending limit",
                )
                return
            except smtp.TemporaryFailure as exc:
                if exc.stage == "connect":
                    # The server cannot be reached: nothing in this batch can go now.
                    for waiting in [message, *feed.rest()]:
                        _temporary(batch, waiting, exc.message)
                    return
                _temporary(batch, message, exc.message)
                if exc.connection_lost:
                    conn = None
            except smtp.RecipientRejected as exc:
                if exc.recipient.lower() == message.to_email.lower():
                    _finish(
                        batch,
                        message,
                        MessageStatus.FAILED,
                        Reason.RECIPIENT,
                        exc.message,
                        **_attempted(message, batch.now),
                    )
                    batch.bounced.append(message)
                    batch.report.bounced += 1
                else:
                    _finish(
                        batch,
                        message,
                        MessageStatus.FAILED,
                        Reason.PERMANENT,
                        exc.message,
                        **_attempted(message, batch.now),
                    )
            except smtp.UncertainDelivery as exc:
                conn = None
                _finish(
                    batch,
                    message,
                    MessageStatus.UNCERTAIN,
                    Reason.UNCERTAIN,
                    exc.message,
                    **_attempted(message, batch.now),
                )
            except smtp.PermanentFailure as exc:
                _finish(
                    batch,
                    message,
                    MessageStatus.FAILED,
                    Reason.PERMANENT,
                    exc.message,
                    **_attempted(message, batch.now),
                )
                if exc.connection_lost:
                    conn = None
            except Exception as exc:  # a bug, not a server answer: the message may have left
                log.exception("unexpected error while sending message %s", message.pk)
                if conn is not None:
                    smtp.close(conn)
                conn = None
                _finish(
                    batch,
                    message,
                    MessageStatus.UNCERTAIN,
                    Reason.UNCERTAIN,
                    f"unexpected error while sending ({exc.__class__.__name__}); it may have been sent",
                    **_attempted(message, batch.now),
                )
            else:
                refused = ", ".join(f"{addr} ({code})" for addr, (code, _) in result.refused.items())
                contact_refusal = next(
                    (
                        reply
                        for addr, reply in result.refused.items()
                        if addr.lower() == message.to_email.lower()
                    ),
                    None,
                )
                failure = (
                    smtp.classify(*contact_refusal, stage="rcpt", recipient=message.to_email)
                    if contact_refusal is not None and contact_refusal[0] >= 500
                    else None
                )
                if failure is not None:
                    # Only a CC or BCC got it: for the contact this is a bounce, not a send.
                    bounced = isinstance(failure, smtp.RecipientRejected)
                    _finish(
                        batch,
                        message,
                        MessageStatus.FAILED,
                        Reason.RECIPIENT if bounced else Reason.PERMANENT,
                        f"{failure.message}; refused recipients: {refused}",
                        **_attempted(message, batch.now),
                    )
                    if bounced:
                        batch.bounced.append(message)
                        batch.report.bounced += 1
                    continue
                _finish(
                    batch,
                    message,
                    MessageStatus.SENT,
                    "",
                    f"refused recipients: {refused}" if refused else "",
                    sent_at=clock.now(),
                    **_attempted(message, batch.now),
                )
                batch.sent.append(message)
    finally:
        if conn is not None:
            smtp.close(conn)


_EVENT_COLUMNS = (
    "message_id",
    "contact_id",
    "enrollment_id",
    "step_id",
    "kind",
    "occurred_at",
    "dedupe_key",
    "metadata",
)


def _record(batch: _Batch) -> None:
    """Store every outcome, the sent and bounced events, activities and bounce effects."""
    now = batch.now
    with transaction.atomic():
        _write_outcomes(batch)
        # Tuples, not model instances: a batch writes one event per email. A repeated
        # dedupe key (a batch recorded twice) is skipped.
        events: list[tuple[Any, ...]] = [
            (
                m.pk,
                m.contact_id,
                m.enrollment_id,
                m.step_id,
                EmailEventKind.SENT.value,
                m.sent_at or now,
                f"sent:{m.pk}",
                {},
            )
            for m in batch.sent
        ]
        events += [
            (
                m.pk,
                m.contact_id,
                m.enrollment_id,
                m.step_id,
                EmailEventKind.BOUNCED.value,
                now,
                f"bounced:{m.pk}",
                {"reason": m.last_error[:500], "source": "smtp"},
            )
            for m in batch.bounced
        ]
        insert_rows(EmailEvent, _EVENT_COLUMNS, events)
        activities = [
            actions.EmailActivity(
                m.contact_id,
                ActivityKind.EMAIL_SENT,
                m.sent_at or now,
                m.owner_id,
                m.subject,
                {"message": m.pk},
            )
            for m in batch.sent
        ] + [
            actions.EmailActivity(
                m.contact_id, ActivityKind.EMAIL_BOUNCED, now, m.owner_id, m.subject, {"message": m.pk}
            )
            for m in batch.bounced
        ]
        actions.do_record_email_activities(activities)
        if batch.bounced:
            actions.do_bounce_contacts({m.contact_id for m in batch.bounced}, now)


def _load_batch(claim_: Claim, now: dt.datetime) -> _Batch | None:
    messages = list(
        OutboundMessage.objects.filter(
            pk__in=claim_.ids, claimed_by=claim_.token, status=MessageStatus.SENDING
        )
        .select_related("contact__account", "enrollment")
        .prefetch_related("contact__tags")
        .order_by("not_before", "pk")
    )
    if not messages:
        return None
    # A batch's rows share a few steps, sequences and owners: each is loaded (and its
    # JSON read) once, not once per row as a join would.
    steps = Step.objects.select_related("template").in_bulk({m.step_id for m in messages if m.step_id})
    sequences = Sequence.objects.in_bulk({m.sequence_id for m in messages if m.sequence_id})
    owners = get_user_model().objects.in_bulk({m.owner_id for m in messages})
    for message in messages:
        if message.step_id is not None:
            message.step = steps[message.step_id]
        if message.sequence_id is not None:
            message.sequence = sequences[message.sequence_id]
        message.owner = owners[message.owner_id]
    try:
        mailbox = Mailbox.objects.get(pk=claim_.mailbox_id)
    except CryptoError as exc:
        Mailbox.objects.filter(pk=claim_.mailbox_id).update(
            status=MailboxStatus.PAUSED_AUTH,
            last_error=f"the stored password cannot be read: {exc}",
            updated_at=now,
        )
        OutboundMessage.objects.filter(pk__in=[m.pk for m in messages]).update(
            status=MessageStatus.QUEUED,
            claimed_by="",
            lease_until=None,
            reason_code=Reason.MAILBOX_PAUSED,
            last_error="waiting: the mailbox password must be entered again",
        )
        return None
    return _Batch(claim=claim_, now=now, mailbox=mailbox, policy=retry_policy(), messages=messages)


def deliver_batch(claim_: Claim) -> BatchReport:
    """Check, render, send and record one claimed batch."""
    now = clock.now()
    batch = _load_batch(claim_, now)
    if batch is None:
        return BatchReport()
    batch.report.claimed = len(batch.messages)
    parents = _thread_parents(batch.messages)
    feed = _Feed(batch, [m for m in batch.messages if _gate(batch, m)], parents)
    try:
        _send_all(batch, feed)
    finally:
        # Whatever happened, what was decided is recorded (rows not reached stay "sending"
        # and turn uncertain when the lease expires: never sent twice).
        _record(batch)
    return batch.report


def deliver_once(worker_id: str, limit: int = BATCH_SIZE) -> tuple[bool, BatchReport]:
    """One unit of delivery work: (whether anything was done, what the batch did)."""
    now = clock.now()
    worked = bool(recover_stale(now)) | bool(_wake_mailboxes(now)) | bool(_assign_mailboxes(now))
    claim_, deferred = claim(worker_id, now, limit)
    if claim_ is None:
        return worked or deferred, BatchReport()
    return True, deliver_batch(claim_)


def deliver_due(worker_id: str, limit: int = BATCH_SIZE) -> bool:
    """Deliver one batch of due outbox rows of one mailbox; False when there was nothing to do.

    The worker loop calls this once per iteration; ``sequent send_due`` calls it until False.
    """
    return deliver_once(worker_id, limit)[0]


@dataclass(frozen=True)
class Preview:
    """A rendered subject and HTML body, or the error a send would stop with."""

    subject: str | None
    html: str | None
    error: str | None


def sending_mailbox(user: Any) -> Mailbox | None:
    """The mailbox *user*'s emails go out from when a sequence names none: their first
    mailbox, else the workspace default (passwords not loaded)."""
    boxes = Mailbox.objects.defer("smtp_password", "imap_password").exclude(status=MailboxStatus.DISABLED)
    return boxes.filter(owner=user).order_by("pk").first() or boxes.filter(is_workspace_default=True).first()


def preview_email(
    subject_src: str, body_src: str, contact: Contact, user: Any, sequence: Sequence | None = None
) -> Preview:
    """Render a template for *contact* as *user* would send it (the same context as a
    send; the unsubscribe link is a sample that unsubscribes nobody)."""
    mailbox = None
    if sequence is not None and sequence.mailbox_id:
        mailbox = (
            Mailbox.objects.defer("smtp_password", "imap_password").filter(pk=sequence.mailbox_id).first()
        )
    mailbox = mailbox or sending_mailbox(user)
    context = render_context(
        contact,
        user,
        mailbox,
        sequence if sequence is not None else {"name": "(sequence name)"},
        f"{tracking.base_url()}/u/preview",
    )
    try:
        rendered = templating.render_email(subject_src, body_src, context)
    except templating.TemplateRenderError as exc:
        return Preview(None, None, exc.message)
    return Preview(rendered.subject, rendered.html, None)
