"""Pages of the mail app for reps: email templates (with a live preview) and mailboxes
(with sync status and a connection test). docs/WEB_APP_MAIL.md describes them.

Thin: every object is found in the user's scope (another user's answers 404), every
change goes through ``sequent.mail.actions``, and a refused change comes back as the
action's reasons next to the fields.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BooleanField, ExpressionWrapper, Prefetch, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from sequent.crm.models import Contact
from sequent.mail import actions, delivery, templating
from sequent.mail.forms import EmailTemplateForm, MailboxForm, apply_errors, contact_choices
from sequent.mail.models import EmailTemplate, Mailbox, MailboxFolderState
from sequent.users import access

# --- templates ----------------------------------------------------------------------------


def _preview_context(request: HttpRequest, subject: str, body: str, contact_id: Any) -> dict[str, Any]:
    """What the preview panel shows: the problems an editor can see without a contact
    (syntax, unknown names), then the email rendered for the chosen contact, or the
    error a send would stop with."""
    problems = {
        part: templating.validate_template(source) if source.strip() else []
        for part, source in (("subject", subject), ("body", body))
    }
    contact = None
    if str(contact_id or "").isdigit():
        # Contacts are shared by the workspace (as in the CRM pages and the API).
        contact = Contact.objects.select_related("account").filter(pk=int(contact_id)).first()
    preview = None
    if contact is not None and subject.strip() and body.strip():
        preview = delivery.preview_email(subject, body, contact, request.user)
    return {"problems": problems, "preview": preview, "preview_contact": contact}


def _template_page(
    request: HttpRequest, form: EmailTemplateForm, template: EmailTemplate | None, status: int = 200
) -> HttpResponse:
    contact_id = request.POST.get("contact") or request.GET.get("contact") or ""
    choices = contact_choices(request.user)
    if not contact_id and choices:
        contact_id = str(choices[0][0])
    subject = form.data.get("subject") if form.is_bound else form.initial.get("subject", "")
    body = form.data.get("body") if form.is_bound else form.initial.get("body", "")
    context = {
        "form": form,
        "template": template,
        "contacts": choices,
        "contact_id": str(contact_id),
        **_preview_context(request, subject or "", body or "", contact_id),
    }
    return render(request, "mail/template_form.html", context, status=status)


@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    """The user's email templates, by name (templates are personal: no sharing model yet)."""
    templates = access.scope(EmailTemplate.objects.order_by("name", "pk"), request.user)
    return render(request, "mail/template_list.html", {"templates": templates})


@login_required
def template_new(request: HttpRequest) -> HttpResponse:
    """Write a new template; "Preview" renders it without saving."""
    if request.method != "POST":
        return _template_page(request, EmailTemplateForm(), None)
    form = EmailTemplateForm(request.POST)
    if "preview" in request.POST or not form.is_valid():
        return _template_page(request, form, None, 200 if "preview" in request.POST else 422)
    try:
        template = actions.do_create_template(request.user, **form.cleaned_data)
    except ValidationError as exc:
        apply_errors(form, exc)
        return _template_page(request, form, None, 422)
    messages.success(request, f"Template “{template.name}” saved.")
    return redirect("mail:template", template_id=template.pk)


@login_required
def template_detail(request: HttpRequest, template_id: int) -> HttpResponse:
    """Edit one of the user's templates (404 for anyone else's)."""
    template = access.access_object(EmailTemplate.objects.all(), request.user, pk=template_id)
    if request.method != "POST":
        initial = {"name": template.name, "subject": template.subject, "body": template.body}
        return _template_page(request, EmailTemplateForm(initial=initial), template)
    form = EmailTemplateForm(request.POST)
    if "preview" in request.POST or not form.is_valid():
        return _template_page(request, form, template, 200 if "preview" in request.POST else 422)
    try:
        actions.do_update_template(template, **form.cleaned_data)
    except ValidationError as exc:
        apply_errors(form, exc)
        return _template_page(request, form, template, 422)
    messages.success(request, f"Template “{template.name}” saved.")
    return redirect("mail:template", template_id=template.pk)


@login_required
@require_POST
def template_delete(request: HttpRequest, template_id: int) -> HttpResponse:
    template = access.access_object(EmailTemplate.objects.all(), request.user, pk=template_id)
    actions.do_delete_template(template)
    messages.success(request, f"Template “{template.name}” deleted.")
    return redirect("mail:templates")


@login_required
@require_POST
def template_preview(request: HttpRequest) -> HttpResponse:
    """The live preview panel (htmx): the posted subject and body for the chosen contact."""
    context = _preview_context(
        request,
        request.POST.get("subject", ""),
        request.POST.get("body", ""),
        request.POST.get("contact"),
    )
    return render(request, "mail/_template_preview.html", context)


