"""The sequences endpoints under /api/v1/sequences (docs/SEQUENCES_API.md).

Thin by design: check permission, find the object in the user's scope, call an
action from ``sequent.sequences.actions``, render.

Permissions, decided once here:

- every operation of this router needs "View Sales Sequences": the router's own
  authentication refuses a user without it with 404, before the request is even
  parsed, so an endpoint added later cannot forget it;
- creating needs "Create Sales Sequences"; changing settings, steps, status
  (activate, pause, resume) and the people in a sequence needs "Edit Sales
  Sequences"; archiving and deleting need "Delete Sales Sequences", because both
  end every enrollment for good. A user who can see sequences but lacks one of
  these gets 403 with the reason;
- another user's sequence, step or enrollment answers 404 everywhere
  (``access.access_object``), checked before the 403 above.
"""

import copy
import datetime as dt
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.db.models import Count, IntegerField, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from ninja import Query, Router, Status

from sequent.api.auth import AUTH
from sequent.api.pagination import paginated
from sequent.crm.conditions import ConditionError
from sequent.sequences import actions
from sequent.sequences.audience import audience, enrollable
from sequent.sequences.metrics import STEP_COUNTS
from sequent.sequences.models import (
    Enrollment,
    EnrollmentStatus,
    Sequence,
    SequenceMetrics,
    Step,
    StepMetrics,
)
from sequent.sequences.schemas import (
    AddContactsIn,
    AddContactsOut,
    EnrollmentOut,
    EnrollmentStatusName,
    MetricsOut,
    PreviewOut,
    ReorderIn,
    SequenceIn,
    SequenceOut,
    SequencePatch,
    SequenceStatusName,
    SequenceSummaryOut,
    StepIn,
    StepOut,
    StepPatch,
    TimelineOut,
    metrics_counts,
    next_run_at,
)
from sequent.sequences.timeline import build_timeline
from sequent.users import access

PREVIEW_SAMPLE = 10
PERMISSION_LABELS = {
    access.CREATE_SEQUENCES: "Create Sales Sequences",
    access.EDIT_SEQUENCES: "Edit Sales Sequences",
    access.DELETE_SEQUENCES: "Delete Sales Sequences",
}


def _requiring_view(auth: Any) -> Any:
    """A copy of the API authenticator *auth* that also refuses (404) a user without
    "View Sales Sequences". It keeps its class name, so OpenAPI shows one scheme."""
    base = type(auth)

    class Gated(base):  # type: ignore[valid-type,misc]
        def __call__(self, request: HttpRequest) -> Any:
            user = super().__call__(request)
            if user:
                access.require_perm(user, access.VIEW_SEQUENCES)
            return user

    Gated.__name__ = Gated.__qualname__ = base.__name__
    gated = copy.copy(auth)
    gated.__class__ = Gated
    return gated


router = Router(auth=[_requiring_view(auth) for auth in AUTH], tags=["sequences"])


# --- lookups ------------------------------------------------------------------------------


def _require(request: HttpRequest, codename: str) -> None:
    """403 with the reason when the user, who can see sequences, lacks *codename*."""
    if not access.has_perm(request.user, codename):
        raise PermissionDenied(f"this needs the {PERMISSION_LABELS[codename]} permission")


def _sequence(request: HttpRequest, sequence_id: int) -> Sequence:
    """The user's own sequence, or 404."""
    return access.access_object(Sequence.objects.select_related("owner"), request.user, pk=sequence_id)


def _step(request: HttpRequest, sequence_id: int, step_id: int) -> Step:
    """A live step of the user's own sequence, or 404."""
    steps = Step.objects.filter(sequence_id=sequence_id, deleted_at__isnull=True).select_related(
        "sequence__owner"
    )
    return access.access_object(steps, request.user, pk=step_id)


def _enrollment(request: HttpRequest, sequence_id: int, enrollment_id: int) -> Enrollment:
    """An enrollment of the user's own sequence, or 404."""
    enrollments = Enrollment.objects.filter(sequence_id=sequence_id).select_related(
        "contact", "sequence__owner"
    )
    return access.access_object(enrollments, request.user, pk=enrollment_id)


