"""The sequence list and one sequence's summary page.

Both need "View Sales Sequences"; without it, and for another user's sequence, they
answer 404 like the API does. The builder is in ``views_builder``, the performance
pages in ``views_performance``.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Case, Count, F, FloatField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sequent.crm.views import Column, build_listing
from sequent.sequences.models import (
    EnrollmentStatus,
    RunSlot,
    Sequence,
    SequenceKind,
    SequenceMetrics,
    SequenceStatus,
    StepKind,
)
from sequent.sequences.views_builder import status_buttons
from sequent.users import access

ENROLLMENTS_SHOWN = 50

SEQUENCE_COLUMNS = (
    Column("Name", "name"),
    Column("Type"),
    Column("Status", "status"),
    Column("Enrolled", "enrolled"),
    Column("Active", "active"),
    Column("Reply rate", "reply_rate"),
    Column("Last run", "last_run"),
)
SEQUENCE_ORDERINGS = {
    "name": ("name",),
    "status": ("status",),
    "enrolled": ("enrolled",),
    "active": ("active",),
    "reply_rate": ("reply_rate",),
    "last_run": ("last_run",),
    "created": ("created_at",),
}


def with_counts(sequences: QuerySet[Sequence]) -> QuerySet[Sequence]:
    """*sequences* annotated with live ``enrolled`` and ``active`` counts and the stored
    ``reply_rate`` (replied over sent, 0..1; None until a run has sent an email) and
    ``last_run``, the instant of its latest run (None before the first)."""
    last_run = RunSlot.objects.filter(sequence=OuterRef("pk")).order_by("-run_at").values("run_at")[:1]
    return sequences.annotate(
        last_run=Subquery(last_run),
        enrolled=Count("enrollments"),
        active=Count("enrollments", filter=Q(enrollments__status=EnrollmentStatus.ACTIVE)),
        reply_rate=Case(
            When(
                metrics__sent__gt=0,
                then=Cast(F("metrics__replied"), FloatField()) / Cast(F("metrics__sent"), FloatField()),
            ),
            default=Value(None),
            output_field=FloatField(),
        ),
    )


@login_required
def sequence_list(request: HttpRequest) -> HttpResponse:
    """The user's own sequences with status, enrolled, active and reply rate."""
    access.require_perm(request.user, access.VIEW_SEQUENCES)
    listing = build_listing(
        request,
        with_counts(access.scope(Sequence.objects.all(), request.user)),
        columns=SEQUENCE_COLUMNS,
        orderings=SEQUENCE_ORDERINGS,
        default_sort="name",
        search_fields=("name",),
    )
    return render(
        request,
        "sequences/sequence_list.html",
        {"listing": listing, "can_create": access.has_perm(request.user, access.CREATE_SEQUENCES)},
    )


def step_summary(step_kind: str, subject: str, task_title: str, sms_body: str) -> str:
    """What a step says in one line: the subject of an email, the title of a task, the SMS text."""
    if step_kind in (StepKind.EMAIL, StepKind.EMAIL_REMINDER):
        return subject
    if step_kind == StepKind.SMS:
        return sms_body
    return task_title


@login_required
def sequence_detail(request: HttpRequest, sequence_id: int) -> HttpResponse:
    """One sequence read-only: schedule, exit criteria, steps in order with their metrics,
    the sequence metrics, and its first 50 enrollments."""
    access.require_perm(request.user, access.VIEW_SEQUENCES)
    sequence: Sequence = access.access_object(
        Sequence.objects.select_related("mailbox"), request.user, pk=sequence_id
    )
    metrics = SequenceMetrics.objects.filter(sequence=sequence).first()
    steps = list(sequence.steps.live().select_related("metrics"))
    rows = [
        {
            "step": step,
            "summary": step_summary(step.kind, step.subject, step.task_title, step.sms_body),
            # A step added since the last run has no metrics row yet.
            "metrics": getattr(step, "metrics", None),
        }
        for step in steps
    ]
    enrollments = sequence.enrollments.select_related("contact").order_by("enrolled_at", "id")
    return render(
        request,
        "sequences/sequence_detail.html",
        {
            "sequence": sequence,
            "is_smart": sequence.kind == SequenceKind.SMART,
            "metrics": metrics,
            "rates": metrics.rates() if metrics else None,
            "steps": rows,
            "enrollments": list(enrollments[:ENROLLMENTS_SHOWN]),
            "enrollment_count": enrollments.count(),
            "can_edit": access.has_perm(request.user, access.EDIT_SEQUENCES)
            and sequence.status != SequenceStatus.ARCHIVED,
            "status_actions": status_buttons(request, sequence),
        },
    )
