"""Exit criteria, applied set-based at the start of every run, and what an exit cancels.

Each criterion is one UPDATE over the sequence's enrollments still in flight; the
first criterion that matches names the reason. An exit cancels the enrollment's
pending emails and SMS; its open tasks stay in the dashboard, marked skipped.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Q, QuerySet

from sequent.crm.conditions import ConditionError
from sequent.crm.models import EmailStatus
from sequent.mail.models import (
    PENDING_MESSAGE_STATUSES,
    EmailEvent,
    EmailEventKind,
    MessageStatus,
    OutboundMessage,
)
from sequent.sequences.audience import exit_condition_contacts
from sequent.sequences.models import (
    IN_FLIGHT,
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    Sequence,
    SequenceKind,
)
from sequent.sms.models import SmsMessage, SmsStatus
from sequent.tasks.models import Task, TaskStatus


def _events(kind: str) -> QuerySet[EmailEvent]:
    return EmailEvent.objects.filter(kind=kind, is_automated=False)


def exit_enrollments(queryset: QuerySet[Enrollment], reason: str, now: dt.datetime) -> int:
    """Mark the in-flight enrollments of *queryset* exited with *reason*, cancel what they
    still had pending, and return how many left."""
    leaving = queryset.filter(status__in=IN_FLIGHT)
    count = leaving.update(
        status=EnrollmentStatus.EXITED,
        exit_reason=reason,
        exited_at=now,
        next_due_at=None,
        claimed_until=None,
        claimed_by="",
    )
    if count:
        cancel_pending(queryset.filter(status=EnrollmentStatus.EXITED, exit_reason=reason, exited_at=now))
    return count


def cancel_pending(enrollments: QuerySet[Enrollment]) -> None:
    """Cancel the pending emails and SMS of *enrollments*; mark their open tasks skipped."""
    ids = enrollments.values("pk")
    OutboundMessage.objects.filter(enrollment__in=ids, status__in=PENDING_MESSAGE_STATUSES).update(
        status=MessageStatus.CANCELLED
    )
    SmsMessage.objects.filter(enrollment__in=ids, status=SmsStatus.QUEUED).update(status=SmsStatus.CANCELLED)
    Task.objects.filter(enrollment__in=ids, status=TaskStatus.OPEN).update(status=TaskStatus.SKIPPED)


def apply_exits(
    sequence: Sequence, local_date: dt.date, now: dt.datetime, notes: list[str] | None = None
) -> int:
    """Apply the sequence's exit criteria to its enrollments in flight; returns how many left.

    Replies and bounces count when linked to the enrollment (or, for a reply not linked
    to any enrollment, when it came from the contact after enrollment); an unsubscribe
    or an email opt-out counts from any source, because it is the contact's choice.
    """
    base = Enrollment.objects.filter(sequence=sequence)
    total = 0
    if sequence.exit_on_reply:
        replied = _events(EmailEventKind.REPLIED)
        total += exit_enrollments(
            base.filter(
                Exists(replied.filter(enrollment=OuterRef("pk")))
                | Exists(
                    replied.filter(
                        enrollment__isnull=True,
                        contact=OuterRef("contact_id"),
                        occurred_at__gte=OuterRef("enrolled_at"),
                    )
                )
            ),
            ExitReason.REPLIED,
            now,
        )
    if sequence.exit_account_on_reply:
        # Any reply in this sequence from a contact of the same primary account.
        colleague_replied = _events(EmailEventKind.REPLIED).filter(
            enrollment__sequence=sequence,
            contact__account_id=OuterRef("contact__account_id"),
        )
        total += exit_enrollments(
            base.filter(contact__account__isnull=False).filter(Exists(colleague_replied)),
            ExitReason.ACCOUNT_REPLIED,
            now,
        )
    if sequence.exit_on_unsubscribe:
        total += exit_enrollments(
            base.filter(
                Q(contact__email_opt_out=True)
                | Exists(_events(EmailEventKind.UNSUBSCRIBED).filter(contact=OuterRef("contact_id")))
            ),
            ExitReason.UNSUBSCRIBED,
            now,
        )
    if sequence.exit_on_bounce:
        total += exit_enrollments(
            base.filter(
                Q(contact__email_status=EmailStatus.BOUNCED)
                | Exists(_events(EmailEventKind.BOUNCED).filter(enrollment=OuterRef("pk")))
            ),
            ExitReason.BOUNCED,
            now,
        )
    try:
        leaving = exit_condition_contacts(sequence)
    except ConditionError as exc:
        # Stored conditions that no longer compile (a deleted custom field): the other
        # criteria still apply; the run records the problem.
        leaving = None
        if notes is not None:
            notes.append(f"exit_conditions not applied: {exc}")
    if leaving is not None:
        total += exit_enrollments(base.filter(contact__in=leaving.values("pk")), ExitReason.CONDITION, now)
    if sequence.kind == SequenceKind.SMART:
        expired_on_or_before = local_date - dt.timedelta(days=sequence.smart_expiry_days)
        total += exit_enrollments(base.filter(enrolled_on__lte=expired_on_or_before), ExitReason.EXPIRED, now)
    return total
