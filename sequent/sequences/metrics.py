"""Sequence and step metrics, recomputed with a few aggregate queries at the end of a run.

Per step, email counts are distinct enrollments with that event for the step's
message (a contact opening one email five times counts once); a sequence's email
counts are the sums over its steps, so its rates are per email sent.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import transaction
from django.db.models import Count, Q

from sequent.lib import clock
from sequent.mail.models import EmailEvent
from sequent.sequences.models import (
    Enrollment,
    EnrollmentStatus,
    Sequence,
    SequenceMetrics,
    Step,
    StepExecution,
    StepMetrics,
)

EMAIL_COUNTS = ("sent", "delivered", "opened", "clicked", "replied", "bounced", "unsubscribed")
EXECUTION_COUNTS = ("executed", "skipped", "failed")
# Opens and clicks also counted with automated hits (security scanners, image proxies).
RAW_COUNTS = ("opened_raw", "clicked_raw")
# Every counter a step keeps, and a sequence's on top of its enrollment counts.
STEP_COUNTS = EXECUTION_COUNTS + EMAIL_COUNTS + RAW_COUNTS
SEQUENCE_COUNTS = ("enrolled", "active", "paused", "completed", "exited", *STEP_COUNTS)


def refresh_metrics(sequence: Sequence) -> SequenceMetrics:
    """Recompute and store the metrics of *sequence* and each of its steps."""
    now = clock.now()
    by_status: dict[str, int] = defaultdict(int)
    by_reason: dict[str, int] = {}
    for status_row in (
        Enrollment.objects.filter(sequence=sequence)
        .values("status", "exit_reason")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        by_status[status_row["status"]] += status_row["n"]
        if status_row["status"] == EnrollmentStatus.EXITED:
            by_reason[status_row["exit_reason"] or "unknown"] = status_row["n"]

    steps = list(Step.objects.filter(sequence=sequence).values_list("pk", flat=True))
    per_step: dict[int, dict[str, int]] = {pk: defaultdict(int) for pk in steps}
    for execution_row in (
        StepExecution.objects.filter(step__sequence=sequence)
        .values("step_id", "status")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        per_step[execution_row["step_id"]][execution_row["status"]] = execution_row["n"]
    for event_row in (
        EmailEvent.objects.filter(step__sequence=sequence, kind__in=EMAIL_COUNTS)
        .values("step_id", "kind")
        .annotate(
            n=Count("enrollment", distinct=True, filter=Q(is_automated=False)),
            n_raw=Count("enrollment", distinct=True),
        )
        .order_by()
    ):
        if event_row["step_id"] in per_step:
            per_step[event_row["step_id"]][event_row["kind"]] = event_row["n"]
            if event_row["kind"] in ("opened", "clicked"):
                per_step[event_row["step_id"]][f"{event_row['kind']}_raw"] = event_row["n_raw"]

    totals = {
        name: sum(counts[name] for counts in per_step.values())
        for name in STEP_COUNTS
    }
    with transaction.atomic():
        metrics, _ = SequenceMetrics.objects.update_or_create(
            sequence=sequence,
            defaults={
                "enrolled": sum(by_status.values()),
                "active": by_status[EnrollmentStatus.ACTIVE],
                "paused": by_status[EnrollmentStatus.PAUSED],
                "completed": by_status[EnrollmentStatus.COMPLETED],
                "exited": by_status[EnrollmentStatus.EXITED],
                "exited_by_reason": by_reason,
                "refreshed_at": now,
                **totals,
            },
        )
        fields = list(STEP_COUNTS)
        StepMetrics.objects.bulk_create(
            [
                StepMetrics(step_id=pk, refreshed_at=now, **{name: counts[name] for name in fields})
                for pk, counts in per_step.items()
            ],
            update_conflicts=True,
            unique_fields=["step"],
            update_fields=[*fields, "refreshed_at"],
        )
    return metrics
