"""Actions on tasks and reminders: complete, snooze, reassign, skip, send an email
reminder, and the bulk forms. Views and the API call these; nothing else writes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from sequent.crm.actions import do_record_activity
from sequent.crm.models import ActivityKind
from sequent.lib import clock
from sequent.mail.delivery import email_sources, preview_email
from sequent.mail.models import MessageStatus, OutboundMessage
from sequent.tasks.models import CallOutcome, Task, TaskKind, TaskStatus


def _require_open(task: Task) -> None:
    if task.status != TaskStatus.OPEN:
        raise ValidationError({"status": f"the task is already {task.status}"})


def _locked(task: Task) -> Task:
    locked = Task.objects.select_for_update().select_related("contact").get(pk=task.pk)
    _require_open(locked)
    return locked


def do_complete_task(task: Task, user: Any, *, outcome: str = "", notes: str = "") -> Task:
    """Mark *task* done and record its activity: an outgoing call with its outcome for a
    call reminder, a completed task for a follow-up. An email reminder is completed by
    sending it (``do_send_email_reminder``) or skipped, never completed empty."""
    if task.kind == TaskKind.EMAIL_REMINDER:
        raise ValidationError({"kind": "an email reminder is completed by sending its email (or skipped)"})
    if task.kind == TaskKind.CALL_REMINDER and outcome not in CallOutcome.values:
        choices = ", ".join(CallOutcome.values)
        raise ValidationError({"outcome": f"a call reminder needs the call's outcome, one of {choices}"})
    if task.kind != TaskKind.CALL_REMINDER and outcome:
        raise ValidationError({"outcome": "only a call reminder has an outcome"})
    now = clock.now()
    with transaction.atomic():
        locked = _locked(task)
        Task.objects.filter(pk=locked.pk).update(status=TaskStatus.DONE, completed_at=now, outcome=outcome)
        # A call reminder records the call (the outcome only a call can have); others a task.
        kind = ActivityKind.CALL_OUTGOING if locked.kind == TaskKind.CALL_REMINDER else ActivityKind.TASK
        do_record_activity(
            locked.contact,
            kind,
            user=user,
            occurred_at=now,
            subject=locked.title,
            body=notes,
            outcome=outcome,
            metadata={"task_id": locked.pk},
        )
    task.refresh_from_db()
    return task


def do_snooze_task(task: Task, until: dt.datetime) -> Task:
    """Move *task*'s due time to *until* (in the future)."""
    if until.tzinfo is None:
        raise ValidationError({"until": "give a time with its UTC offset"})
    if until <= clock.now():
        raise ValidationError({"until": "snooze to a time in the future"})
    with transaction.atomic():
        locked = _locked(task)
        Task.objects.filter(pk=locked.pk).update(due_at=until, snoozed_until=until)
    task.refresh_from_db()
    return task


def do_reassign_task(task: Task, to_user_id: int) -> Task:
    """Give *task* (and an email reminder's draft) to another active user."""
    to_user = get_user_model().objects.filter(pk=to_user_id, is_active=True).first()
    if to_user is None:
        raise ValidationError({"owner_id": "no active user has this id"})
    with transaction.atomic():
        locked = _locked(task)
        Task.objects.filter(pk=locked.pk).update(owner=to_user)
        if locked.message_id:
            # The draft goes out as the new owner's email, from their mailbox.
            OutboundMessage.objects.filter(pk=locked.message_id, status=MessageStatus.DRAFT).update(
                owner=to_user, mailbox=None
            )
    task.refresh_from_db()
    return task


def do_skip_task(task: Task) -> Task:
    """Skip *task*; an email reminder's draft is cancelled with it."""
    with transaction.atomic():
        locked = _locked(task)
        Task.objects.filter(pk=locked.pk).update(status=TaskStatus.SKIPPED, completed_at=clock.now())
        if locked.message_id:
            OutboundMessage.objects.filter(pk=locked.message_id, status=MessageStatus.DRAFT).update(
                status=MessageStatus.CANCELLED
            )
    task.refresh_from_db()
    return task


@dataclass(frozen=True)
class Draft:
    """An email reminder's draft as the rep sees it: the saved text, else the step rendered."""

    subject: str
    body: str
    error: str | None


