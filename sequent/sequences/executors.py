"""Step executors: one per step kind, each acting on a whole batch of enrollments at once.

An executor writes its rows with ``bulk_create(ignore_conflicts=True)`` on the
(enrollment, step) unique keys, so a batch processed twice (an expired lease taken over)
never duplicates a message or a task. It returns, for each enrollment, whether the step
was executed or skipped (with the reason a rep reads in the timeline).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sequent.lib import clock
from sequent.mail.message_ids import message_id_domain, new_message_id
from sequent.mail.models import MessageStatus, OutboundMessage
from sequent.sequences.models import ExecutionStatus, Sequence, Step, StepKind
from sequent.sms.models import SmsMessage
from sequent.tasks.models import Task, TaskKind


@dataclass(frozen=True)
class Target:
    """One enrollment a step acts on, with the contact fields executors need."""

    enrollment_id: int
    contact_id: int
    email: str
    mobile: str
    email_opt_out: bool
    sms_opt_out: bool
    email_bounced: bool
    name: str
    due_at: dt.datetime


@dataclass(frozen=True)
class Outcome:
    """What a step did for one enrollment: executed, or skipped/failed with the reason."""

    status: str  # ExecutionStatus value
    reason: str = ""


EXECUTED = Outcome(ExecutionStatus.EXECUTED)


class Executor(Protocol):
    """The interface of a step kind's executor."""

    def execute_batch(self, sequence: Sequence, step: Step, targets: Seq[Target]) -> dict[int, Outcome]:
        """Act on every target; return an outcome per enrollment id."""
        ...


def _email_refusal(target: Target) -> str | None:
    if not target.email:
        return "contact has no email address"
    if target.email_opt_out:
        return "contact opted out of email"
    if target.email_bounced:
        return "contact's email address bounced"
    return None


class TaskExecutor:
    """Follow-up task and call reminder: a task for the sequence owner, due at the run."""

    default_titles: ClassVar[dict[str, str]] = {
        StepKind.FOLLOW_UP: "Follow up with {name}",
        StepKind.CALL_REMINDER: "Call {name}",
    }

    def execute_batch(self, sequence: Sequence, step: Step, targets: Seq[Target]) -> dict[int, Outcome]:
        """Create one open task per target."""
        template = step.task_title or self.default_titles[step.kind]
        Task.objects.bulk_create(
            [
                Task(
                    owner_id=sequence.owner_id,
                    contact_id=t.contact_id,
                    enrollment_id=t.enrollment_id,
                    step=step,
                    kind=TaskKind(step.kind),
                    title=_title(template, t),
                    notes=step.task_notes,
                    due_at=t.due_at,
                )
                for t in targets
            ],
            ignore_conflicts=True,
        )
        return {t.enrollment_id: EXECUTED for t in targets}


def _title(template: str, target: Target) -> str:
    # Only {name} is filled here; full templating of task text belongs to the tasks issue.
    return template.replace("{name}", target.name or target.email or "contact")[:255]


class EmailExecutor:
    """Email: a queued outbox row with its Message-ID; the email issue renders and sends it."""

    status = MessageStatus.QUEUED

    def execute_batch(self, sequence: Sequence, step: Step, targets: Seq[Target]) -> dict[int, Outcome]:
        """Queue one message per target that can receive email; skip the others with the reason."""
        outcomes: dict[int, Outcome] = {}
        rows = []
        domain = message_id_domain()
        now = clock.now()
        for t in targets:
            refusal = _email_refusal(t)
            if refusal:
                outcomes[t.enrollment_id] = Outcome(ExecutionStatus.SKIPPED, refusal)
                continue
            outcomes[t.enrollment_id] = EXECUTED
            rows.append(
                OutboundMessage(
                    enrollment_id=t.enrollment_id,
                    step=step,
                    sequence=sequence,
                    contact_id=t.contact_id,
                    owner_id=sequence.owner_id,
                    mailbox_id=sequence.mailbox_id,
                    to_email=t.email,
                    status=self.status,
                    message_id=new_message_id(domain),
                    created_at=now,
                    not_before=t.due_at,
                )
            )
        OutboundMessage.objects.bulk_create(rows, ignore_conflicts=True)
        return outcomes


class EmailReminderExecutor(EmailExecutor):
    """Email reminder: a draft in the outbox plus a task asking the rep to personalise and send it."""

    status = MessageStatus.DRAFT

    def execute_batch(self, sequence: Sequence, step: Step, targets: Seq[Target]) -> dict[int, Outcome]:
        """Create the drafts, then one task per draft pointing at it."""
        outcomes = super().execute_batch(sequence, step, targets)
        drafted = [t for t in targets if outcomes[t.enrollment_id].status == ExecutionStatus.EXECUTED]
        # One query maps each enrollment to its draft (bulk_create with ignore_conflicts returns no ids).
        message_ids = dict(
            OutboundMessage.objects.filter(
                step=step, enrollment_id__in=[t.enrollment_id for t in drafted]
            ).values_list("enrollment_id", "id")
        )
        template = step.task_title or "Personalise and send the email to {name}"
        Task.objects.bulk_create(
            [
                Task(
                    owner_id=sequence.owner_id,
                    contact_id=t.contact_id,
                    enrollment_id=t.enrollment_id,
                    step=step,
                    message_id=message_ids.get(t.enrollment_id),
                    kind=TaskKind.EMAIL_REMINDER,
                    title=_title(template, t),
                    notes=step.task_notes,
                    due_at=t.due_at,
                )
                for t in drafted
            ],
            ignore_conflicts=True,
        )
        return outcomes


class SmsExecutor:
    """SMS: a queued SMS outbox row; contacts without a mobile or opted out are skipped."""

    def execute_batch(self, sequence: Sequence, step: Step, targets: Seq[Target]) -> dict[int, Outcome]:
        """Queue one SMS per target that can receive one."""
        outcomes: dict[int, Outcome] = {}
        rows = []
        for t in targets:
            if not t.mobile:
                outcomes[t.enrollment_id] = Outcome(ExecutionStatus.SKIPPED, "contact has no mobile number")
                continue
            if t.sms_opt_out:
                outcomes[t.enrollment_id] = Outcome(ExecutionStatus.SKIPPED, "contact opted out of SMS")
                continue
            outcomes[t.enrollment_id] = EXECUTED
            rows.append(
                SmsMessage(
                    enrollment_id=t.enrollment_id,
                    step=step,
                    contact_id=t.contact_id,
                    owner_id=sequence.owner_id,
                    to_number=t.mobile,
                    body=step.sms_body,
                    not_before=t.due_at,
                )
            )
        SmsMessage.objects.bulk_create(rows, ignore_conflicts=True)
        return outcomes


EXECUTORS: dict[str, Executor] = {
    StepKind.EMAIL: EmailExecutor(),
    StepKind.EMAIL_REMINDER: EmailReminderExecutor(),
    StepKind.FOLLOW_UP: TaskExecutor(),
    StepKind.CALL_REMINDER: TaskExecutor(),
    StepKind.SMS: SmsExecutor(),
}


def executor_for(kind: str) -> Executor:
    """The executor registered for a step kind."""
    return EXECUTORS[kind]
