"""The activities dashboard: the user's tasks, call reminders and email reminders due
today and overdue, in their time zone, with filters, counts and the actions on them.
docs/WEB_APP_MAIL.md, "Activities dashboard".

Thin: tasks are found in the user's scope (another user's answers 404), every change
goes through ``sequent.tasks.actions``; a refusal comes back as a flash message naming
the reason. Forms post plainly (no script needed) and return to the page they came from.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from sequent.lib import clock
from sequent.mail.forms import apply_errors, contact_choices
from sequent.sequences.models import Sequence
from sequent.tasks import actions
from sequent.tasks.api import due_windows
from sequent.tasks.models import CallOutcome, Task, TaskKind, TaskStatus
from sequent.tasks.rendering import render_task_text
from sequent.users import access

PAGE_SIZE = 50
USERS_SHOWN = 200
DUE_CHOICES = {
    "": "Due today or overdue",
    "overdue": "Overdue",
    "today": "Today",
    "this_week": "This week",
    "all": "Any time",
}
SNOOZE_CHOICES = {"1h": "1 hour", "tomorrow": "Tomorrow 9:00", "next_week": "Next Monday 9:00"}


def _zone(user: Any) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(getattr(user, "time_zone", "") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _due_q(due: str, windows: dict[str, tuple[dt.datetime, dt.datetime]], now: dt.datetime) -> Q:
    # The same windows as the API (tasks/api.py): overdue = open and past due; the
    # default shows what is due by the end of the user's today.
    if due == "overdue":
        return Q(status=TaskStatus.OPEN, due_at__lt=now)
    if due in ("today", "this_week"):
        lo, hi = windows[due]
        return Q(due_at__gte=lo, due_at__lt=hi)
    if due == "":
        return Q(due_at__lt=windows["today"][1])
    return Q()


def _filtered(
    request: HttpRequest, params: dict[str, str], now: dt.datetime, *, without: str = ""
) -> QuerySet[Task]:
    windows = due_windows(getattr(request.user, "time_zone", "UTC"), now)
    qs = access.scope(Task.objects.all(), request.user)
    if params["kind"] and without != "kind":
        qs = qs.filter(kind=params["kind"])
    if params["status"]:
        qs = qs.filter(status=params["status"])
    if without != "due":
        qs = qs.filter(_due_q(params["due"], windows, now))
    if params["sequence"]:
        qs = qs.filter(enrollment__sequence_id=int(params["sequence"]))
    if params["contact"]:
        qs = qs.filter(contact_id=int(params["contact"]))
    return qs


def _params(request: HttpRequest) -> dict[str, str]:
    """The filters from the query string; an unknown value is ignored, not an error."""
    get = request.GET
    kind = get.get("kind", "")
    status = get.get("status", TaskStatus.OPEN)
    due = get.get("due", "")
    return {
        "kind": kind if kind in TaskKind.values else "",
        "status": status if status in TaskStatus.values else "",
        "due": due if due in DUE_CHOICES else "",
        "sequence": get.get("sequence", "") if get.get("sequence", "").isdigit() else "",
        "contact": get.get("contact", "") if get.get("contact", "").isdigit() else "",
    }


def _shown(qs: QuerySet[Task]) -> QuerySet[Task]:
    # Everything a row and its rendered title read, with the page.
    return qs.select_related(
        "contact__account", "enrollment__sequence", "message", "step__sequence", "owner"
    ).prefetch_related("contact__tags")


def _decorate(tasks: list[Task], now: dt.datetime) -> None:
    for task in tasks:
        task.shown_title = render_task_text(task, task.title)  # type: ignore[attr-defined]
        task.shown_notes = render_task_text(task, task.notes) if task.notes else ""  # type: ignore[attr-defined]
        task.overdue = task.status == TaskStatus.OPEN and task.due_at < now  # type: ignore[attr-defined]
        contact = task.contact
        task.contact_name = f"{contact.first_name} {contact.last_name}".strip() or contact.email  # type: ignore[attr-defined]


def _other_users(user: Any) -> list[Any]:
    return list(
        get_user_model()
        .objects.filter(is_active=True)
        .exclude(pk=user.pk)
        .order_by("email")
        .only("pk", "email", "first_name", "last_name")[:USERS_SHOWN]
    )


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Today's and overdue tasks and reminders (by default), filterable, with counts."""
    now = clock.now()
    params = _params(request)
    tasks = _shown(_filtered(request, params, now)).order_by("due_at", "pk")
    page = Paginator(tasks, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    _decorate(rows, now)
    windows = due_windows(getattr(request.user, "time_zone", "UTC"), now)
    kind_counts = _filtered(request, params, now, without="kind").aggregate(
        **{value: Count("pk", filter=Q(kind=value)) for value in TaskKind.values}
    )
    due_counts = _filtered(request, params, now, without="due").aggregate(
        **{name: Count("pk", filter=_due_q(name, windows, now)) for name in ("overdue", "today", "this_week")}
    )
    sequences = access.scope(Sequence.objects.order_by("name", "pk"), request.user).values_list("pk", "name")
    context = {
        "rows": rows,
        "page": page,
        "params": params,
        "kinds": TaskKind.choices,
        "statuses": TaskStatus.choices,
        "due_choices": DUE_CHOICES,
        "snooze_choices": SNOOZE_CHOICES,
        "outcomes": CallOutcome.choices,
        "kind_counts": [(value, label, kind_counts[value]) for value, label in TaskKind.choices],
        "due_counts": due_counts,
        "sequences": list(sequences),
        "users": _other_users(request.user),
        "tz": _zone(request.user),
        "here": request.get_full_path(),
    }
    return render(request, "tasks/dashboard.html", context)


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return redirect(target)
    return redirect("tasks:dashboard")


def _task(request: HttpRequest, task_id: int) -> Task:
    return access.access_object(_shown(Task.objects.all()), request.user, pk=task_id)


def _refused(request: HttpRequest, exc: ValidationError) -> None:
    messages.error(request, "Not done: " + "; ".join(exc.messages))


@login_required
@require_POST
def complete(request: HttpRequest, task_id: int) -> HttpResponse:
    """Complete a task; a call reminder needs the call's outcome."""
    task = _task(request, task_id)
    try:
        actions.do_complete_task(
            task, request.user, outcome=request.POST.get("outcome", ""), notes=request.POST.get("notes", "")
        )
    except ValidationError as exc:
        _refused(request, exc)
    else:
        outcome = f" ({task.get_outcome_display()})" if task.outcome else ""
        messages.success(request, f"Completed: {render_task_text(task, task.title)}{outcome}.")
    return _back(request)


def _snooze_until(choice: str, custom: str, zone: zoneinfo.ZoneInfo, now: dt.datetime) -> dt.datetime:
    local = now.astimezone(zone)
    nine = dt.time(9, 0)
    if choice == "1h":
        return now + dt.timedelta(hours=1)
    if choice == "tomorrow":
        return dt.datetime.combine(local.date() + dt.timedelta(days=1), nine, tzinfo=zone)
    if choice == "next_week":
        monday = local.date() + dt.timedelta(days=7 - local.weekday())
        return dt.datetime.combine(monday, nine, tzinfo=zone)
    try:
        parsed = dt.datetime.fromisoformat(custom)
    except ValueError:
        raise ValidationError({"until": "pick a snooze time"}) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


@login_required
@require_POST
def snooze(request: HttpRequest, task_id: int) -> HttpResponse:
    """Move a task's due time later (1 hour, tomorrow 9:00, next Monday 9:00 or a time)."""
    task = _task(request, task_id)
    zone = _zone(request.user)
    try:
        until = _snooze_until(
            request.POST.get("until", ""), request.POST.get("until_at", ""), zone, clock.now()
        )
        actions.do_snooze_task(task, until)
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Snoozed until {until.astimezone(zone):%a %d %b %H:%M}.")
    return _back(request)


@login_required
@require_POST
def skip(request: HttpRequest, task_id: int) -> HttpResponse:
    task = _task(request, task_id)
    try:
        actions.do_skip_task(task)
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Skipped: {render_task_text(task, task.title)}.")
    return _back(request)


@login_required
@require_POST
def reassign(request: HttpRequest, task_id: int) -> HttpResponse:
    task = _task(request, task_id)
    owner_id = request.POST.get("owner_id", "")
    try:
        if not owner_id.isdigit():
            raise ValidationError({"owner_id": "pick a user"})
        actions.do_reassign_task(task, int(owner_id))
    except ValidationError as exc:
        _refused(request, exc)
    else:
        messages.success(request, f"Given to {task.owner.email}.")
    return _back(request)


@login_required
@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    """Complete or skip the ticked tasks; each refusal is listed with its reason."""
    ids = [int(value) for value in request.POST.getlist("ids") if value.isdigit()][:500]
    if not ids:
        messages.error(request, "Tick at least one task first.")
        return _back(request)
    tasks = list(access.scope(Task.objects.select_related("contact"), request.user).filter(pk__in=ids))
    if request.POST.get("action") == "complete":
        result = actions.do_bulk_complete(tasks, request.user, outcome=request.POST.get("outcome", ""))
        verb = "Completed"
    else:
        result = actions.do_bulk_skip(tasks)
        verb = "Skipped"
    missing = set(ids) - {task.pk for task in tasks}
    for task_id in missing:
        result.refused[task_id] = "not found"
    if result.done:
        messages.success(request, f"{verb} {len(result.done)} task{'s' if len(result.done) != 1 else ''}.")
    titles = {task.pk: task.title for task in tasks}
    for task_id, reason in sorted(result.refused.items()):
        messages.error(request, f"Not done: {titles.get(task_id, f'task {task_id}')}: {reason}")
    return _back(request)


class DraftForm(forms.Form):
    subject = forms.CharField(max_length=998, strip=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), strip=False)