def reminder_draft(task: Task) -> Draft:
    """The subject and body the rep starts from: what they saved, else the step's
    template rendered for the contact (with the error a send would stop with)."""
    message = task.message
    if message is None:
        return Draft("", "", "the reminder has no draft")
    if message.subject or message.body or task.step is None:
        return Draft(message.subject, message.body, None)
    subject_src, body_src = email_sources(task.step)
    preview = preview_email(subject_src, body_src, task.contact, task.owner, task.step.sequence)
    return Draft(preview.subject or "", preview.html or "", preview.error)


def do_send_email_reminder(task: Task, *, subject: str | None = None, body: str | None = None) -> Task:
    """Queue an email reminder's draft as the rep wrote it and mark the task done.

    Delivery then sends it like any sequence email (tracking, threading, gate, limits),
    using the row's own subject and body. Omitted parts keep the rendered draft.
    """
    if task.kind != TaskKind.EMAIL_REMINDER or task.message_id is None:
        raise ValidationError({"kind": "only an email reminder with a draft can be sent"})
    message_pk: int = task.message_id
    draft = reminder_draft(task)
    subject = draft.subject if subject is None else subject
    body = draft.body if body is None else body
    if not subject.strip():
        raise ValidationError({"subject": draft.error or "the email needs a subject"})
    if not body.strip():
        raise ValidationError({"body": draft.error or "the email needs a body"})
    now = clock.now()
    with transaction.atomic():
        locked = _locked(task)
        queued = OutboundMessage.objects.filter(pk=message_pk, status=MessageStatus.DRAFT).update(
            subject=subject[:998], body=body, status=MessageStatus.QUEUED, not_before=now
        )
        if queued != 1:
            raise ValidationError({"message": "the draft was cancelled or already sent"})
        Task.objects.filter(pk=locked.pk).update(status=TaskStatus.DONE, completed_at=now)
    task.refresh_from_db()
    return task


def do_save_reminder_draft(task: Task, *, subject: str, body: str) -> Task:
    """Save the rep's edits of an email reminder without sending it."""
    if task.kind != TaskKind.EMAIL_REMINDER or task.message_id is None:
        raise ValidationError({"kind": "only an email reminder has a draft"})
    message_pk: int = task.message_id
    with transaction.atomic():
        _locked(task)
        OutboundMessage.objects.filter(pk=message_pk, status=MessageStatus.DRAFT).update(
            subject=subject[:998], body=body
        )
    return task


@dataclass
class BulkResult:
    """What a bulk action did: the ids it changed and, per refused id, the reason."""

    done: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


def _bulk(tasks: Iterable[Task], apply: Any) -> BulkResult:
    result = BulkResult()
    for task in tasks:
        try:
            apply(task)
        except ValidationError as exc:
            result.refused[task.pk] = "; ".join(exc.messages)
        else:
            result.done.append(task.pk)
    return result


def do_bulk_complete(tasks: Iterable[Task], user: Any, *, outcome: str = "") -> BulkResult:
    """Complete each task (call reminders with *outcome*); each one in its own transaction
    so one refusal (an email reminder, a missing outcome) does not undo the others."""
    return _bulk(
        tasks,
        lambda t: do_complete_task(t, user, outcome=outcome if t.kind == TaskKind.CALL_REMINDER else ""),
    )


def do_bulk_skip(tasks: Iterable[Task]) -> BulkResult:
    """Skip each open task."""
    return _bulk(tasks, do_skip_task)


# Kinds a rep may create by hand: an email reminder needs a sequence step's draft.
MANUAL_KINDS = (TaskKind.FOLLOW_UP, TaskKind.CALL_REMINDER)


def do_create_task(
    owner: Any, contact_id: int, kind: str, title: str, due_at: dt.datetime, *, notes: str = ""
) -> Task:
    """Create a follow-up task or call reminder by hand for *owner* (the "New task" form)."""
    from sequent.crm.models import Contact

    errors: dict[str, list[str]] = {}
    if kind not in MANUAL_KINDS:
        errors["kind"] = ["a task made by hand is a follow-up task or a call reminder"]
    title = (title or "").strip()
    if not title:
        errors["title"] = ["a task needs a title"]
    elif len(title) > 255:
        errors["title"] = ["at most 255 characters"]
    if due_at.tzinfo is None:
        errors["due_at"] = ["give a time with its UTC offset"]
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        errors["contact"] = ["no contact has this id"]
    if errors or contact is None:
        raise ValidationError(errors)
    with transaction.atomic():
        return Task.objects.create(
            owner=owner,
            contact=contact,
            kind=kind,
            title=title,
            notes=notes,
            due_at=due_at,
            created_at=clock.now(),
        )
