"""Run slots: find the sequences whose run is due, claim each run once, prepare it, finish it.

A run of a sequence is identified by (sequence, local date). Preparing it is one
transaction: insert the RunSlot row (the unique key lets exactly one worker win),
apply exits, enroll the new audience, and mark the active enrollments due. Workers
then process the due enrollments in batches (sequent/sequences/processing.py); when
none remain, one of them finishes the slot and refreshes the metrics.

Missed slots are never run: only the latest slot at or before now is considered, and
an enrollment's run counter moves once per run it takes part in, so downtime slides
the schedule instead of bursting.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from sequent.crm.conditions import ConditionError
from sequent.lib import clock
from sequent.sequences import schedule as sched
from sequent.sequences.audience import enroll_audience
from sequent.sequences.exits import apply_exits
from sequent.sequences.metrics import refresh_metrics
from sequent.sequences.models import (
    Enrollment,
    EnrollmentStatus,
    RunSlot,
    RunSlotStatus,
    Sequence,
    SequenceStatus,
)

log = logging.getLogger(__name__)

# When a sequence cannot start a new run because its previous one is still being
# processed, look again after this long (the finishing worker usually gets there first).
RECHECK_BLOCKED = dt.timedelta(minutes=1)


def due_sequence_ids(now: dt.datetime, limit: int = 100) -> list[int]:
    """Active sequences that may have a run due: never looked at, or past next_run_at."""
    return list(
        Sequence.objects.filter(status=SequenceStatus.ACTIVE)
        .filter(Q(next_run_at__isnull=True) | Q(next_run_at__lte=now))
        .order_by(F("next_run_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:limit]
    )


def latest_due_date(sequence: Sequence, now: dt.datetime) -> dt.date | None:
    """The local date of the sequence's latest slot at or before *now* (None: none yet)."""
    return sched.latest_slot(
        sequence.schedule, now, anchor=sequence.anchor_date, not_before=sequence.runs_from
    )


def start_run(sequence_id: int, worker_id: str, now: dt.datetime | None = None) -> RunSlot | None:
    """Claim and prepare the latest due run of a sequence; None when there is nothing to
    claim (not due, already run, another worker has it, or the previous run is unfinished)."""
    now = now or clock.now()
    with transaction.atomic():
        # SKIP LOCKED on PostgreSQL: a sequence another worker is preparing is simply passed over.
        sequence = (
            Sequence.objects.select_for_update(skip_locked=True)
            .filter(pk=sequence_id, status=SequenceStatus.ACTIVE)
            .select_related("owner")
            .first()
        )
        if sequence is None:
            return None
        local_date = latest_due_date(sequence, now)
        if local_date is None:
            _look_again(sequence, now)
            return None
        return run_slot(sequence, local_date, worker_id, now)


def run_slot(sequence: Sequence, local_date: dt.date, worker_id: str, now: dt.datetime) -> RunSlot | None:
    """Claim and prepare the run of *sequence* on *local_date*; None if it is already
    claimed, older than a run that happened, or the previous run is unfinished."""
    with transaction.atomic():
        earlier = RunSlot.objects.filter(sequence=sequence)
        unfinished = earlier.filter(status=RunSlotStatus.RUNNING).first()
        if unfinished is not None and not finish_slot(unfinished, now):
            # The previous run still has enrollments to process: a new run now would
            # count two runs for them at once.
            Sequence.objects.filter(pk=sequence.pk).update(next_run_at=now + RECHECK_BLOCKED)
            return None
        if earlier.filter(local_date__gte=local_date).exists():
            _look_again(sequence, now)
            return None
        instant = sched.local_run_instant(sequence.schedule, local_date)
        try:
            with transaction.atomic():
                slot = RunSlot.objects.create(
                    sequence=sequence,
                    local_date=local_date,
                    run_at=instant,
                    claimed_by=worker_id[:64],
                    started_at=now,
                )
        except IntegrityError:
            return None
        notes: list[str] = []
        slot.exited = apply_exits(sequence, local_date, now, notes)
        _resume_paused(sequence, instant)
        try:
            with transaction.atomic():
                slot.enrolled = enroll_audience(sequence, local_date, instant, now)
        except ConditionError as exc:
            notes.append(f"no one enrolled: the audience conditions do not compile: {exc}")
        # Enrollments made just now are already due for this run; mark the others.
        slot.enrollments_due = slot.enrolled + mark_due(sequence, local_date, instant)
        slot.notes = "\n".join(notes)
        slot.save(update_fields=["exited", "enrolled", "enrollments_due", "notes"])
        _look_again(sequence, now)
    log.info(
        "run of sequence %s on %s: %s exited, %s enrolled, %s due",
        sequence.pk,
        local_date,
        slot.exited,
        slot.enrolled,
        slot.enrollments_due,
    )
    if slot.enrollments_due == 0:
        finish_slot(slot)
    return slot


# A sequence whose run failed is looked at again after this long.
RETRY_FAILED = dt.timedelta(minutes=15)


def set_aside(sequence_id: int, now: dt.datetime) -> None:
    """Put off a sequence whose run failed, so the others go on."""
    Sequence.objects.filter(pk=sequence_id).update(next_run_at=now + RETRY_FAILED)


def _look_again(sequence: Sequence, now: dt.datetime) -> None:
    # The next instant this sequence can have a run; until then the due query skips it.
    _, instant = sched.next_slot(sequence.schedule, now, anchor=sequence.anchor_date)
    Sequence.objects.filter(pk=sequence.pk).update(next_run_at=instant)


def _resume_paused(sequence: Sequence, instant: dt.datetime) -> None:
    # An out-of-office pause ends at its return date; the enrollment takes part in this run.
    Enrollment.objects.filter(
        sequence=sequence,
        status=EnrollmentStatus.PAUSED,
        paused_until__isnull=False,
        paused_until__lte=instant,
    ).update(status=EnrollmentStatus.ACTIVE, paused_until=None)


def mark_due(sequence: Sequence, local_date: dt.date, instant: dt.datetime) -> int:
    """Mark the active enrollments due for this run and count the run for them.

    Only enrollments whose last run is older than *local_date* and that have nothing
    pending move, so repeating a run or running an older slot changes nothing.
    """
    return (
        Enrollment.objects.filter(sequence=sequence, status=EnrollmentStatus.ACTIVE, next_due_at__isnull=True)
        .filter(Q(last_run_date__isnull=True) | Q(last_run_date__lt=local_date))
        .update(
            next_due_at=instant,
            run_count=F("run_count") + 1,
            last_run_date=local_date,
            claimed_until=None,
            claimed_by="",
        )
    )


def finish_slot(slot: RunSlot, now: dt.datetime | None = None) -> bool:
    """Finish a run whose due enrollments are all processed and refresh the metrics;
    False if some are still pending or another worker finished it first."""
    if Enrollment.objects.filter(sequence_id=slot.sequence_id, next_due_at__isnull=False).exists():
        return False
    now = now or clock.now()
    finished = RunSlot.objects.filter(pk=slot.pk, status=RunSlotStatus.RUNNING).update(
        status=RunSlotStatus.DONE, finished_at=now
    )
    if not finished:
        return False
    refresh_metrics(Sequence.objects.get(pk=slot.sequence_id))
    return True


def finish_slots(sequence_ids: list[int] | None = None) -> int:
    """Finish every running slot (of *sequence_ids*, or all) with nothing left pending."""
    running = RunSlot.objects.filter(status=RunSlotStatus.RUNNING)
    if sequence_ids is not None:
        running = running.filter(sequence_id__in=sequence_ids)
    return sum(finish_slot(slot) for slot in running)