@login_required
def task_detail(request: HttpRequest, task_id: int) -> HttpResponse:
    """One task; an email reminder opens its editor, prefilled with the rendered draft."""
    task = _task(request, task_id)
    now = clock.now()
    _decorate([task], now)
    draft = None
    form = None
    if task.kind == TaskKind.EMAIL_REMINDER:
        draft = actions.reminder_draft(task)
        form = DraftForm(initial={"subject": draft.subject, "body": draft.body})
    context = {
        "task": task,
        "draft": draft,
        "form": form,
        "outcomes": CallOutcome.choices,
        "snooze_choices": SNOOZE_CHOICES,
        "users": _other_users(request.user),
        "tz": _zone(request.user),
        "here": request.get_full_path(),
    }
    return render(request, "tasks/task_detail.html", context)


@login_required
@require_POST
def send_reminder(request: HttpRequest, task_id: int) -> HttpResponse:
    """Send (``send``) or save (``save``) an email reminder as the rep wrote it."""
    task = _task(request, task_id)
    form = DraftForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not sent: the email needs a subject and a body.")
        return redirect("tasks:task", task_id=task.pk)
    subject, body = form.cleaned_data["subject"], form.cleaned_data["body"]
    try:
        if "save" in request.POST:
            actions.do_save_reminder_draft(task, subject=subject, body=body)
        else:
            actions.do_send_email_reminder(task, subject=subject, body=body)
    except ValidationError as exc:
        messages.error(request, "Not sent: " + "; ".join(exc.messages))
        return redirect("tasks:task", task_id=task.pk)
    if "save" in request.POST:
        messages.success(request, "Draft saved.")
        return redirect("tasks:task", task_id=task.pk)
    messages.success(request, f"Email to {task.contact.email} queued: it leaves with the next delivery run.")
    return redirect("tasks:dashboard")


