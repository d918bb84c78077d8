"""Processing due enrollments: claim a batch, decide and execute its steps.

The worker's path is ``process_due``: one transaction claims up to a batch of due
enrollments and processes them. On PostgreSQL ``SELECT ... FOR NO KEY UPDATE SKIP LOCKED``
hands each worker other rows and the row locks are the lease: a worker that dies rolls
back and its batch is due again at once. On SQLite the IMMEDIATE transaction holds the
write lock. ``claim_batch`` and ``process_claim`` instead hold a batch across
transactions under a lease (``claimed_until``/``claimed_by``); an expired lease is
claimable again and ``process_due`` passes over a live one.

Processing a batch costs a fixed number of queries, whatever its size: the claimed
rows with their contact fields, then per sequence its steps, the steps already decided,
one query for the property conditions of all its steps, one for email activity when a
step asks, one bulk insert per step and one of StepExecutions, and one UPDATE ending
the batch. Every fact is looked up by key, and the batch's transaction tells the
planner so (``_plan_for_keys``). Writes use ``ON CONFLICT DO NOTHING`` on the unique
keys (``sequent.lib.bulk``), so a batch processed twice never duplicates anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, Exists, F, Func, OuterRef, Q, QuerySet, Value, When
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


class AnyId(Func):
    """``<column> = ANY(<ids>)`` with the ids sent as one text parameter (PostgreSQL).

    A Python list becomes one placeholder per id, each prepared by Django and quoted by
    the driver in Python; for the hundreds of ids of a batch that costs the worker more
    than the server spends on the statement. Usable in ``filter()`` and ``When()``.
    """

    output_field = BooleanField()

    def __init__(self, column: str, ids: Collection[int]) -> None:
        super().__init__(F(column), Value(",".join(map(str, ids))))

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, list[Any]]:  # type: ignore[override]
        column, text = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        text_sql, text_params = compiler.compile(text)
        return (
            f"{column_sql} = ANY(string_to_array({text_sql}, ',')::bigint[])",
            [*column_params, *text_params],
        )


def id_in(column: str, ids: Collection[int]) -> Q | AnyId:
    """A condition "*column* is one of *ids*" for ``filter()`` or ``When()``."""
    if connection.vendor == "postgresql":
        return AnyId(column, ids)
    return Q(**{f"{column}__in": list(ids)})


def _due(now: dt.datetime) -> QuerySet[Enrollment]:
    # Pending and not under a live lease of claim_batch.
    return Enrollment.objects.filter(next_due_at__lte=now).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


@dataclass(frozen=True)
class Claim:
    """A batch of enrollments one worker holds until ``until``."""

    token: str
    ids: list[int]
    until: dt.datetime


def claim_batch(
    worker_id: str, now: dt.datetime | None = None, size: int = BATCH_SIZE, lease: dt.timedelta = LEASE
) -> Claim:
    """Claim up to *size* due enrollments (pending and not leased, or lease expired)
    under a lease, for ``process_claim`` in later transactions."""
    now = now or clock.now()
    token = _token(worker_id)
    until = now + lease
    # Oldest due first. No tie-break on the primary key: the pending-rows index then
    # yields them in order and the LIMIT stops the scan (with one, every pending row of
    # the run would be read and sorted for each batch).
    due = _due(now).order_by("next_due_at")
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:size])
        else:
            # SQLite: the IMMEDIATE transaction took the write lock at BEGIN, so no other
            # worker can claim between this read and the conditional UPDATE below.
            ids = list(due.values_list("pk", flat=True)[:size])
        if ids:
            claimed = _due(now).filter(id_in("pk", ids)).update(claimed_until=until, claimed_by=token)
            if claimed != len(ids):
                raise RuntimeError(f"claimed {claimed} of {len(ids)} locked enrollments")
    return Claim(token, ids, until)


def _token(worker_id: str) -> str:
    return f"{worker_id[:40]}/{uuid.uuid4().hex[:16]}"


def process_claim(claim: Claim) -> set[int]:
    """Process a claimed batch; returns the ids of the sequences it touched."""
    by_sequence: dict[int, list[int]] = defaultdict(list)
    for pk, sequence_id in Enrollment.objects.filter(
        id_in("pk", claim.ids), claimed_by=claim.token
    ).values_list("pk", "sequence_id"):
        by_sequence[sequence_id].append(pk)
    for sequence_id, ids in by_sequence.items():
        process_enrollments(sequence_id, ids, claim.token)
    return set(by_sequence)


@dataclass(frozen=True)
class Batch:
    """What ``process_due`` claimed and processed."""

    enrollments: int
    sequence_ids: set[int]


ROW_FIELDS = ("pk", "sequence_id", "contact_id", "status", "run_count", "next_due_at", "last_run_date")
CONTACT_FIELDS = (
    "email",
    "mobile",
    "email_opt_out",
    "sms_opt_out",
    "email_status",
    "first_name",
    "last_name",
)
ROW_VALUES = (*ROW_FIELDS, *(f"contact__{name}" for name in CONTACT_FIELDS))


def process_due(
    worker_id: str, now: dt.datetime | None = None, size: int = BATCH_SIZE, lease: dt.timedelta = LEASE
) -> Batch:
    """Claim up to *size* due enrollments and process them in one transaction.

    One transaction instead of a lease written, then released, saves an UPDATE and a
    commit per batch, and a worker that dies leaves nothing to wait for. Each
    sequence's share of the batch runs in a savepoint: if it fails, its enrollments are
    set aside under a lease of *lease* (as a ``claim_batch`` lease would keep them), so
    the workers go on with the others; the rest of the batch commits and the first
    error is raised afterwards.
    """
    now = now or clock.now()
    failure: Exception | None = None
    with transaction.atomic():
        _plan_for_keys()
        due = _due(now).order_by("next_due_at")  # see claim_batch for the order
        if connection.features.has_select_for_update_skip_locked:
            # NO KEY UPDATE is what the closing UPDATE takes anyway; unlike FOR UPDATE
            # it lets other writers check foreign keys to these rows (a tracked open
            # or a reply recording its event) without waiting for the batch.
            due = due.select_for_update(skip_locked=True, of=("self",), no_key=True)
        rows = list(due.values(*ROW_VALUES)[:size])
        by_sequence: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_sequence[row["sequence_id"]].append(row)
        for sequence_id, group in by_sequence.items():
            try:
                with transaction.atomic():
                    _process_rows(sequence_id, group, now, _release_held)
            except Exception as exc:
                failure = failure or exc
                log.exception("sequence %s: %s enrollments set aside", sequence_id, len(group))
                Enrollment.objects.filter(id_in("pk", [row["pk"] for row in group])).update(
                    claimed_until=now + lease, claimed_by=_token(worker_id)
                )
    if failure is not None:
        raise failure
    return Batch(len(rows), set(by_sequence))


def _plan_for_keys() -> None:
    """Plan the rest of this transaction for what a batch does: read and write a few
    hundred rows by key (PostgreSQL).

    The engine's tables grow by hundreds of thousands of rows within a run, faster
    than statistics follow (and without autovacuum they never do); the planner then
    takes a lookup of 500 keys for a large share of the table and reads all of it,
    or estimates a cost high enough to JIT-compile the query, which takes longer
    than running it. Measured on a 100,000-contact run: over four times the server CPU.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)")


