"""The activities dashboard under /api/v1/tasks: the user's own tasks, call reminders and
email reminders, their filters and counts, and the actions on them (docs/TASKS_AND_SMS.md).

Every task is looked up in the user's scope (``access``): another user's task is 404.
"""

import datetime as dt
import zoneinfo
from typing import Any, Literal

from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from sequent.api.pagination import paginated
from sequent.lib import clock
from sequent.tasks import actions
from sequent.tasks.models import Task, TaskKind, TaskStatus
from sequent.tasks.rendering import render_task_text
from sequent.users import access

router = Router(tags=["tasks"])

KindName = Literal["follow_up", "call_reminder", "email_reminder"]
StatusName = Literal["open", "done", "skipped"]
DueName = Literal["overdue", "today", "this_week"]
OutcomeName = Literal["connected", "left_voicemail", "no_answer", "wrong_number", "busy"]


class TaskOut(Schema):
    id: int
    kind: str
    status: str
    title: str
    notes: str
    due_at: dt.datetime
    overdue: bool
    owner_id: int
    contact_id: int
    contact_name: str
    sequence_id: int | None
    step_id: int | None
    message_id: int | None
    outcome: str
    completed_at: dt.datetime | None

    @staticmethod
    def resolve_title(obj: Task) -> str:
        return render_task_text(obj, obj.title)[:255]

    @staticmethod
    def resolve_notes(obj: Task) -> str:
        return render_task_text(obj, obj.notes)

    @staticmethod
    def resolve_overdue(obj: Task) -> bool:
        return obj.status == TaskStatus.OPEN and obj.due_at < clock.now()

    @staticmethod
    def resolve_contact_name(obj: Task) -> str:
        contact = obj.contact
        return f"{contact.first_name} {contact.last_name}".strip() or contact.email

    @staticmethod
    def resolve_sequence_id(obj: Task) -> int | None:
        return obj.enrollment.sequence_id if obj.enrollment is not None else None


class DraftOut(Schema):
    subject: str
    body: str
    error: str | None


class TaskDetailOut(TaskOut):
    draft: DraftOut | None = None


class TaskFilters(Schema):
    kind: KindName | None = None
    status: StatusName | None = None
    due: DueName | None = Field(None, description="in the user's time zone; overdue means open and past due")
    sequence_id: int | None = None
    contact_id: int | None = None


class CompleteIn(Schema):
    outcome: OutcomeName | None = Field(None, description="required for a call reminder")
    notes: str = ""


class SnoozeIn(Schema):
    until: dt.datetime


class ReassignIn(Schema):
    owner_id: int


class DraftIn(Schema):
    subject: str
    body: str


class SendIn(Schema):
    subject: str | None = None
    body: str | None = None


class BulkIn(Schema):
    ids: list[int] = Field(..., min_length=1, max_length=500)
    outcome: OutcomeName | None = Field(None, description="applied to the call reminders (bulk complete)")


class RefusedOut(Schema):
    id: int
    reason: str


class BulkOut(Schema):
    done: list[int]
    refused: list[RefusedOut]


class CountsOut(Schema):
    kind: dict[str, int]
    status: dict[str, int]
    due: dict[str, int]


