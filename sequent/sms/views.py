"""The SMS texts page: a composer with a live preview for a chosen contact and the
GSM-7 / UCS-2 segment count, and the user's SMS steps (the texts their sequences send),
each editable here. docs/WEB_APP_MAIL.md, "SMS texts".

SMS texts live on their sequence steps (there is no separate SMS template record), so
editing one goes through ``sequences.actions.do_update_step`` and needs the Edit Sales
Sequences permission; another user's step answers 404.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from sequent.crm.models import Contact
from sequent.mail import templating
from sequent.mail.delivery import render_context
from sequent.mail.forms import contact_choices
from sequent.sequences.actions import do_update_step
from sequent.sequences.models import Step, StepKind
from sequent.sms.segments import count_segments
from sequent.users import access


def _sms_steps(user: Any) -> Any:
    steps = Step.objects.filter(kind=StepKind.SMS, deleted_at__isnull=True).select_related("sequence")
    return access.scope(steps, user).order_by("sequence__name", "sequence_id", "position")


def preview_context(user: Any, body: str, contact_id: Any) -> dict[str, Any]:
    """The text rendered for the contact (or the reason it cannot be), and its segments."""
    problems = templating.validate_template(body) if body.strip() else []
    contact = None
    if str(contact_id or "").isdigit():
        # Contacts are shared by the workspace, as in the CRM pages.
        contact = Contact.objects.select_related("account").filter(pk=int(contact_id)).first()
    text: str | None = None
    error = None
    if contact is not None and body.strip() and not problems:
        try:
            text = templating.render_text(body, render_context(contact, user, None, None, None))
        except templating.TemplateRenderError as exc:
            error = exc.message
    counted = count_segments(text if text is not None else body)
    return {
        "problems": problems,
        "error": error,
        "text": text,
        "count": counted,
        "preview_contact": contact,
    }


def _page(
    request: HttpRequest, body: str, step: Step | None, errors: list[str], status: int = 200
) -> HttpResponse:
    choices = contact_choices(request.user)
    contact_id = (
        request.POST.get("contact") or request.GET.get("contact") or (choices[0][0] if choices else "")
    )
    steps = list(_sms_steps(request.user)) if access.has_perm(request.user, access.VIEW_SEQUENCES) else []
    for item in steps:
        item.segment_count = count_segments(item.sms_body)  # type: ignore[attr-defined]
    context = {
        "body": body,
        "step": step,
        "steps": steps,
        "errors": errors,
        "contacts": choices,
        "contact_id": str(contact_id),
        "can_edit": access.has_perm(request.user, access.EDIT_SEQUENCES),
        **preview_context(request.user, body, contact_id),
    }
    return render(request, "sms/templates.html", context, status=status)


@login_required
def templates(request: HttpRequest) -> HttpResponse:
    """The composer (``?step=<id>`` loads one of the user's SMS steps) and the SMS steps."""
    step = None
    step_id = request.GET.get("step", "")
    if step_id:
        access.require_perm(request.user, access.VIEW_SEQUENCES)
        step = access.access_object(_sms_steps(request.user), request.user, pk=step_id)
    return _page(request, step.sms_body if step is not None else request.GET.get("body", ""), step, [])


@login_required
@require_POST
def save_step(request: HttpRequest, step_id: int) -> HttpResponse:
    """Save the composer's text to one of the user's SMS steps."""
    access.require_perm(request.user, access.EDIT_SEQUENCES)
    step = access.access_object(_sms_steps(request.user), request.user, pk=step_id)
    body = request.POST.get("body", "")
    try:
        do_update_step(step, sms_body=body)
    except ValidationError as exc:
        return _page(request, body, step, exc.messages, status=422)
    messages.success(request, f"SMS text of step {step.position} of “{step.sequence.name}” saved.")
    return redirect(f"{reverse('sms:templates')}?step={step.pk}")


@login_required
@require_POST
def preview(request: HttpRequest) -> HttpResponse:
    """The live preview panel (htmx): rendered text and segment count."""
    context = preview_context(request.user, request.POST.get("body", ""), request.POST.get("contact"))
    return render(request, "sms/_preview.html", context)