def _count(queryset: QuerySet[Any]) -> Coalesce:
    """A correlated COUNT of *queryset* (filtered on ``OuterRef``), 0 when empty."""
    counted = queryset.order_by().values("sequence").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def _with_counts(queryset: QuerySet[Sequence]) -> QuerySet[Sequence]:
    # Correlated subqueries rather than joined COUNTs: no enrollments x steps product.
    return queryset.select_related("metrics").annotate(
        step_count=_count(Step.objects.filter(sequence=OuterRef("pk"), deleted_at__isnull=True)),
        enrolled_count=_count(Enrollment.objects.filter(sequence=OuterRef("pk"))),
        active_count=_count(
            Enrollment.objects.filter(sequence=OuterRef("pk"), status=EnrollmentStatus.ACTIVE)
        ),
    )


def _detail(request: HttpRequest, sequence_id: int) -> Sequence:
    """The user's sequence with everything SequenceOut reads, in a fixed number of queries."""
    queryset = _with_counts(Sequence.objects.all()).prefetch_related(
        "audience_views", Prefetch("steps", queryset=Step.objects.live(), to_attr="live_steps")
    )
    return access.access_object(queryset, request.user, pk=sequence_id)


# --- sequences ----------------------------------------------------------------------------


@router.get("", response=list[SequenceSummaryOut])
@paginated
def list_sequences(
    request: HttpRequest,
    status: SequenceStatusName | None = None,
    q: str = Query("", description="part of the name"),
) -> QuerySet[Sequence]:
    """Your sequences, newest first, with their step count, enrolled, active and reply rate."""
    sequences = access.scope(_with_counts(Sequence.objects.all()), request.user)
    if status:
        sequences = sequences.filter(status=status)
    if q.strip():
        sequences = sequences.filter(name__icontains=q.strip())
    return sequences.order_by("-created_at", "-id")


@router.post("", response={201: SequenceOut})
def create_sequence(request: HttpRequest, payload: SequenceIn) -> Status[Sequence]:
    """A new draft sequence. Add steps, then activate it."""
    _require(request, access.CREATE_SEQUENCES)
    fields = payload.model_dump(exclude_unset=True)
    sequence = actions.do_create_sequence(request.user, fields.pop("name"), **fields)
    return Status(201, _detail(request, sequence.pk))


@router.get("/{int:sequence_id}", response=SequenceOut)
def get_sequence(request: HttpRequest, sequence_id: int) -> Sequence:
    return _detail(request, sequence_id)


@router.patch("/{int:sequence_id}", response=SequenceOut)
def update_sequence(request: HttpRequest, sequence_id: int, payload: SequencePatch) -> Sequence:
    """Change the fields sent. Enrollments in flight see the change at their next run."""
    sequence = _sequence(request, sequence_id)
    _require(request, access.EDIT_SEQUENCES)
    actions.do_update_sequence(sequence, **payload.model_dump(exclude_unset=True))
    return _detail(request, sequence_id)


@router.delete("/{int:sequence_id}", response={204: None})
def delete_sequence(request: HttpRequest, sequence_id: int) -> Status[None]:
    """Delete a draft or archived sequence with its whole history (archive an active one first)."""
    sequence = _sequence(request, sequence_id)
    _require(request, access.DELETE_SEQUENCES)
    actions.do_delete_sequence(sequence)
    return Status(204, None)


def _status_change(request: HttpRequest, sequence_id: int, codename: str, action: Any) -> Sequence:
    sequence = _sequence(request, sequence_id)
    _require(request, codename)
    action(sequence)
    return _detail(request, sequence_id)


@router.post("/{int:sequence_id}/activate", response=SequenceOut)
def activate_sequence(request: HttpRequest, sequence_id: int) -> Sequence:
    """Start a draft: its first run is the first slot after now."""
    return _status_change(request, sequence_id, access.EDIT_SEQUENCES, actions.do_activate)


