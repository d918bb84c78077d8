"""The sequence builder: create and edit a sequence, its steps and its status.

Thin: each view checks the permission, finds the sequence in the user's scope, parses
the form and calls an action of ``sequent.sequences.actions``; the action's
``{field: reason}`` errors are shown next to the fields. Creating needs "Create Sales
Sequences", changing needs "Edit Sales Sequences", archiving "Delete Sales Sequences";
a user without the permission gets 404 like every hidden feature (docs/WEB_APP_SEQUENCES.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRefresh

from sequent.crm.conditions import ConditionError
from sequent.crm.models import RECORD_CONTACT, RECORD_TYPES, Contact
from sequent.mail import templating
from sequent.mail.delivery import preview_email, render_context
from sequent.mail.models import EmailTemplate
from sequent.sequences import actions, forms
from sequent.sequences.audience import audience, enrollable
from sequent.sequences.models import (
    EMAIL_STEP_KINDS,
    Sequence,
    SequenceStatus,
    Step,
    StepKind,
    ThreadMode,
)
from sequent.sms.segments import count_segments
from sequent.users import access

PREVIEW_CONTACTS = 50
STATUS_ACTIONS = {
    # verb: (action, allowed from, permission, button label, what it does)
    "activate": (
        actions.do_activate,
        (SequenceStatus.DRAFT,),
        access.EDIT_SEQUENCES,
        "Activate sequence",
        "Contacts of the audience enroll at the next run, and steps start going out on schedule.",
    ),
    "pause": (
        actions.do_pause,
        (SequenceStatus.ACTIVE,),
        access.EDIT_SEQUENCES,
        "Pause sequence",
        "No run happens until you resume it; every contact keeps their place.",
    ),
    "resume": (
        actions.do_resume,
        (SequenceStatus.PAUSED,),
        access.EDIT_SEQUENCES,
        "Resume sequence",
        "Runs start again at the next send time; each contact goes on from where they were.",
    ),
    "archive": (
        actions.do_archive,
        (SequenceStatus.DRAFT, SequenceStatus.ACTIVE, SequenceStatus.PAUSED),
        access.DELETE_SEQUENCES,
        "Archive sequence",
        "Every contact still in the sequence exits and their pending emails are cancelled. "
        "This cannot be undone.",
    ),
}


def _htmx(request: HttpRequest) -> bool:
    """Whether htmx sent the request (django-htmx's middleware sets ``request.htmx``)."""
    return bool(getattr(request, "htmx", False))


def _own_sequence(request: HttpRequest, sequence_id: int, codename: str = access.EDIT_SEQUENCES) -> Sequence:
    access.require_perm(request.user, access.VIEW_SEQUENCES)
    sequence: Sequence = access.access_object(
        Sequence.objects.select_related("owner", "mailbox"), request.user, pk=sequence_id
    )
    access.require_perm(request.user, codename)
    return sequence


def _own_step(request: HttpRequest, sequence_id: int, step_id: int) -> Step:
    sequence = _own_sequence(request, sequence_id)
    try:
        step = Step.objects.filter(sequence=sequence).live().get(pk=step_id)
    except Step.DoesNotExist:
        raise Http404("not found") from None
    step.sequence = sequence
    return step


def _condition_sets(
    request: HttpRequest, record_type: str, sequence: Sequence | None
) -> dict[str, forms.ConditionSet]:
    """The audience and exit condition builders, from the POST or the stored sequence."""
    sets = {}
    for key, prefix in (("audience_conditions", "audience"), ("exit_conditions", "exit")):
        if request.method == "POST":
            rows = forms.rows_from_post(request.POST, prefix)
        else:
            rows = forms.rows_from_clauses(getattr(sequence, key) if sequence else [])
        sets[key] = forms.build_condition_set(prefix, record_type, rows)
    return sets


def _posted_record_type(request: HttpRequest, sequence: Sequence | None) -> str:
    if sequence is not None and sequence.status != SequenceStatus.DRAFT:
        return sequence.record_type
    posted = request.POST.get("record_type", "")
    if posted in dict(RECORD_TYPES):
        return posted
    return sequence.record_type if sequence else RECORD_CONTACT


def _settings_values(
    form: forms.SequenceForm, sets: dict[str, forms.ConditionSet], record_type: str
) -> dict[str, Any]:
    values = form.values()
    for key, conditions in sets.items():
        filled = [row for row in conditions.rows if row.field]
        values[key] = forms.clauses_from_rows(filled, record_type)
    return values


def _would_enroll(sequence: Sequence) -> tuple[int | None, str]:
    """How many contacts a run would enroll now (the engine's own query), or the reason it cannot say."""
    try:
        return enrollable(sequence).count(), ""
    except ConditionError as exc:
        return None, f"the audience cannot be computed: {exc}"


def _builder(
    request: HttpRequest,
    form: forms.SequenceForm,
    sets: dict[str, forms.ConditionSet],
    sequence: Sequence | None,
    count: tuple[int | None, str] = (None, ""),
) -> HttpResponse:
    steps = list(Step.objects.filter(sequence=sequence).live().select_related("template")) if sequence else []
    return render(
        request,
        "sequences/builder.html",
        {
            "sequence": sequence,
            "form": form,
            "audience": sets["audience_conditions"],
            "exits": sets["exit_conditions"],
            "would_enroll": count[0],
            "count_error": count[1],
            "steps": steps,
            "step_kinds": StepKind.choices,
            "status_actions": status_buttons(request, sequence) if sequence else [],
        },
    )


def status_buttons(request: HttpRequest, sequence: Sequence) -> list[tuple[str, str]]:
    """(verb, label) of each status change the sequence and user allow now."""
    return [
        (verb, verb.capitalize())
        for verb, (_, allowed, codename, _, _) in STATUS_ACTIONS.items()
        if sequence.status in allowed and access.has_perm(request.user, codename)
    ]


@login_required
@require_http_methods(["GET", "POST"])
def sequence_new(request: HttpRequest) -> HttpResponse:
    """Create a draft sequence; on success the builder goes on to its steps."""
    access.require_perm(request.user, access.VIEW_SEQUENCES)
    access.require_perm(request.user, access.CREATE_SEQUENCES)
    record_type = _posted_record_type(request, None)
    sets = _condition_sets(request, record_type, None)
    if request.method != "POST":
        return _builder(request, forms.SequenceForm(request.user), sets, None)
    form = forms.SequenceForm(request.user, request.POST)
    if form.is_valid():
        values = _settings_values(form, sets, record_type)
        try:
            sequence = actions.do_create_sequence(request.user, values.pop("name"), **values)
        except ValidationError as exc:
            forms.attach_errors(form, exc, sets)
        else:
            messages.success(request, f"Sequence “{sequence.name}” created. Now add its steps.")
            return redirect("sequences:edit", sequence.pk)
    return _builder(request, form, sets, None)


@login_required
@require_http_methods(["GET", "POST"])
def sequence_edit(request: HttpRequest, sequence_id: int) -> HttpResponse:
    """The builder of an existing sequence: its settings, steps and status buttons."""
    sequence = _own_sequence(request, sequence_id)
    locked = sequence.status != SequenceStatus.DRAFT
    record_type = _posted_record_type(request, sequence)
    sets = _condition_sets(request, record_type, sequence)
    if request.method != "POST":
        form = forms.SequenceForm(request.user, initial=forms.sequence_initial(sequence), locked=locked)
        return _builder(request, form, sets, sequence, _would_enroll(sequence))
    form = forms.SequenceForm(
        request.user, request.POST, initial=forms.sequence_initial(sequence), locked=locked
    )
    if form.is_valid():
        values = _settings_values(form, sets, record_type)
        try:
            actions.do_update_sequence(sequence, **values)
        except ValidationError as exc:
            forms.attach_errors(form, exc, sets)
            sequence.refresh_from_db()
        else:
            messages.success(request, "Sequence saved.")
            return redirect("sequences:edit", sequence.pk)
    return _builder(request, form, sets, sequence, _would_enroll(sequence))


@login_required
@require_POST
def audience_count(request: HttpRequest, sequence_id: int | None = None) -> HttpResponse:
    """“N contacts would enroll now” for the settings as typed, not yet saved: the action
    applies them inside a transaction that is rolled back, so the count is the engine's own."""
    access.require_perm(request.user, access.VIEW_SEQUENCES)
    sequence = _own_sequence(request, sequence_id) if sequence_id is not None else None
    if sequence is None:
        access.require_perm(request.user, access.CREATE_SEQUENCES)
    record_type = _posted_record_type(request, sequence)
    sets = _condition_sets(request, record_type, sequence)
    form = forms.SequenceForm(
        request.user,
        request.POST,
        initial=forms.sequence_initial(sequence) if sequence else None,
        locked=bool(sequence and sequence.status != SequenceStatus.DRAFT),
    )
    count: int | None = None
    error = ""
    if not form.is_valid():
        error = "fix the fields marked below to see who would enroll"
    else:
        values = _settings_values(form, sets, record_type)
        try:
            with transaction.atomic():
                if sequence is None:
                    probe = actions.do_create_sequence(request.user, values.pop("name"), **values)
                else:
                    probe = actions.do_update_sequence(sequence, **values)
                count, error = _would_enroll(probe)
                transaction.set_rollback(True)
        except ValidationError as exc:
            error = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.message_dict.items())
    return render(request, "sequences/_audience_count.html", {"would_enroll": count, "count_error": error})