def process_enrollments(sequence_id: int, ids: list[int], token: str) -> None:
    """Decide and execute the due steps of the claimed enrollments of one sequence."""
    with transaction.atomic():
        now = clock.now()
        _plan_for_keys()
        # Lock our rows and keep only those still ours: a lease taken over by another
        # worker is theirs now. The contact fields executors need come along.
        rows = list(
            Enrollment.objects.select_for_update(of=("self",), no_key=True)
            .filter(id_in("pk", ids), claimed_by=token)
            .values(*ROW_VALUES)
        )
        if rows:
            _process_rows(sequence_id, rows, now, lambda done, **changes: _release(done, token, **changes))


Release = Callable[..., None]


def _release(ids: Collection[int], token: str, **changes: object) -> None:
    Enrollment.objects.filter(id_in("pk", ids), claimed_by=token).update(
        next_due_at=None, claimed_until=None, claimed_by="", **changes
    )


def _release_held(ids: Collection[int], **changes: object) -> None:
    # Rows locked by this transaction (process_due): no lease to check.
    Enrollment.objects.filter(id_in("pk", ids)).update(
        next_due_at=None, claimed_until=None, claimed_by="", **changes
    )


def _process_rows(sequence_id: int, rows: list[dict[str, Any]], now: dt.datetime, release: Release) -> None:
    """Decide and execute the due steps of *rows* (locked enrollments of one sequence),
    then end their turn with *release*."""
    sequence = Sequence.objects.select_related("owner").get(pk=sequence_id)
    if sequence.status != SequenceStatus.ACTIVE:
        # Paused (or archived) after the run marked them: give the run back, so the
        # enrollments keep their place for when the sequence resumes.
        release([r["pk"] for r in rows], run_count=F("run_count") - 1)
        return
    active = [r for r in rows if r["status"] == EnrollmentStatus.ACTIVE]
    # Paused since the run marked them (an out-of-office reply): give that run back
    # too, or the steps of two days would go out together when they resume.
    paused = [r["pk"] for r in rows if r["status"] == EnrollmentStatus.PAUSED]
    if paused:
        release(paused, run_count=F("run_count") - 1)
    finished = _run_steps(sequence, active, now) if active else []
    rest = [r["pk"] for r in rows if r["status"] != EnrollmentStatus.PAUSED]
    # One UPDATE ends the turn of the rest of the batch and completes the finished ones.
    if not finished:
        release(rest)
    elif len(finished) == len(rest):
        release(rest, status=EnrollmentStatus.COMPLETED, completed_at=now)
    else:
        done = id_in("pk", finished)
        release(
            rest,
            status=Case(When(done, then=Value(EnrollmentStatus.COMPLETED)), default=F("status")),
            completed_at=Case(When(done, then=Value(now)), default=F("completed_at")),
        )