@router.post("/{int:sequence_id}/pause", response=SequenceOut)
def pause_sequence(request: HttpRequest, sequence_id: int) -> Sequence:
    """No runs until resumed; every enrollment keeps its place."""
    return _status_change(request, sequence_id, access.EDIT_SEQUENCES, actions.do_pause)


@router.post("/{int:sequence_id}/resume", response=SequenceOut)
def resume_sequence(request: HttpRequest, sequence_id: int) -> Sequence:
    """Runs start again at the next slot; each enrollment's schedule slides by the pause."""
    return _status_change(request, sequence_id, access.EDIT_SEQUENCES, actions.do_resume)


@router.post("/{int:sequence_id}/archive", response=SequenceOut)
def archive_sequence(request: HttpRequest, sequence_id: int) -> Sequence:
    """End the sequence for good: every enrollment in flight exits (reason archived)."""
    return _status_change(request, sequence_id, access.DELETE_SEQUENCES, actions.do_archive)


# --- steps --------------------------------------------------------------------------------


@router.get("/{int:sequence_id}/steps", response=list[StepOut])
@paginated
def list_steps(request: HttpRequest, sequence_id: int) -> QuerySet[Step]:
    """The sequence's steps, in order."""
    sequence = _sequence(request, sequence_id)
    return Step.objects.filter(sequence=sequence).live()


@router.post("/{int:sequence_id}/steps", response={201: StepOut})
def create_step(request: HttpRequest, sequence_id: int, payload: StepIn) -> Status[Step]:
    """Add a step at the end of the sequence."""
    sequence = _sequence(request, sequence_id)
    _require(request, access.EDIT_SEQUENCES)
    fields = payload.model_dump(exclude_unset=True)
    return Status(201, actions.do_add_step(sequence, fields.pop("kind"), **fields))


@router.post("/{int:sequence_id}/steps/reorder", response=list[StepOut])
def reorder_steps(request: HttpRequest, sequence_id: int, payload: ReorderIn) -> list[Step]:
    """Put the steps in the order of ``step_ids``; returns them in that order."""
    sequence = _sequence(request, sequence_id)
    _require(request, access.EDIT_SEQUENCES)
    return actions.do_reorder_steps(sequence, payload.step_ids)


@router.get("/{int:sequence_id}/steps/{int:step_id}", response=StepOut)
def get_step(request: HttpRequest, sequence_id: int, step_id: int) -> Step:
    return _step(request, sequence_id, step_id)


@router.patch("/{int:sequence_id}/steps/{int:step_id}", response=StepOut)
def update_step(request: HttpRequest, sequence_id: int, step_id: int, payload: StepPatch) -> Step:
    """Change the fields sent; enrollments that have not reached the step see the change."""
    step = _step(request, sequence_id, step_id)
    _require(request, access.EDIT_SEQUENCES)
    return actions.do_update_step(step, **payload.model_dump(exclude_unset=True))


@router.delete("/{int:sequence_id}/steps/{int:step_id}", response={204: None})
def delete_step(request: HttpRequest, sequence_id: int, step_id: int) -> Status[None]:
    """Remove a step; what it already did stays in the enrollments' timelines."""
    step = _step(request, sequence_id, step_id)
    _require(request, access.EDIT_SEQUENCES)
    actions.do_delete_step(step)
    return Status(204, None)


# --- audience and enrollments -------------------------------------------------------------


@router.get("/{int:sequence_id}/audience/preview", response=PreviewOut)
def preview_audience(request: HttpRequest, sequence_id: int) -> dict[str, Any]:
    """Who a run would enroll if it ran now (the engine's own query), and a sample. Read-only."""
    sequence = _sequence(request, sequence_id)
    try:
        candidates = enrollable(sequence)
        return {
            "would_enroll": candidates.count(),
            "audience": audience(sequence).count(),
            "sample": list(candidates.order_by("pk")[:PREVIEW_SAMPLE]),
        }
    except ConditionError as exc:
        # Conditions valid when saved can stop compiling (a custom field was deleted).
        raise ValidationError({"audience_conditions": f"the audience cannot be computed: {exc}"}) from None