@login_required
def condition_row(request: HttpRequest) -> HttpResponse:
    """One row of a condition builder, with the operators its field allows (htmx)."""
    access.require_perm(request.user, access.VIEW_SEQUENCES)
    prefix = request.GET.get("prefix", "")
    if prefix not in ("audience", "exit", "step"):
        raise Http404("not found")
    record_type = request.GET.get("record_type", RECORD_CONTACT)
    if record_type not in dict(RECORD_TYPES):
        record_type = RECORD_CONTACT
    if request.GET.get("remove"):
        return HttpResponse("")  # htmx drops the row
    email_activity = prefix == "step"
    rows = [
        forms.ConditionRow(
            request.GET.get(f"{prefix}-field", ""),
            request.GET.get(f"{prefix}-op", ""),
            request.GET.get(f"{prefix}-value", ""),
        )
    ]
    conditions = forms.build_condition_set(
        prefix, record_type, rows, email_activity=email_activity, blank_row=False
    )
    return render(
        request,
        "sequences/_condition_row.html",
        {"conditions": conditions, "row": conditions.rows[0]},
    )


# --- steps -------------------------------------------------------------------------------


def _preview_contacts(sequence: Sequence) -> list[Contact]:
    """Contacts to preview a step for: the audience's first 50, else the workspace's."""
    try:
        found = list(
            audience(sequence)
            .select_related("account")
            .order_by("last_name", "first_name", "pk")[:PREVIEW_CONTACTS]
        )
    except ConditionError:
        found = []
    return found or list(
        Contact.objects.select_related("account").order_by("last_name", "first_name", "pk")[:PREVIEW_CONTACTS]
    )