class NewTaskForm(forms.Form):
    kind = forms.ChoiceField(choices=[(kind.value, kind.label) for kind in actions.MANUAL_KINDS])
    contact = forms.TypedChoiceField(coerce=int, choices=[])
    title = forms.CharField(max_length=255)
    due_at = forms.DateTimeField(
        label="Due", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["contact"].choices = [("", "Pick a contact"), *contact_choices(user)]  # type: ignore[attr-defined]


@login_required
def new_task(request: HttpRequest) -> HttpResponse:
    """Create a follow-up task or call reminder by hand; the due time is in the user's zone."""
    zone = _zone(request.user)
    if request.method != "POST":
        local = clock.now().astimezone(zone) + dt.timedelta(hours=1)
        initial = {
            "due_at": local.replace(minute=0, second=0, microsecond=0, tzinfo=None),
            "contact": request.GET.get("contact", ""),
            "kind": request.GET.get("kind", TaskKind.FOLLOW_UP),
        }
        form = NewTaskForm(initial=initial, user=request.user)
        return render(request, "tasks/new_task.html", {"form": form, "tz": zone})
    form = NewTaskForm(request.POST, user=request.user)
    if form.is_valid():
        # The browser sends a wall-clock time: it is the user's, not the server's.
        due: dt.datetime = form.cleaned_data["due_at"].replace(tzinfo=None).replace(tzinfo=zone)
        try:
            task = actions.do_create_task(
                request.user,
                form.cleaned_data["contact"],
                form.cleaned_data["kind"],
                form.cleaned_data["title"],
                due,
                notes=form.cleaned_data["notes"],
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"Task “{task.title}” created.")
            return redirect(f"{reverse('tasks:dashboard')}?due=all")
    return render(request, "tasks/new_task.html", {"form": form, "tz": zone}, status=422)