@router.get("/{int:sequence_id}/enrollments", response=list[EnrollmentOut])
@paginated
def list_enrollments(
    request: HttpRequest, sequence_id: int, status: EnrollmentStatusName | None = None
) -> QuerySet[Enrollment]:
    """The contacts enrolled in the sequence, newest first, optionally of one status."""
    sequence = _sequence(request, sequence_id)
    enrollments = Enrollment.objects.filter(sequence=sequence).select_related("contact")
    if status:
        enrollments = enrollments.filter(status=status)
    return enrollments.order_by("-enrolled_at", "-id")


@router.post("/{int:sequence_id}/enrollments", response=AddContactsOut)
def add_contacts(request: HttpRequest, sequence_id: int, payload: AddContactsIn) -> dict[str, Any]:
    """Add contacts by hand; they enroll at the next run (unless an exit criterion or
    exclusivity keeps them out: see the audience preview)."""
    sequence = _sequence(request, sequence_id)
    _require(request, access.EDIT_SEQUENCES)
    added = actions.do_add_contacts(sequence, payload.contact_ids)
    return {"added": added, "enrolls_at": next_run_at(sequence)}


@router.get("/{int:sequence_id}/enrollments/{int:enrollment_id}", response=EnrollmentOut)
def get_enrollment(request: HttpRequest, sequence_id: int, enrollment_id: int) -> Enrollment:
    return _enrollment(request, sequence_id, enrollment_id)


@router.delete("/{int:sequence_id}/enrollments/{int:enrollment_id}", response=EnrollmentOut)
def remove_enrollment(request: HttpRequest, sequence_id: int, enrollment_id: int) -> Enrollment:
    """Take the contact out by hand (exit reason ``removed``); pending messages are cancelled
    and the contact does not enroll again."""
    enrollment = _enrollment(request, sequence_id, enrollment_id)
    _require(request, access.EDIT_SEQUENCES)
    return actions.do_remove_enrollment(enrollment)


@router.get("/{int:sequence_id}/enrollments/{int:enrollment_id}/timeline", response=TimelineOut)
def enrollment_timeline(request: HttpRequest, sequence_id: int, enrollment_id: int) -> Any:
    """For every step, in order: what happened and why, or what it waits for."""
    return build_timeline(_enrollment(request, sequence_id, enrollment_id))


# --- metrics --------------------------------------------------------------------------------


@router.get("/{int:sequence_id}/metrics", response=MetricsOut)
def sequence_metrics(request: HttpRequest, sequence_id: int) -> dict[str, Any]:
    """Counts and rates of the sequence and of each step, as of the end of the last run."""
    sequence = _sequence(request, sequence_id)
    try:
        metrics = SequenceMetrics.objects.get(sequence=sequence)
        refreshed_at: dt.datetime | None = metrics.refreshed_at
    except ObjectDoesNotExist:
        metrics, refreshed_at = SequenceMetrics(sequence=sequence), None
    steps = (
        Step.objects.filter(sequence=sequence)
        .filter(Q(deleted_at__isnull=True) | Q(metrics__isnull=False))
        .select_related("metrics")
        .order_by("position", "id")
    )
    per_step = []
    for step in steps:
        try:
            step_metrics = step.metrics
        except ObjectDoesNotExist:
            step_metrics = StepMetrics(step=step)
        per_step.append(
            {
                "step_id": step.pk,
                "position": step.position,
                "kind": step.kind,
                "deleted": step.deleted_at is not None,
                "counts": {name: getattr(step_metrics, name) for name in STEP_COUNTS},
                "rates": step_metrics.rates(),
            }
        )
    return {
        "refreshed_at": refreshed_at,
        "counts": metrics_counts(metrics),
        "exited_by_reason": metrics.exited_by_reason,
        "rates": metrics.rates(),
        "steps": per_step,
    }