def _preview(request: HttpRequest, sequence: Sequence, kind: str) -> dict[str, Any]:
    """The step as typed, rendered for the chosen contact with the same context as a send."""
    contact_id = request.POST.get("preview_contact", "")
    contact = (
        Contact.objects.select_related("account").filter(pk=int(contact_id)).first()
        if contact_id.isdigit()
        else None
    )
    if contact is None:
        return {"error": "choose a contact to preview for"}
    result: dict[str, Any] = {"contact": contact}
    if kind in EMAIL_STEP_KINDS:
        subject, body = request.POST.get("subject", ""), request.POST.get("body", "")
        template_id = request.POST.get("template_id", "")
        if template_id.isdigit():
            template = EmailTemplate.objects.filter(owner=sequence.owner, pk=int(template_id)).first()
            if template is not None:
                subject, body = template.subject, template.body
        if request.POST.get("thread") == ThreadMode.REPLY and not subject.strip():
            subject = "Re: (the previous email's subject)"
        shown = preview_email(subject, body, contact, request.user, sequence)
        result.update(subject=shown.subject, html=shown.html, error=shown.error)
        return result
    source = request.POST.get("sms_body" if kind == StepKind.SMS else "task_title", "")
    try:
        result["text"] = templating.render_text(
            source, render_context(contact, request.user, None, sequence, None)
        )
    except templating.TemplateRenderError as exc:
        result["error"] = exc.message
    else:
        if kind == StepKind.SMS:
            result["segments"] = count_segments(result["text"])
    return result


def _step_page(
    request: HttpRequest,
    sequence: Sequence,
    kind: str,
    form: forms.StepForm,
    conditions: forms.ConditionSet,
    step: Step | None,
    preview: dict[str, Any] | None = None,
) -> HttpResponse:
    contacts = _preview_contacts(sequence)
    chosen = request.POST.get("preview_contact", "") or (str(contacts[0].pk) if contacts else "")
    return render(
        request,
        "sequences/step_form.html",
        {
            "sequence": sequence,
            "kind": kind,
            "kind_label": StepKind(kind).label,
            "is_email": kind in EMAIL_STEP_KINDS,
            "form": form,
            "conditions": conditions,
            "step": step,
            "contacts": contacts,
            "chosen_contact": chosen,
            "preview": preview,
        },
    )


