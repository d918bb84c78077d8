"""Processing due enrollments: claim a batch under a lease, decide and execute its steps.

Claiming: on PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED`` then an UPDATE of the
lease; on SQLite a conditional UPDATE inside the IMMEDIATE transaction. An expired
lease is claimable again. Processing a batch costs a handful of queries per step,
whatever the batch size, and writes with ``ON CONFLICT DO NOTHING`` on the unique keys
(``sequent.lib.bulk``), so a batch taken over after a crash never duplicates anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.fields import BooleanField

from sequent.crm.conditions import ConditionError, compile_conditions
from sequent.crm.models import RECORD_CONTACT, Contact, EmailStatus
from sequent.lib import clock
from sequent.lib.bulk import insert_rows
from sequent.mail.models import EmailEvent
from sequent.sequences import selection
from sequent.sequences.executors import Outcome, Target, executor_for
from sequent.sequences.models import (
    Enrollment,
    EnrollmentStatus,
    ExecutionStatus,
    Sequence,
    SequenceKind,
    SequenceStatus,
    Step,
    StepExecution,
)

log = logging.getLogger(__name__)

BATCH_SIZE = 500
LEASE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Claim:
    """A batch of enrollments one worker holds until ``until``."""

    token: str
    ids: list[int]
    until: dt.datetime


def claim_batch(
    worker_id: str, now: dt.datetime | None = None, size: int = BATCH_SIZE, lease: dt.timedelta = LEASE
) -> Claim:
    """Claim up to *size* due enrollments (pending and not leased, or lease expired)."""
    now = now or clock.now()
    token = f"{worker_id[:40]}/{uuid.uuid4().hex[:16]}"
    until = now + lease
    due = (
        Enrollment.objects.filter(next_due_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_due_at", "pk")
    )
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:size])
        else:
            # SQLite: the IMMEDIATE transaction took the write lock at BEGIN, so no other
            # worker can claim between this read and the conditional UPDATE below.
            ids = list(due.values_list("pk", flat=True)[:size])
        if ids:
            claimed = due.filter(pk__in=ids).update(claimed_until=until, claimed_by=token)
            if claimed != len(ids):
                raise RuntimeError(f"claimed {claimed} of {len(ids)} locked enrollments")
    return Claim(token, ids, until)


def process_claim(claim: Claim) -> set[int]:
    """Process a claimed batch; returns the ids of the sequences it touched."""
    by_sequence: dict[int, list[int]] = defaultdict(list)
    for pk, sequence_id in Enrollment.objects.filter(pk__in=claim.ids, claimed_by=claim.token).values_list(
        "pk", "sequence_id"
    ):
        by_sequence[sequence_id].append(pk)
    for sequence_id, ids in by_sequence.items():
        process_enrollments(sequence_id, ids, claim.token)
    return set(by_sequence)


def _release(ids: Iterable[int], token: str, **changes: object) -> None:
    Enrollment.objects.filter(pk__in=list(ids), claimed_by=token).update(
        next_due_at=None, claimed_until=None, claimed_by="", **changes
    )


ROW_FIELDS = ("pk", "contact_id", "status", "run_count", "next_due_at", "last_run_date")
CONTACT_FIELDS = (
    "email",
    "mobile",
    "email_opt_out",
    "sms_opt_out",
    "email_status",
    "first_name",
    "last_name",
)


def process_enrollments(sequence_id: int, ids: list[int], token: str) -> None:
    """Decide and execute the due steps of the claimed enrollments of one sequence."""
    with transaction.atomic():
        now = clock.now()
        # Lock our rows and keep only those still ours: a lease taken over by another
        # worker is theirs now. The contact fields executors need come along.
        rows = list(
            Enrollment.objects.select_for_update(of=("self",))
            .filter(pk__in=ids, claimed_by=token)
            .values(*ROW_FIELDS, *(f"contact__{name}" for name in CONTACT_FIELDS))
        )
        if not rows:
            return
        sequence = Sequence.objects.select_related("owner").get(pk=sequence_id)
        if sequence.status != SequenceStatus.ACTIVE:
            # Paused (or archived) after the run marked them: give the run back, so the
            # enrollments keep their place for when the sequence resumes.
            _release([r["pk"] for r in rows], token, run_count=F("run_count") - 1)
            return
        active = [r for r in rows if r["status"] == EnrollmentStatus.ACTIVE]
        # Paused since the run marked them (an out-of-office reply): give that run back
        # too, or the steps of two days would go out together when they resume.
        paused = [r["pk"] for r in rows if r["status"] == EnrollmentStatus.PAUSED]
        if paused:
            _release(paused, token, run_count=F("run_count") - 1)
        finished = _run_steps(sequence, active, now) if active else []
        # One UPDATE ends the lease of the rest of the batch and completes the finished ones.
        _release(
            [r["pk"] for r in rows if r["status"] != EnrollmentStatus.PAUSED],
            token,
            status=Case(When(pk__in=finished, then=Value(EnrollmentStatus.COMPLETED)), default=F("status")),
            completed_at=Case(When(pk__in=finished, then=Value(now)), default=F("completed_at")),
        )


def _run_steps(sequence: Sequence, rows: list[dict], now: dt.datetime) -> list[int]:
    """Decide and execute the due steps of active enrollments; returns those now finished."""
    steps = {step.pk: step for step in Step.objects.filter(sequence=sequence).live()}
    plans = selection.build_plans((s.pk, s.kind, s.day, s.conditions) for s in steps.values())
    enrollment_ids = [r["pk"] for r in rows]
    facts = {r["pk"]: selection.Facts() for r in rows}
    for enrollment_id, step_id in StepExecution.objects.filter(enrollment_id__in=enrollment_ids).values_list(
        "enrollment_id", "step_id"
    ):
        facts[enrollment_id].done.add(step_id)

    smart = sequence.kind == SequenceKind.SMART
    # Which enrollments still have to consider each step at this run.
    pending: dict[int, list[dict]] = defaultdict(list)
    for row in rows:
        for plan in plans:
            if plan.id not in facts[row["pk"]].done and (smart or plan.day <= row["run_count"]):
                pending[plan.id].append(row)
    _load_property_facts(sequence, plans, pending, facts)
    if any(plan.email_clauses and pending.get(plan.id) for plan in plans):
        for enrollment_id, step_id, kind in (
            EmailEvent.objects.filter(
                enrollment_id__in=enrollment_ids,
                kind__in=set(selection.EMAIL_ACTIVITY_FIELDS.values()),
                is_automated=False,
            )
            .values_list("enrollment_id", "step_id", "kind")
            .distinct()
        ):
            facts[enrollment_id].activity.add((step_id, kind))

    to_execute: dict[int, list[int]] = defaultdict(list)
    records: list[tuple[int, int, str, str, dt.date]] = []
    due_at = {r["pk"]: r["next_due_at"] or now for r in rows}
    run_date = {r["pk"]: r["last_run_date"] for r in rows}
    for row in rows:
        if smart:
            decision = selection.smart_decision(plans, facts[row["pk"]])
            decisions = [decision] if decision else []
        else:
            decisions = selection.classic_decisions(plans, facts[row["pk"]], row["run_count"])
        for d in decisions:
            if d.action == selection.EXECUTE:
                to_execute[d.step_id].append(row["pk"])
            else:
                records.append(
                    _record(row["pk"], d.step_id, Outcome(ExecutionStatus.SKIPPED, d.reason), run_date, now)
                )

    targets = _targets(rows, due_at)
    for plan in plans:
        if plan.id not in to_execute:
            continue
        outcomes = _execute(sequence, steps[plan.id], [targets[pk] for pk in to_execute[plan.id]])
        records.extend(_record(pk, plan.id, outcome, run_date, now) for pk, outcome in outcomes.items())
    insert_rows(
        StepExecution,
        ("enrollment_id", "step_id", "status", "reason", "run_date"),
        records,
        fixed={"executed_at": now},
    )

    if not (sequence.exit_on_all_steps and plans):
        return []
    for enrollment_id, step_id, *_ in records:
        facts[enrollment_id].done.add(step_id)
    return [pk for pk, f in facts.items() if selection.is_finished(plans, f.done)]


def _record(
    enrollment_id: int, step_id: int, outcome: Outcome, run_date: dict[int, dt.date | None], now: dt.datetime
) -> tuple[int, int, str, str, dt.date]:
    # A StepExecution row: enrollment_id, step_id, status, reason, run_date.
    return (
        enrollment_id,
        step_id,
        str(outcome.status),
        outcome.reason,
        run_date[enrollment_id] or now.date(),
    )


def _execute(sequence: Sequence, step: Step, targets: list[Target]) -> dict[int, Outcome]:
    """Run one executor over its targets; if it raises, every target records the failure."""
    try:
        with transaction.atomic():
            return executor_for(step.kind).execute_batch(sequence, step, targets)
    except Exception as exc:  # an executor bug or a refused row must not stop the run
        log.exception("step %s failed for %s enrollments", step.pk, len(targets))
        reason = f"{type(exc).__name__}: {exc}"[:1000]
        return {t.enrollment_id: Outcome(ExecutionStatus.FAILED, reason) for t in targets}


def _load_property_facts(
    sequence: Sequence,
    plans: list[selection.StepPlan],
    pending: dict[int, list[dict]],
    facts: dict[int, selection.Facts],
) -> None:
    """One query per step with property clauses: which clause first fails for each contact."""
    for plan in plans:
        rows = pending.get(plan.id)
        if not plan.property_clauses or not rows:
            continue
        try:
            compiled = [
                (index, compile_conditions(RECORD_CONTACT, [dict(clause)], user=sequence.owner))
                for index, clause in plan.property_clauses
            ]
        except ConditionError as exc:
            for row in rows:
                facts[row["pk"]].broken[plan.id] = f"conditions cannot be evaluated: {exc}"
            continue
        annotations = {
            f"c{index}": Case(When(q, then=Value(True)), default=Value(False), output_field=BooleanField())
            for index, q in compiled
        }
        holds = {
            values[0]: values[1:]
            for values in Contact.objects.filter(pk__in={r["contact_id"] for r in rows})
            .annotate(**annotations)
            .values_list("pk", *annotations)
        }
        indexes = [index for index, _ in plan.property_clauses]
        for row in rows:
            result = holds.get(row["contact_id"], (False,) * len(indexes))
            for index, ok in zip(indexes, result, strict=True):
                if not ok:
                    facts[row["pk"]].failed_property[plan.id] = index
                    break


def _targets(rows: list[dict], due_at: dict[int, dt.datetime]) -> dict[int, Target]:
    return {
        row["pk"]: Target(
            enrollment_id=row["pk"],
            contact_id=row["contact_id"],
            email=row["contact__email"],
            mobile=row["contact__mobile"],
            email_opt_out=row["contact__email_opt_out"],
            sms_opt_out=row["contact__sms_opt_out"],
            email_bounced=row["contact__email_status"] == EmailStatus.BOUNCED,
            name=f"{row['contact__first_name']} {row['contact__last_name']}".strip(),
            due_at=due_at[row["pk"]],
        )
        for row in rows
    }