def due_windows(time_zone: str, now: dt.datetime) -> dict[str, tuple[dt.datetime, dt.datetime]]:
    """The user's today and this week (Monday to Sunday) as UTC [start, end) instants."""
    try:
        zone = zoneinfo.ZoneInfo(time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    today = now.astimezone(zone).date()
    monday = today - dt.timedelta(days=today.weekday())

    def start(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=zone).astimezone(dt.UTC)

    return {
        "today": (start(today), start(today + dt.timedelta(days=1))),
        "this_week": (start(monday), start(monday + dt.timedelta(days=7))),
    }


def _due_q(due: str, windows: dict[str, tuple[dt.datetime, dt.datetime]], now: dt.datetime) -> Q:
    if due == "overdue":
        return Q(status=TaskStatus.OPEN, due_at__lt=now)
    lo, hi = windows[due]
    return Q(due_at__gte=lo, due_at__lt=hi)


def _filters(
    request: HttpRequest, filters: TaskFilters, now: dt.datetime, *, without: str = ""
) -> tuple[QuerySet[Task], dict[str, tuple[dt.datetime, dt.datetime]]]:
    windows = due_windows(getattr(request.user, "time_zone", "UTC"), now)
    qs = access.scope(Task.objects.all(), request.user)
    if filters.kind and without != "kind":
        qs = qs.filter(kind=filters.kind)
    if filters.status and without != "status":
        qs = qs.filter(status=filters.status)
    if filters.due and without != "due":
        qs = qs.filter(_due_q(filters.due, windows, now))
    if filters.sequence_id is not None:
        qs = qs.filter(enrollment__sequence_id=filters.sequence_id)
    if filters.contact_id is not None:
        qs = qs.filter(contact_id=filters.contact_id)
    return qs, windows


def _shown(qs: QuerySet[Task]) -> QuerySet[Task]:
    # Everything the schema and the Liquid context read, loaded with the page.
    return qs.select_related(
        "contact__account", "enrollment__sequence", "message", "step__sequence", "owner"
    ).prefetch_related("contact__tags")


def _task(request: HttpRequest, task_id: int) -> Task:
    return access.access_object(_shown(Task.objects.all()), request.user, pk=task_id)


def _detail(request: HttpRequest, task_id: int) -> Task:
    task = _task(request, task_id)
    if task.kind == TaskKind.EMAIL_REMINDER:
        draft = actions.reminder_draft(task)
        task.draft = {"subject": draft.subject, "body": draft.body, "error": draft.error}  # type: ignore[attr-defined]
    return task


@router.get("", response=list[TaskOut])
@paginated
def list_tasks(request: HttpRequest, filters: Query[TaskFilters]) -> QuerySet[Task]:
    """The user's tasks and reminders, soonest due first."""
    qs, _ = _filters(request, filters, clock.now())
    return _shown(qs).order_by("due_at", "pk")


@router.get("/counts", response=CountsOut)
def task_counts(request: HttpRequest, filters: Query[TaskFilters]) -> dict[str, dict[str, int]]:
    """How many tasks each filter value would show, given the other filters: one query per dimension."""
    now = clock.now()
    result: dict[str, dict[str, int]] = {}
    for dimension, choices in (("kind", TaskKind.values), ("status", TaskStatus.values)):
        qs, _ = _filters(request, filters, now, without=dimension)
        row = qs.aggregate(**{value: Count("pk", filter=Q(**{dimension: value})) for value in choices})
        result[dimension] = {key: int(value or 0) for key, value in row.items()}
    qs, windows = _filters(request, filters, now, without="due")
    row = qs.aggregate(
        **{due: Count("pk", filter=_due_q(due, windows, now)) for due in ("overdue", "today", "this_week")}
    )
    result["due"] = {key: int(value or 0) for key, value in row.items()}
    return result


@router.get("/{int:task_id}", response=TaskDetailOut)
def get_task(request: HttpRequest, task_id: int) -> Task:
    """One task; an email reminder comes with its draft (rendered for the contact until edited)."""
    return _detail(request, task_id)


@router.post("/{int:task_id}/complete", response=TaskOut)
def complete_task(request: HttpRequest, task_id: int, payload: CompleteIn) -> Task:
    """Done; a call reminder needs the call's outcome and records the call."""
    actions.do_complete_task(
        _task(request, task_id), request.user, outcome=payload.outcome or "", notes=payload.notes
    )
    return _detail(request, task_id)


@router.post("/{int:task_id}/snooze", response=TaskOut)
def snooze_task(request: HttpRequest, task_id: int, payload: SnoozeIn) -> Task:
    """Due again at *until*."""
    actions.do_snooze_task(_task(request, task_id), payload.until)
    return _detail(request, task_id)


@router.post("/{int:task_id}/reassign", response=TaskOut)
def reassign_task(request: HttpRequest, task_id: int, payload: ReassignIn) -> Task:
    """Give the task to another active user (it then leaves this user's dashboard)."""
    return actions.do_reassign_task(_task(request, task_id), payload.owner_id)


@router.post("/{int:task_id}/skip", response=TaskOut)
def skip_task(request: HttpRequest, task_id: int) -> Task:
    """Skip; an email reminder's draft is cancelled."""
    actions.do_skip_task(_task(request, task_id))
    return _detail(request, task_id)


@router.put("/{int:task_id}/draft", response=TaskDetailOut)
def save_draft(request: HttpRequest, task_id: int, payload: DraftIn) -> Task:
    """Save the rep's edit of an email reminder without sending it."""
    actions.do_save_reminder_draft(_task(request, task_id), subject=payload.subject, body=payload.body)
    return _detail(request, task_id)


@router.post("/{int:task_id}/send", response=TaskDetailOut)
def send_reminder(request: HttpRequest, task_id: int, payload: SendIn) -> Task:
    """Queue an email reminder's email as written (omitted parts keep the draft); the task is done."""
    actions.do_send_email_reminder(_task(request, task_id), subject=payload.subject, body=payload.body)
    return _detail(request, task_id)


def _bulk_out(result: actions.BulkResult) -> dict[str, Any]:
    return {"done": result.done, "refused": [{"id": k, "reason": v} for k, v in result.refused.items()]}


def _bulk_tasks(request: HttpRequest, ids: list[int]) -> list[Task]:
    # Ids the user does not own are simply not found: the same answer as one task's 404.
    found = list(access.scope(Task.objects.select_related("contact"), request.user).filter(pk__in=ids))
    return found


@router.post("/bulk/complete", response=BulkOut)
def bulk_complete(request: HttpRequest, payload: BulkIn) -> dict[str, Any]:
    """Complete many tasks; each refusal is listed with its reason, the others are done."""
    tasks = _bulk_tasks(request, payload.ids)
    result = actions.do_bulk_complete(tasks, request.user, outcome=payload.outcome or "")
    _not_found(result, payload.ids, tasks)
    return _bulk_out(result)


@router.post("/bulk/skip", response=BulkOut)
def bulk_skip(request: HttpRequest, payload: BulkIn) -> dict[str, Any]:
    """Skip many tasks; each refusal is listed with its reason."""
    tasks = _bulk_tasks(request, payload.ids)
    result = actions.do_bulk_skip(tasks)
    _not_found(result, payload.ids, tasks)
    return _bulk_out(result)


def _not_found(result: actions.BulkResult, ids: list[int], tasks: list[Task]) -> None:
    found = {task.pk for task in tasks}
    for task_id in ids:
        if task_id not in found:
            result.refused[task_id] = "not found"