def _step_view(request: HttpRequest, sequence: Sequence, kind: str, step: Step | None) -> HttpResponse:
    if request.method == "POST":
        rows = forms.rows_from_post(request.POST, "step")
    else:
        rows = forms.rows_from_clauses(step.conditions if step else [])
    conditions = forms.build_condition_set("step", RECORD_CONTACT, rows, email_activity=True)
    if request.method == "POST" and "preview" in request.POST:
        preview = _preview(request, sequence, kind)
        if _htmx(request):
            return render(request, "sequences/_step_preview.html", {"preview": preview})
        form = forms.StepForm(request.user, kind, request.POST)
        form.is_valid()
        return _step_page(request, sequence, kind, form, conditions, step, preview)
    if request.method != "POST":
        initial = forms.step_initial(step) if step else None
        return _step_page(
            request, sequence, kind, forms.StepForm(request.user, kind, initial=initial), conditions, step
        )
    form = forms.StepForm(request.user, kind, request.POST)
    if form.is_valid():
        values = form.values()
        values["conditions"] = forms.clauses_from_rows(
            [r for r in conditions.rows if r.field], RECORD_CONTACT
        )
        try:
            if step is None:
                actions.do_add_step(sequence, kind, **values)
                messages.success(request, f"{StepKind(kind).label} step added.")
            else:
                actions.do_update_step(step, **values)
                messages.success(request, f"Step {step.position} saved.")
        except ValidationError as exc:
            forms.attach_errors(form, exc, {"conditions": conditions})
        else:
            return redirect(reverse("sequences:edit", args=[sequence.pk]) + "#steps")
    return _step_page(request, sequence, kind, form, conditions, step)


@login_required
@require_http_methods(["GET", "POST"])
def step_new(request: HttpRequest, sequence_id: int, kind: str) -> HttpResponse:
    """Add a step of *kind* at the end of the sequence."""
    sequence = _own_sequence(request, sequence_id)
    if kind not in StepKind.values:
        raise Http404("not found")
    return _step_view(request, sequence, kind, None)


@login_required
@require_http_methods(["GET", "POST"])
def step_edit(request: HttpRequest, sequence_id: int, step_id: int) -> HttpResponse:
    """Change a step; contacts that have not reached it see the change at their next run."""
    step = _own_step(request, sequence_id, step_id)
    return _step_view(request, step.sequence, step.kind, step)


def _back_to_steps(request: HttpRequest, sequence: Sequence) -> HttpResponse:
    url = reverse("sequences:edit", args=[sequence.pk]) + "#steps"
    # htmx asks from the builder page itself: reload it (a redirect to the same page and
    # another #fragment would not reload).
    return HttpResponseClientRefresh() if _htmx(request) else redirect(url)


@login_required
@require_POST
def step_delete(request: HttpRequest, sequence_id: int, step_id: int) -> HttpResponse:
    """Remove a step; what it already did stays in the contacts' timelines."""
    step = _own_step(request, sequence_id, step_id)
    try:
        actions.do_delete_step(step)
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        messages.success(request, f"Step {step.position} deleted.")
    return _back_to_steps(request, step.sequence)


@login_required
@require_POST
def step_move(request: HttpRequest, sequence_id: int, step_id: int) -> HttpResponse:
    """Move a step one place up or down (``direction``)."""
    step = _own_step(request, sequence_id, step_id)
    order = list(Step.objects.filter(sequence=step.sequence).live().values_list("pk", flat=True))
    index = order.index(step.pk)
    other = index - 1 if request.POST.get("direction") == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
        try:
            actions.do_reorder_steps(step.sequence, order)
        except ValidationError as exc:
            messages.error(request, "; ".join(exc.messages))
    return _back_to_steps(request, step.sequence)


# --- status -------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def change_status(request: HttpRequest, sequence_id: int, verb: str) -> HttpResponse:
    """Activate, pause, resume or archive, after a confirmation page."""
    action, _, codename, label, explanation = STATUS_ACTIONS[verb]
    sequence = _own_sequence(request, sequence_id, codename)
    error = ""
    if request.method == "POST":
        try:
            action(sequence)
        except ValidationError as exc:
            error = "; ".join(exc.messages)
        else:
            messages.success(
                request, f"Sequence “{sequence.name}” is now {sequence.get_status_display().lower()}."
            )
            return redirect("sequences:detail", sequence.pk)
    return render(
        request,
        "sequences/confirm_status.html",
        {"sequence": sequence, "verb": verb, "label": label, "explanation": explanation, "error": error},
    )
