"""Mailboxes and email templates under /api/v1/ (docs/EMAIL.md, "API").

Thin: find the object in the user's scope (another user's answers 404), call an
action from ``sequent.mail.actions``, render. Passwords are write-only: a response
says only whether one is set.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema, Status

from sequent.api.pagination import paginated
from sequent.crm.models import Contact
from sequent.mail import actions, delivery
from sequent.mail.models import EmailTemplate, Mailbox
from sequent.sequences.models import Sequence
from sequent.users import access

router = Router(tags=["mail"])

SecurityName = Literal["ssl", "starttls", "none"]


# --- schemas --------------------------------------------------------------------------------


class MailboxPatch(Schema):
    email_address: str | None = Field(None, description="the From address")
    display_name: str | None = Field(None, description="the From name")
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: SecurityName | None = None
    smtp_username: str | None = Field(None, description="empty: no login (local servers)")
    smtp_password: str | None = Field(None, description="write-only; empty or null clears it")
    imap_host: str | None = None
    imap_port: int | None = None
    imap_security: SecurityName | None = None
    imap_username: str | None = None
    imap_password: str | None = Field(None, description="write-only; empty: use the SMTP password")
    imap_folders: list[str] | None = None
    imap_sent_folder: str | None = None
    per_minute_limit: int | None = Field(None, description="messages per minute at most")
    status: Literal["active", "disabled"] | None = None
    is_workspace_default: bool | None = Field(None, description="needs Manage workspace settings")


class MailboxIn(MailboxPatch):
    email_address: str = Field(description="the From address")  # type: ignore[assignment]
    smtp_host: str  # type: ignore[assignment]


class MailboxOut(Schema):
    id: int
    email_address: str
    display_name: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_username: str
    has_smtp_password: bool
    imap_host: str
    imap_port: int
    imap_security: str
    imap_username: str
    has_imap_password: bool
    imap_folders: list[str]
    imap_sent_folder: str
    per_minute_limit: int
    status: str = Field(description="active, paused_auth, paused_quota or disabled")
    paused_until: dt.datetime | None
    last_error: str
    last_checked_at: dt.datetime | None
    is_workspace_default: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class ConnectionTestOut(Schema):
    ok: bool
    problems: list[str] = Field(description='e.g. "SMTP: login refused: 535 5.7.8 ..."')
    status: str = Field(description="the mailbox status after the test")


class TemplatePatch(Schema):
    name: str | None = None
    subject: str | None = Field(None, description="Liquid, one line")
    body: str | None = Field(None, description="Liquid HTML")


class TemplateIn(Schema):
    name: str
    subject: str
    body: str


class TemplateOut(Schema):
    id: int
    name: str
    subject: str
    body: str
    created_at: dt.datetime
    updated_at: dt.datetime


class PreviewIn(Schema):
    contact_id: int
    sequence_id: int | None = Field(None, description="one of your sequences, for sequence.* and the sender")


class SourcePreviewIn(PreviewIn):
    subject: str
    body: str


class PreviewOut(Schema):
    subject: str | None
    html: str | None
    error: str | None = Field(description="why a send would stop, naming the part and line")


# --- mailboxes ------------------------------------------------------------------------------


def _mailboxes() -> QuerySet[Mailbox]:
    # Passwords are never loaded for a response (nor decrypted): only whether they are set.
    return Mailbox.objects.defer("smtp_password", "imap_password").annotate(
        has_smtp_password=ExpressionWrapper(Q(smtp_password__isnull=False), output_field=BooleanField()),
        has_imap_password=ExpressionWrapper(Q(imap_password__isnull=False), output_field=BooleanField()),
    )


def _mailbox(request: HttpRequest, mailbox_id: int) -> Mailbox:
    return access.access_object(_mailboxes(), request.user, pk=mailbox_id)


@router.get("/mailboxes", response=list[MailboxOut])
@paginated
def list_mailboxes(request: HttpRequest) -> QuerySet[Mailbox]:
    """Your mailboxes."""
    return access.scope(_mailboxes().order_by("pk"), request.user)


@router.post("/mailboxes", response={201: MailboxOut})
def create_mailbox(request: HttpRequest, payload: MailboxIn) -> Status[Mailbox]:
    """Connect a mailbox. Test it with ``POST /mailboxes/{id}/test``."""
    mailbox = actions.do_create_mailbox(request.user, **payload.model_dump(exclude_unset=True))
    return Status(201, _mailbox(request, mailbox.pk))


@router.get("/mailboxes/{mailbox_id}", response=MailboxOut)
def get_mailbox(request: HttpRequest, mailbox_id: int) -> Mailbox:
    return _mailbox(request, mailbox_id)


@router.patch("/mailboxes/{mailbox_id}", response=MailboxOut)
def update_mailbox(request: HttpRequest, mailbox_id: int, payload: MailboxPatch) -> Mailbox:
    """Change the fields sent. A new password on a mailbox paused for a refused login is
    tested at once; the mailbox resumes when the login works."""
    mailbox = _mailbox(request, mailbox_id)
    actions.do_update_mailbox(mailbox, request.user, **payload.model_dump(exclude_unset=True))
    return _mailbox(request, mailbox_id)


@router.delete("/mailboxes/{mailbox_id}", response={204: None})
def delete_mailbox(request: HttpRequest, mailbox_id: int) -> Status[None]:
    actions.do_delete_mailbox(_mailbox(request, mailbox_id))
    return Status(204, None)


@router.post("/mailboxes/{mailbox_id}/test", response=ConnectionTestOut)
def test_mailbox(request: HttpRequest, mailbox_id: int) -> dict[str, Any]:
    """Log in over SMTP (and IMAP when set) and report the exact failures."""
    _mailbox(request, mailbox_id)
    mailbox = Mailbox.objects.get(pk=mailbox_id)
    problems = actions.check_mailbox_connection(mailbox)
    mailbox.refresh_from_db(fields=["status"])
    return {"ok": not problems, "problems": problems, "status": mailbox.status}


# --- templates ------------------------------------------------------------------------------


def _template(request: HttpRequest, template_id: int) -> EmailTemplate:
    return access.access_object(EmailTemplate.objects.all(), request.user, pk=template_id)


def _preview(request: HttpRequest, subject: str, body: str, payload: PreviewIn) -> delivery.Preview:
    contact = get_object_or_404(
        Contact.objects.select_related("account").prefetch_related("tags"), pk=payload.contact_id
    )
    sequence = None
    if payload.sequence_id is not None:
        sequence = access.access_object(Sequence.objects.all(), request.user, pk=payload.sequence_id)
    return delivery.preview_email(subject, body, contact, request.user, sequence)


@router.get("/templates", response=list[TemplateOut])
@paginated
def list_templates(request: HttpRequest) -> QuerySet[EmailTemplate]:
    """Your email templates, by name."""
    return access.scope(EmailTemplate.objects.order_by("name", "pk"), request.user)


@router.post("/templates", response={201: TemplateOut})
def create_template(request: HttpRequest, payload: TemplateIn) -> Status[EmailTemplate]:
    """Save a template; Liquid errors are refused naming the part and line."""
    return Status(201, actions.do_create_template(request.user, **payload.model_dump()))


@router.post("/templates/preview", response=PreviewOut)
def preview_source(request: HttpRequest, payload: SourcePreviewIn) -> delivery.Preview:
    """Render an unsaved subject and body for a contact, as a send would."""
    return _preview(request, payload.subject, payload.body, payload)


@router.get("/templates/{template_id}", response=TemplateOut)
def get_template(request: HttpRequest, template_id: int) -> EmailTemplate:
    return _template(request, template_id)


@router.patch("/templates/{template_id}", response=TemplateOut)
def update_template(request: HttpRequest, template_id: int, payload: TemplatePatch) -> EmailTemplate:
    return actions.do_update_template(
        _template(request, template_id), **payload.model_dump(exclude_unset=True)
    )


@router.delete("/templates/{template_id}", response={204: None})
def delete_template(request: HttpRequest, template_id: int) -> Status[None]:
    actions.do_delete_template(_template(request, template_id))
    return Status(204, None)


@router.post("/templates/{template_id}/preview", response=PreviewOut)
def preview_template(request: HttpRequest, template_id: int, payload: PreviewIn) -> delivery.Preview:
    """Render a saved template for a contact: the subject and HTML, or the error text."""
    template = _template(request, template_id)
    return _preview(request, template.subject, template.body, payload)
