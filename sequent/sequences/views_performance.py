"""How a sequence performs: the per-step funnel and exits charts, the enrollments table
with filters, and one enrollment's timeline. Read-only, behind "View Sales Sequences",
each sequence scoped to its owner (404 otherwise)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import OuterRef, Q, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sequent.crm.views import Column, build_listing
from sequent.sequences import charts
from sequent.sequences.metrics import SEQUENCE_COUNTS, STEP_COUNTS
from sequent.sequences.models import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    Sequence,
    SequenceMetrics,
    Step,
    StepExecution,
    StepKind,
    StepMetrics,
)
from sequent.sequences.timeline import build_timeline
from sequent.users import access

ENROLLMENT_COLUMNS = (
    Column("Contact", "contact"),
    Column("Email", "email"),
    Column("Status", "status"),
    Column("Exit reason", "exit_reason"),
    Column("Last step", "last_step"),
    Column("Runs", "runs"),
    Column("Enrolled", "enrolled"),
)
ENROLLMENT_ORDERINGS = {
    "contact": ("contact__last_name", "contact__first_name"),
    "email": ("contact__email",),
    "status": ("status",),
    "exit_reason": ("exit_reason",),
    "last_step": ("last_step_position",),
    "runs": ("run_count",),
    "enrolled": ("enrolled_at",),
}


def _sequence(request: HttpRequest, sequence_id: int) -> Sequence:
    access.require_perm(request.user, access.VIEW_SEQUENCES)
    return access.access_object(Sequence.objects.all(), request.user, pk=sequence_id)


def _step_title(step: Step) -> str:
    gone = " (deleted)" if step.deleted_at else ""
    return f"Step {step.position}: {step.get_kind_display()}{gone}"


@login_required
def performance(request: HttpRequest, sequence_id: int) -> HttpResponse:
    """Funnel per step (sent, opened, clicked, replied, bounced, unsubscribed; human and raw
    opens and clicks side by side) and exits by reason, as of the end of the last run."""
    sequence = _sequence(request, sequence_id)
    metrics = SequenceMetrics.objects.filter(sequence=sequence).first()
    steps = list(
        Step.objects.filter(sequence=sequence)
        .filter(Q(deleted_at__isnull=True) | Q(metrics__isnull=False))
        .select_related("metrics")
        .order_by("position", "id")
    )
    step_charts = []
    for step in steps:
        try:
            step_metrics = step.metrics
        except ObjectDoesNotExist:
            step_metrics = StepMetrics(step=step)
        counts = {name: getattr(step_metrics, name) for name in STEP_COUNTS}
        step_charts.append(
            {
                "step": step,
                "counts": counts,
                "is_email": step.kind in (StepKind.EMAIL, StepKind.EMAIL_REMINDER),
                "chart": charts.funnel_chart(_step_title(step), counts),
                "chart_id": f"chart-step-{step.pk}",
            }
        )
    totals = {name: getattr(metrics, name) for name in SEQUENCE_COUNTS} if metrics else {}
    labels = {code: str(label) for code, label in ExitReason.choices}
    by_reason: dict[str, Any] = metrics.exited_by_reason if metrics else {}
    return render(
        request,
        "sequences/performance.html",
        {
            "sequence": sequence,
            "metrics": metrics,
            "totals": totals,
            "rates": metrics.rates() if metrics else None,
            "overall": charts.funnel_chart("All steps", totals) if metrics else None,
            "step_charts": step_charts,
            "exits": charts.exits_chart(by_reason, labels) if by_reason else None,
        },
    )


def _last_step() -> tuple[Subquery, Subquery]:
    """The id and position of the furthest step an enrollment has been through."""
    latest = StepExecution.objects.filter(enrollment=OuterRef("pk")).order_by(
        "-step__position", "-executed_at"
    )
    return Subquery(latest.values("step_id")[:1]), Subquery(latest.values("step__position")[:1])


@login_required
def enrollments(request: HttpRequest, sequence_id: int) -> HttpResponse:
    """The contacts enrolled, 50 a page, filtered by status, last step and exit reason and
    searched by contact name or email."""
    sequence = _sequence(request, sequence_id)
    last_step_id, last_step_position = _last_step()
    queryset = (
        Enrollment.objects.filter(sequence=sequence)
        .select_related("contact")
        .annotate(last_step_id=last_step_id, last_step_position=last_step_position)
    )
    status = request.GET.get("status", "")
    if status in EnrollmentStatus.values:
        queryset = queryset.filter(status=status)
    reason = request.GET.get("exit_reason", "")
    if reason in ExitReason.values:
        queryset = queryset.filter(exit_reason=reason)
    steps = list(Step.objects.filter(sequence=sequence).live())
    step = request.GET.get("step", "")
    if step == "none":
        queryset = queryset.filter(last_step_id__isnull=True)
    elif step.isdigit():
        queryset = queryset.filter(last_step_id=int(step))
    listing = build_listing(
        request,
        queryset,
        columns=ENROLLMENT_COLUMNS,
        orderings=ENROLLMENT_ORDERINGS,
        default_sort="-enrolled",
        search_fields=("contact__first_name", "contact__last_name", "contact__email"),
    )
    return render(
        request,
        "sequences/enrollments.html",
        {
            "sequence": sequence,
            "listing": listing,
            "steps": steps,
            "statuses": EnrollmentStatus.choices,
            "reasons": ExitReason.choices,
            "chosen": {"status": status, "exit_reason": reason, "step": step},
            "filtered": bool(status or reason or step or listing.q),
        },
    )


@login_required
def enrollment(request: HttpRequest, sequence_id: int, enrollment_id: int) -> HttpResponse:
    """One contact's passage through the sequence: for every step, what happened and why."""
    sequence = _sequence(request, sequence_id)
    found: Enrollment = access.access_object(
        Enrollment.objects.filter(sequence=sequence).select_related("contact", "sequence"),
        request.user,
        pk=enrollment_id,
    )
    timeline = build_timeline(found)
    entries = [
        {"entry": entry, "kind": StepKind(entry.kind).label, "state": entry.state.replace("_", " ")}
        for entry in timeline.entries
    ]
    return render(
        request,
        "sequences/enrollment.html",
        {"sequence": sequence, "enrollment": found, "timeline": timeline, "entries": entries},
    )
