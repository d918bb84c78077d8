"""Step executors: one per step kind, each acting on a whole batch of enrollments at once.

An executor writes its rows with conflict-ignoring multi-row INSERTs
(``sequent.lib.bulk.insert_rows``) on the (enrollment, step) unique keys, so a
batch processed twice (an expired lease taken over) never duplicates a message or a task. It returns, for each enrollment, whether the step
was executed or skipped (with the reason a rep reads in the timeline).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sequent.lib import clock
from sequent.lib.bulk import insert_rows
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
        insert_rows(
            Task,
            TASK_COLUMNS,
            ((t.contact_id, t.enrollment_id, step.pk, None, _title(template, t), t.due_at) for t in targets),
            fixed=_task_fixed(sequence, step, TaskKind(step.kind)),
        )
        return {t.enrollment_id: EXECUTED for t in targets}


TASK_COLUMNS = ("contact_id", "enrollment_id", "step_id", "message_id", "title", "due_at")


def _task_fixed(sequence: Sequence, step: Step, kind: TaskKind) -> dict[str, object]:
    # What every task of one step's batch shares.
    return {
        "owner_id": sequence.owner_id,
        "kind": kind.value,
        "notes": step.task_notes,
        "created_at": clock.now(),
    }


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
        for t in targets:
            refusal = _email_refusal(t)
            if refusal:
                outcomes[t.enrollment_id] = Outcome(ExecutionStatus.SKIPPED, refusal)
                continue
            outcomes[t.enrollment_id] = EXECUTED
            rows.append((t.enrollment_id, t.contact_id, t.email, new_message_id(domain), t.due_at))
        insert_rows(
            OutboundMessage,
            ("enrollment_id", "contact_id", "to_email", "message_id", "not_before"),
            rows,
            fixed={
                "step_id": step.pk,
                "sequence_id": sequence.pk,
                "owner_id": sequence.owner_id,
                "mailbox_id": sequence.mailbox_id,
                "status": self.status.value,
                "created_at": clock.now(),
            },
        )
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
        insert_rows(
            Task,
            TASK_COLUMNS,
            (
                (
                    t.contact_id,
                    t.enrollment_id,
                    step.pk,
                    message_ids.get(t.enrollment_id),
                    _title(template, t),
                    t.due_at,
                )
                for t in drafted
            ),
            fixed=_task_fixed(sequence, step, TaskKind.EMAIL_REMINDER),
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
            rows.append((t.enrollment_id, t.contact_id, t.mobile, t.due_at))
        insert_rows(
            SmsMessage,
            ("enrollment_id", "contact_id", "to_number", "not_before"),
            rows,
            fixed={
                "step_id": step.pk,
                "owner_id": sequence.owner_id,
                "body": step.sms_body,
                "created_at": clock.now(),
            },
        )
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