# --- mailboxes ----------------------------------------------------------------------------


def _mailboxes() -> QuerySet[Mailbox]:
    # Passwords are neither loaded nor decrypted for a page: only whether one is set.
    return (
        Mailbox.objects.defer("smtp_password", "imap_password")
        .annotate(
            has_smtp_password=ExpressionWrapper(Q(smtp_password__isnull=False), output_field=BooleanField()),
            has_imap_password=ExpressionWrapper(Q(imap_password__isnull=False), output_field=BooleanField()),
        )
        .prefetch_related(Prefetch("folder_states", MailboxFolderState.objects.order_by("folder")))
    )


def _last_sync(mailbox: Mailbox) -> Any:
    times = [state.synced_at for state in mailbox.folder_states.all() if state.synced_at]
    return max(times) if times else None


@login_required
def mailbox_list(request: HttpRequest) -> HttpResponse:
    """The user's mailboxes with their sending status and inbound sync status."""
    mailboxes = list(access.scope(_mailboxes().order_by("pk"), request.user))
    for mailbox in mailboxes:
        mailbox.last_sync = _last_sync(mailbox)  # type: ignore[attr-defined]
    return render(request, "mail/mailbox_list.html", {"mailboxes": mailboxes})


def _mailbox_page(
    request: HttpRequest, form: MailboxForm, mailbox: Mailbox | None, status: int = 200
) -> HttpResponse:
    if mailbox is not None:
        mailbox.last_sync = _last_sync(mailbox)  # type: ignore[attr-defined]
    return render(request, "mail/mailbox_form.html", {"form": form, "mailbox": mailbox}, status=status)


@login_required
def mailbox_new(request: HttpRequest) -> HttpResponse:
    """Connect a mailbox."""
    if request.method != "POST":
        return _mailbox_page(request, MailboxForm(), None)
    form = MailboxForm(request.POST)
    if not form.is_valid():
        return _mailbox_page(request, form, None, 422)
    try:
        mailbox = actions.do_create_mailbox(request.user, **form.changes())
    except ValidationError as exc:
        apply_errors(form, exc)
        return _mailbox_page(request, form, None, 422)
    messages.success(request, f"Mailbox {mailbox.email_address} saved. Test its connection below.")
    return redirect("mail:mailbox", mailbox_id=mailbox.pk)


@login_required
def mailbox_detail(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Edit a mailbox; passwords are never shown, only whether one is set."""
    mailbox = access.access_object(_mailboxes(), request.user, pk=mailbox_id)
    if request.method != "POST":
        return _mailbox_page(
            request, MailboxForm(initial=MailboxForm.initial_for(mailbox), mailbox=mailbox), mailbox
        )
    form = MailboxForm(request.POST, mailbox=mailbox)
    if not form.is_valid():
        return _mailbox_page(request, form, mailbox, 422)
    try:
        actions.do_update_mailbox(mailbox, request.user, **form.changes())
    except ValidationError as exc:
        apply_errors(form, exc)
        return _mailbox_page(request, form, mailbox, 422)
    messages.success(request, f"Mailbox {form.cleaned_data['email_address']} saved.")
    return redirect("mail:mailbox", mailbox_id=mailbox.pk)


@login_required
@require_POST
def mailbox_test(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Log in over SMTP (and IMAP when set) and show the exact failures, or success."""
    access.access_object(Mailbox.objects.only("pk"), request.user, pk=mailbox_id)
    mailbox = Mailbox.objects.get(pk=mailbox_id)
    problems = actions.check_mailbox_connection(mailbox)
    mailbox.refresh_from_db(fields=["status", "last_checked_at"])
    context = {"problems": problems, "mailbox": mailbox}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "mail/_mailbox_test.html", context)
    if problems:
        for problem in problems:
            messages.error(request, f"Connection test failed: {problem}")
    else:
        messages.success(request, "Connection test passed: every login worked.")
    return redirect("mail:mailbox", mailbox_id=mailbox.pk)


@login_required
@require_POST
def mailbox_default(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Make a mailbox the workspace default (Manage workspace settings permission)."""
    mailbox = access.access_object(_mailboxes(), request.user, pk=mailbox_id)
    try:
        actions.do_update_mailbox(mailbox, request.user, is_workspace_default=True)
    except PermissionDenied:
        messages.error(
            request, "Only a user with the Manage workspace settings permission can set the default."
        )
    else:
        messages.success(request, f"{mailbox.email_address} is now the workspace default mailbox.")
    return redirect("mail:mailboxes")
