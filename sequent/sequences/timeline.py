"""An enrollment's timeline: for every step of its sequence, in order, what happened and why.

Read-only. Decided steps come from the stored ``StepExecution`` rows and what they
produced (outbox email, task, SMS); undecided steps are predicted from the
enrollment's run count and the schedule (``add_run_days``, ``local_run_instant``),
the same rules the engine applies at each run. A fixed number of queries per
enrollment, whatever the number of steps.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Q

from sequent.lib import clock
from sequent.mail.models import EmailEvent, MessageStatus, OutboundMessage
from sequent.sequences import schedule as sched
from sequent.sequences.models import (
    Enrollment,
    EnrollmentStatus,
    ExecutionStatus,
    ExitReason,
    RunSlot,
    Sequence,
    SequenceKind,
    SequenceStatus,
    Step,
    StepExecution,
)
from sequent.sequences.runs import latest_due_date
from sequent.sms.models import SmsMessage, SmsStatus
from sequent.tasks.models import Task

# What the timeline says of a step.
EXECUTED = "executed"  # done; what it produced is listed
SKIPPED = "skipped"  # a condition failed, or the contact could not receive it
FAILED = "failed"  # the executor or the delivery failed
DEFERRED = "deferred"  # the email waits for a sending limit or a temporary error to clear
CANCELLED = "cancelled"  # the email or SMS was cancelled before it left
DUE = "due"  # a run marked the enrollment; a worker is processing it
WAITING = "waiting"  # not yet due (classic) or waiting for its conditions (smart)
NOT_REACHED = "not_reached"  # the enrollment completed or exited first

STATES = (EXECUTED, SKIPPED, FAILED, DEFERRED, CANCELLED, DUE, WAITING, NOT_REACHED)


@dataclass(frozen=True)
class Event:
    """Something that happened to an email (opened, clicked, replied ...)."""

    kind: str
    occurred_at: dt.datetime


@dataclass(frozen=True)
class Produced:
    """A row a step created: an outbox email, a task or an SMS."""

    type: str  # "email" | "task" | "sms"
    id: int
    status: str
    to: str = ""
    subject: str = ""
    message_id: str = ""
    title: str = ""
    due_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    last_error: str = ""
    reason_code: str = ""  # email: why it is deferred, cancelled or failed, as a code
    events: tuple[Event, ...] = ()


@dataclass(frozen=True)
class Entry:
    """One step of the timeline. ``at`` is when it happened or, for a waiting step,
    when it is expected (None when nobody can say, e.g. the sequence is paused)."""

    step_id: int
    position: int
    kind: str
    day: int
    deleted: bool
    state: str
    reason: str
    at: dt.datetime | None = None
    run_date: dt.date | None = None
    produced: tuple[Produced, ...] = ()


@dataclass(frozen=True)
class Timeline:
    enrollment: Enrollment
    next_run_at: dt.datetime | None
    expires_on: dt.date | None
    entries: list[Entry] = field(default_factory=list)


def build_timeline(enrollment: Enrollment, now: dt.datetime | None = None) -> Timeline:
    """The timeline of *enrollment* (its ``sequence`` and ``contact`` may be preloaded)."""
    now = now or clock.now()
    sequence = enrollment.sequence
    # Live steps, plus deleted ones this enrollment already went through (history stays).
    steps = list(
        Step.objects.filter(sequence=sequence)
        .filter(Q(deleted_at__isnull=True) | Q(executions__enrollment=enrollment))
        .distinct()
        .order_by("position", "id")
    )
    executions = {e.step_id: e for e in StepExecution.objects.filter(enrollment=enrollment)}
    produced = _produced(enrollment)
    next_run = _next_run(enrollment, sequence, now)
    expires_on = None
    if sequence.kind == SequenceKind.SMART and enrollment.enrolled_on is not None:
        expires_on = enrollment.enrolled_on + dt.timedelta(days=sequence.smart_expiry_days)

    entries = []
    for step in steps:
        execution = executions.get(step.pk)
        rows = tuple(produced.get(step.pk, ()))
        at: dt.datetime | None
        run_date: dt.date | None
        if execution is not None:
            state, reason = _decided(execution, rows, enrollment)
            at, run_date = execution.executed_at, execution.run_date
        else:
            state, reason, at = _undecided(step, enrollment, sequence, next_run)
            run_date = None
        entries.append(
            Entry(
                step_id=step.pk,
                position=step.position,
                kind=step.kind,
                day=step.day,
                deleted=step.deleted_at is not None,
                state=state,
                reason=reason,
                at=at,
                run_date=run_date,
                produced=rows,
            )
        )
    return Timeline(
        enrollment=enrollment,
        next_run_at=next_run[1] if next_run and _in_flight(enrollment) else None,
        expires_on=expires_on,
        entries=entries,
    )


# --- what a step produced ---------------------------------------------------------------


def _produced(enrollment: Enrollment) -> dict[int, list[Produced]]:
    """Emails (with their events), tasks and SMS of the enrollment, by step id: four queries."""
    events: dict[int, list[Event]] = defaultdict(list)
    for message_id, kind, occurred_at in (
        EmailEvent.objects.filter(enrollment=enrollment, message__isnull=False, is_automated=False)
        .order_by("occurred_at", "pk")
        .values_list("message_id", "kind", "occurred_at")
    ):
        events[message_id].append(Event(kind, occurred_at))
    by_step: dict[int, list[Produced]] = defaultdict(list)
    for m in OutboundMessage.objects.filter(enrollment=enrollment, step__isnull=False).order_by("pk"):
        by_step[m.step_id].append(  # type: ignore[index]
            Produced(
                "email",
                m.pk,
                m.status,
                to=m.to_email,
                subject=m.subject,
                message_id=m.message_id,
                not_before=m.not_before,
                sent_at=m.sent_at,
                last_error=m.last_error,
                reason_code=m.reason_code,
                events=tuple(events[m.pk]),
            )
        )
    for t in Task.objects.filter(enrollment=enrollment, step__isnull=False).order_by("pk"):
        by_step[t.step_id].append(Produced("task", t.pk, t.status, title=t.title, due_at=t.due_at))  # type: ignore[index]
    for s in SmsMessage.objects.filter(enrollment=enrollment, step__isnull=False).order_by("pk"):
        by_step[s.step_id].append(  # type: ignore[index]
            Produced(
                "sms",
                s.pk,
                s.status,
                to=s.to_number,
                not_before=s.not_before,
                sent_at=s.sent_at,
                last_error=s.last_error,
            )
        )
    return by_step


def _decided(execution: StepExecution, rows: tuple[Produced, ...], enrollment: Enrollment) -> tuple[str, str]:
    """State and reason of a step the engine decided, refined by what became of its email or SMS."""
    if execution.status == ExecutionStatus.SKIPPED:
        return SKIPPED, execution.reason or "skipped"
    if execution.status == ExecutionStatus.FAILED:
        return FAILED, execution.reason or "failed"
    outbound = next((p for p in rows if p.type in ("email", "sms")), None)
    if outbound is None:
        tasks = [p for p in rows if p.type == "task"]
        if tasks:
            return EXECUTED, f"task {tasks[0].title!r} created ({tasks[0].status})"
        return EXECUTED, "executed"
    what = "email" if outbound.type == "email" else "SMS"
    error = f": {outbound.last_error}" if outbound.last_error else ""
    if outbound.status == MessageStatus.DEFERRED:
        when = f"; next attempt at {outbound.not_before.isoformat()}" if outbound.not_before else ""
        cause = outbound.last_error or "a sending limit was reached"
        return DEFERRED, f"email deferred: {cause}{when}"
    if outbound.status in (MessageStatus.FAILED, SmsStatus.FAILED):
        return FAILED, f"the {what} could not be sent{error}"
    if outbound.status in (MessageStatus.CANCELLED, SmsStatus.CANCELLED):
        if enrollment.status == EnrollmentStatus.EXITED:
            return (
                CANCELLED,
                f"the {what} was cancelled before it left: the enrollment exited ({_exit_label(enrollment)})",
            )
        return CANCELLED, f"the {what} was cancelled before it left{error or ' by the send-time check'}"
    if outbound.status in (MessageStatus.SENT, SmsStatus.DELIVERED):
        when = f" at {outbound.sent_at.isoformat()}" if outbound.sent_at else ""
        return EXECUTED, f"{what} {outbound.status}{when}"
    if outbound.status == MessageStatus.DRAFT:
        return EXECUTED, "email drafted: a task asks you to personalise and send it"
    if outbound.status == MessageStatus.UNCERTAIN:
        return EXECUTED, "sending was interrupted; the Sent folder is checked before any retry"
    if outbound.status == MessageStatus.SENDING:
        return EXECUTED, f"{what} being sent"
    when = f" for {outbound.not_before.isoformat()}" if outbound.not_before else ""
    return EXECUTED, f"{what} queued{when}"


# --- what has not happened yet ----------------------------------------------------------


def _in_flight(enrollment: Enrollment) -> bool:
    return enrollment.status in (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)


def _exit_label(enrollment: Enrollment) -> str:
    try:
        return str(ExitReason(enrollment.exit_reason).label)
    except ValueError:
        return enrollment.exit_reason or "unknown reason"


def _next_run(
    enrollment: Enrollment, sequence: Sequence, now: dt.datetime
) -> tuple[dt.date, dt.datetime] | None:
    """The next run this enrollment takes part in (local date, instant), or None if none is
    planned (sequence not active, enrollment over, or no schedule can be computed)."""
    if sequence.status != SequenceStatus.ACTIVE or not _in_flight(enrollment):
        return None
    schedule = sequence.schedule
    anchor = sequence.anchor_date
    if schedule.interval_days > 1 and anchor is None:
        return None
    after = now
    if enrollment.next_due_at is not None:
        # A run already counted for it; the next one comes after that run's instant.
        after = max(now, enrollment.next_due_at)
    elif enrollment.status == EnrollmentStatus.PAUSED:
        if enrollment.paused_until is None:
            return None
        # It takes part in the first run at or after its return date.
        after = max(now, enrollment.paused_until - dt.timedelta(microseconds=1))
    else:
        # A slot whose time has come but that no worker has run yet is the next run.
        due = latest_due_date(sequence, now)
        if (
            due is not None
            and (enrollment.last_run_date is None or due > enrollment.last_run_date)
            and not RunSlot.objects.filter(sequence=sequence, local_date__gte=due).exists()
        ):
            return due, sched.local_run_instant(schedule, due)
    try:
        return sched.next_slot(schedule, after, anchor=anchor)
    except ValueError:
        return None


def _undecided(
    step: Step, enrollment: Enrollment, sequence: Sequence, next_run: tuple[dt.date, dt.datetime] | None
) -> tuple[str, str, dt.datetime | None]:
    """State, reason and expected instant of a step the engine has not decided yet."""
    if enrollment.status == EnrollmentStatus.EXITED:
        when = f" on {enrollment.exited_at.date().isoformat()}" if enrollment.exited_at else ""
        return NOT_REACHED, f"not reached: the enrollment exited{when} ({_exit_label(enrollment)})", None
    if enrollment.status == EnrollmentStatus.COMPLETED:
        when = f" on {enrollment.completed_at.date().isoformat()}" if enrollment.completed_at else ""
        return NOT_REACHED, f"not reached: the enrollment completed{when}", None
    if sequence.status == SequenceStatus.PAUSED:
        return WAITING, "waiting: the sequence is paused; it goes on from here when resumed", None
    if sequence.status != SequenceStatus.ACTIVE:
        return WAITING, f"waiting: the sequence is {sequence.status}", None
    pending = enrollment.next_due_at is not None
    smart = sequence.kind == SequenceKind.SMART
    if pending and not smart and step.day <= enrollment.run_count:
        return DUE, "due at the run now in progress; a worker is processing it", enrollment.next_due_at
    if pending and smart:
        # A smart run executes at most one step: which one is decided when the worker gets to it.
        what = "its conditions are" if step.conditions else "its turn is"
        return WAITING, f"{what} being checked at the run now in progress", enrollment.next_due_at
    paused = ""
    if enrollment.status == EnrollmentStatus.PAUSED:
        back = enrollment.paused_until.isoformat() if enrollment.paused_until else "it is resumed"
        paused = f" (the enrollment is paused until {back})"
    if next_run is None:
        return WAITING, f"waiting: no run is planned{paused}", None
    if smart:
        at = next_run[1]
        if step.conditions:
            return (
                WAITING,
                f"waiting for its conditions; checked at every run, next at {at.isoformat()}{paused}",
                at,
            )
        return WAITING, f"waiting for its turn: one step per run, next run at {at.isoformat()}{paused}", at
    # Classic: the step is due at the enrollment's run number `day`; the next run is number run_count + 1.
    offset = max(step.day - enrollment.run_count - 1, 0)
    try:
        date = sched.add_run_days(sequence.schedule, next_run[0], offset)
        at = sched.local_run_instant(sequence.schedule, date)
    except ValueError:
        return WAITING, f"waiting for day {step.day}{paused}", None
    late = " (added after its day had passed for this contact)" if step.day <= enrollment.run_count else ""
    return WAITING, f"waiting until {at.isoformat()}: day {step.day} of the sequence{late}{paused}", at