def _run_steps(sequence: Sequence, rows: list[dict[str, Any]], now: dt.datetime) -> list[int]:
    """Decide and execute the due steps of active enrollments; returns those now finished."""
    steps = {step.pk: step for step in Step.objects.filter(sequence=sequence).live()}
    plans = selection.build_plans((s.pk, s.kind, s.day, s.conditions) for s in steps.values())
    enrollment_ids = [r["pk"] for r in rows]
    done = _decided_steps(enrollment_ids) if plans else {}
    facts = {pk: selection.Facts(done=done.get(pk, set())) for pk in enrollment_ids}

    smart = sequence.kind == SequenceKind.SMART
    # Which enrollments still have to consider each step at this run.
    pending: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        row_done = facts[row["pk"]].done
        for plan in plans:
            if plan.id not in row_done and (smart or plan.day <= row["run_count"]):
                pending[plan.id].append(row)
    _load_property_facts(sequence, plans, pending, facts)
    if any(plan.email_clauses and pending.get(plan.id) for plan in plans):
        for enrollment_id, step_id, kind in (
            EmailEvent.objects.filter(
                id_in("enrollment_id", enrollment_ids),
                kind__in=set(selection.EMAIL_ACTIVITY_FIELDS.values()),
                is_automated=False,
            )
            .values_list("enrollment_id", "step_id", "kind")
            .distinct()
        ):
            facts[enrollment_id].activity.add((step_id, kind))

    to_execute: dict[int, list[int]] = defaultdict(list)
    records: list[tuple[int, int, str, str, dt.date]] = []
    run_date = {r["pk"]: r["last_run_date"] or now.date() for r in rows}
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
                pk = row["pk"]
                records.append((pk, d.step_id, ExecutionStatus.SKIPPED.value, d.reason, run_date[pk]))

    if to_execute:
        targets = _targets(rows, now)
        for plan in plans:
            if plan.id not in to_execute:
                continue
            outcomes = _execute(sequence, steps[plan.id], [targets[pk] for pk in to_execute[plan.id]])
            records.extend(
                (pk, plan.id, str(outcome.status), outcome.reason, run_date[pk])
                for pk, outcome in outcomes.items()
            )
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


def _decided_steps(enrollment_ids: list[int]) -> dict[int, set[int]]:
    """The steps each enrollment already has a StepExecution for."""
    done: dict[int, set[int]] = {}
    for enrollment_id, step_id in StepExecution.objects.filter(
        id_in("enrollment_id", enrollment_ids)
    ).values_list("enrollment_id", "step_id"):
        done.setdefault(enrollment_id, set()).add(step_id)
    return done


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
    pending: dict[int, list[dict[str, Any]]],
    facts: dict[int, selection.Facts],
) -> None:
    """One query for every step with property clauses: which clause first fails for
    each enrollment. Each clause is an EXISTS on the enrollment's contact, so every
    test is one primary-key probe (a filter on the batch's contacts could have the
    planner scan the whole contact table)."""
    annotations: dict[str, Exists] = {}
    asked: list[tuple[selection.StepPlan, list[dict[str, Any]], list[tuple[int, str]]]] = []
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
        names = []
        for index, q in compiled:
            name = f"s{plan.id}c{index}"
            annotations[name] = Exists(Contact.objects.filter(q).filter(pk=OuterRef("contact_id")))
            names.append((index, name))
        asked.append((plan, rows, names))
    if not asked:
        return
    ids = {row["pk"] for _, rows, _ in asked for row in rows}
    holds = {
        values["pk"]: values
        for values in Enrollment.objects.filter(id_in("pk", ids))
        .annotate(**annotations)
        .values("pk", *annotations)
    }
    for plan, rows, names in asked:
        for row in rows:
            found = holds[row["pk"]]
            for index, name in names:
                if not found[name]:
                    facts[row["pk"]].failed_property[plan.id] = index
                    break


def _targets(rows: list[dict[str, Any]], now: dt.datetime) -> dict[int, Target]:
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
            due_at=row["next_due_at"] or now,
        )
        for row in rows
    }
