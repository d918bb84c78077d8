"""Actions that change email state: mailboxes, templates, unsubscribes, bounces, and the
activities delivery records. Views, the API, the CLI and delivery call these."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, models, transaction

from sequent.crm.actions import contact_field_changes
from sequent.crm.fields import normalize_email
from sequent.crm.models import Activity, Contact, EmailStatus
from sequent.lib import bulk, clock
from sequent.lib.bulk import insert_rows
from sequent.lib.crypto import CryptoError
from sequent.mail import smtp, templating
from sequent.mail.building import LINE_BREAKS
from sequent.mail.models import (
    PENDING_MESSAGE_STATUSES,
    EmailEvent,
    EmailEventKind,
    EmailTemplate,
    Mailbox,
    MailboxStatus,
    MessageStatus,
    OutboundMessage,
    Security,
)
from sequent.mail.tokens import UnsubscribeTarget
from sequent.users import access

CHECK_TIMEOUT = 15.0
MAX_PER_MINUTE = 1000

MAILBOX_FIELDS = (
    "email_address",
    "display_name",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "smtp_username",
    "smtp_password",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_username",
    "imap_password",
    "imap_folders",
    "imap_sent_folder",
    "per_minute_limit",
    "status",
    "is_workspace_default",
)
SMTP_FIELDS = ("smtp_host", "smtp_port", "smtp_security", "smtp_username", "smtp_password")
IMAP_FIELDS = ("imap_host", "imap_port", "imap_security", "imap_username", "imap_password")
# The statuses a user may set; the paused ones belong to delivery.
USER_STATUSES = (MailboxStatus.ACTIVE, MailboxStatus.DISABLED)


def bulk_set(objs: list[Any], fields: list[str]) -> None:
    """Write *fields* of each of *objs* (rows of one model) with one executemany UPDATE.

    Django's ``bulk_update`` builds a CASE per field over every row, which costs more
    than the rest of a delivery batch; a prepared statement run per row does not."""
    if not objs:
        return
    meta = objs[0]._meta
    columns: list[models.Field[Any, Any]] = [meta.get_field(name) for name in fields]  # type: ignore[misc]
    pk_column = str(meta.pk.column) if meta.pk is not None else "id"
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(str(column.column))} = %s" for column in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(pk_column)} = %s"  # noqa: S608
    # Text and numbers pass as they are; each distinct datetime is prepared once.
    preparers = [(column.attname, bulk.preparer(column, connection)) for column in columns]
    params = [
        [
            getattr(obj, attname) if prepare is None else prepare(getattr(obj, attname))
            for attname, prepare in preparers
        ]
        + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


class _Errors:
    """Collects ``field: reason`` problems, then raises them together."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, reason: str) -> None:
        self.errors.setdefault(name, []).append(reason)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def _text(values: dict[str, Any], name: str, limit: int, errors: _Errors, *, one_line: bool = True) -> str:
    value = values[name]
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.add(name, "must be text")
        return ""
    value = value.strip()
    if len(value) > limit:
        errors.add(name, f"at most {limit} characters")
    if one_line and any(char in LINE_BREAKS for char in value):
        errors.add(name, "cannot contain a line break")
    return value


def _host(values: dict[str, Any], name: str, errors: _Errors) -> str:
    value = _text(values, name, 255, errors)
    if any(char.isspace() for char in value):
        errors.add(name, "a host name cannot contain spaces")
    return value


def _int(values: dict[str, Any], name: str, low: int, high: int, errors: _Errors) -> int:
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors.add(name, f"must be a whole number from {low} to {high}")
        return low
    return value


def _clean_mailbox(values: dict[str, Any], current: Mailbox | None) -> dict[str, Any]:
    errors = _Errors()
    for name in values:
        if name not in MAILBOX_FIELDS:
            errors.add(name, "unknown field")
    clean: dict[str, Any] = {}
    if "email_address" in values:
        try:
            clean["email_address"] = normalize_email(_text(values, "email_address", 254, errors))
        except ValueError as exc:
            errors.add("email_address", str(exc))
        if not clean.get("email_address") and "email_address" not in errors.errors:
            errors.add("email_address", "a mailbox needs its email address")
    elif current is None:
        errors.add("email_address", "a mailbox needs its email address")
    if "display_name" in values:
        clean["display_name"] = _text(values, "display_name", 200, errors)
    for name in ("smtp_host", "imap_host"):
        if name in values:
            clean[name] = _host(values, name, errors)
    if current is None and not clean.get("smtp_host"):
        errors.add("smtp_host", "a mailbox needs the SMTP server it sends through")
    elif current is not None and "smtp_host" in clean and not clean["smtp_host"]:
        errors.add("smtp_host", "a mailbox needs the SMTP server it sends through")
    for name in ("smtp_port", "imap_port"):
        if name in values:
            clean[name] = _int(values, name, 1, 65535, errors)
    for name in ("smtp_security", "imap_security"):
        if name in values:
            if values[name] not in Security.values:
                errors.add(name, f"must be one of {', '.join(Security.values)}")
            clean[name] = values[name]
    for name in ("smtp_username", "imap_username"):
        if name in values:
            clean[name] = _text(values, name, 254, errors)
    for name in ("smtp_password", "imap_password"):
        if name in values:
            value = values[name]
            if value is not None and not isinstance(value, str):
                errors.add(name, "must be text")
            elif value is not None and any(char in "\r\n\x00" for char in value):
                errors.add(name, "cannot contain a line break")
            # Empty or null clears the password (a server without login).
            clean[name] = value or None
    if "imap_folders" in values:
        folders = values["imap_folders"]
        if not isinstance(folders, list) or not all(isinstance(f, str) and f.strip() for f in folders):
            errors.add("imap_folders", "must be a list of folder names")
        else:
            clean["imap_folders"] = [f.strip() for f in folders]
    if "imap_sent_folder" in values:
        clean["imap_sent_folder"] = _text(values, "imap_sent_folder", 255, errors)
    if "per_minute_limit" in values:
        clean["per_minute_limit"] = _int(values, "per_minute_limit", 1, MAX_PER_MINUTE, errors)
    if "status" in values:
        if values["status"] not in USER_STATUSES:
            errors.add("status", "can be set to active or disabled (paused states are set by delivery)")
        clean["status"] = values["status"]
    if "is_workspace_default" in values:
        if not isinstance(values["is_workspace_default"], bool):
            errors.add("is_workspace_default", "must be true or false")
        clean["is_workspace_default"] = values["is_workspace_default"]
    errors.raise_if_any()
    return clean


def _check_default_permission(user: Any, clean: dict[str, Any]) -> None:
    if "is_workspace_default" in clean and not access.has_perm(user, access.MANAGE_WORKSPACE):
        raise PermissionDenied("is_workspace_default: needs the Manage workspace settings permission")


def _take_default(mailbox_pk: int | None) -> None:
    # One workspace default at most: the new one replaces the old in the same transaction.
    others = Mailbox.objects.filter(is_workspace_default=True)
    if mailbox_pk is not None:
        others = others.exclude(pk=mailbox_pk)
    others.update(is_workspace_default=False)


def do_create_mailbox(owner: Any, **fields: Any) -> Mailbox:
    """Connect a mailbox for *owner*. Setting it as workspace default needs the Manage
    workspace permission."""
    clean = _clean_mailbox(fields, None)
    _check_default_permission(owner, clean)
    now = clock.now()
    with transaction.atomic():
        if clean.get("is_workspace_default"):
            _take_default(None)
        return Mailbox.objects.create(owner=owner, created_at=now, updated_at=now, **clean)


def do_update_mailbox(mailbox: Mailbox, user: Any, **changes: Any) -> Mailbox:
    """Change a mailbox. New SMTP settings (such as a new password) on a mailbox paused
    for a refused login are tested at once, and the mailbox resumes if the login works."""
    clean = _clean_mailbox(changes, mailbox)
    _check_default_permission(user, clean)
    with transaction.atomic():
        if clean.get("is_workspace_default"):
            _take_default(mailbox.pk)
        clean["updated_at"] = clock.now()
        Mailbox.objects.filter(pk=mailbox.pk).update(**clean)
        if clean.get("status") == MailboxStatus.DISABLED:
            OutboundMessage.objects.filter(
                mailbox=mailbox, status__in=(MessageStatus.QUEUED, MessageStatus.DEFERRED)
            ).update(
                last_error="waiting: the mailbox is disabled; enable it or delete it to send from another"
            )
    mailbox.refresh_from_db()
    if mailbox.status == MailboxStatus.PAUSED_AUTH and any(name in clean for name in SMTP_FIELDS + IMAP_FIELDS):
        # After the commit: a login is network I/O.
        check_mailbox_connection(mailbox)
        mailbox.refresh_from_db()
    return mailbox


def do_delete_mailbox(mailbox: Mailbox) -> None:
    """Remove a mailbox. Its queued emails go out from the owner's next mailbox (or the
    workspace default) at their next attempt."""
    with transaction.atomic():
        OutboundMessage.objects.filter(mailbox=mailbox, status__in=PENDING_MESSAGE_STATUSES).update(
            mailbox=None
        )
        mailbox.delete()


def smtp_settings_for(mailbox: Mailbox, timeout: float = CHECK_TIMEOUT) -> smtp.SmtpSettings:
    """The SMTP adapter settings of *mailbox* (decrypts the password)."""
    return smtp.SmtpSettings(
        host=mailbox.smtp_host,
        port=mailbox.smtp_port,
        security=mailbox.smtp_security,  # type: ignore[arg-type]
        username=mailbox.smtp_username,
        password=str(mailbox.smtp_password or ""),
        timeout=timeout,
    )


def imap_settings_for(mailbox: Mailbox, timeout: float = CHECK_TIMEOUT) -> smtp.ImapSettings | None:
    """The IMAP settings of *mailbox*, or None when it has no IMAP server."""
    if not mailbox.imap_host:
        return None
    return smtp.ImapSettings(
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        security=mailbox.imap_security,  # type: ignore[arg-type]
        username=mailbox.imap_username or mailbox.smtp_username or mailbox.email_address,
        password=str(mailbox.imap_password or mailbox.smtp_password or ""),
        timeout=timeout,
    )


def check_mailbox_connection(mailbox: Mailbox) -> list[str]:
    """Log in over SMTP (and IMAP when set) and return the exact failures ([] = fine).

    A mailbox paused for a refused login (SMTP or IMAP) resumes once every login works."""
    try:
        smtp_settings = smtp_settings_for(mailbox)
        imap_settings = imap_settings_for(mailbox)
    except CryptoError as exc:
        return [f"SMTP: the stored password cannot be read ({exc})"]
    problems = smtp.test_connection(smtp_settings, imap_settings)
    now = clock.now()
    with transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(last_checked_at=now)
        if not problems:
            Mailbox.objects.filter(pk=mailbox.pk, status=MailboxStatus.PAUSED_AUTH).update(
                status=MailboxStatus.ACTIVE, last_error="", paused_until=None, updated_at=now
            )
    return problems


def do_pause_mailbox(mailbox: Mailbox, status: str, error: str, *, until: dt.datetime | None = None) -> None:
    """Pause a mailbox (refused login, or quota until *until*); its waiting emails say why."""
    now = clock.now()
    with transaction.atomic():
        Mailbox.objects.filter(pk=mailbox.pk).update(
            status=status, last_error=error[:2000], paused_until=until, updated_at=now
        )
        why = (
            "the mailbox login was refused; fix its password to resume"
            if status == MailboxStatus.PAUSED_AUTH
            else f"the mailbox reached its provider's sending limit; it resumes at {until.isoformat() if until else 'once cleared'}"
        )
        OutboundMessage.objects.filter(
            mailbox=mailbox, status__in=(MessageStatus.QUEUED, MessageStatus.DEFERRED)
        ).update(last_error=f"waiting: {why}")
    mailbox.status, mailbox.last_error, mailbox.paused_until = status, error, until


# --- templates ----------------------------------------------------------------------------


def _clean_template(owner: Any, values: dict[str, Any], current: EmailTemplate | None) -> dict[str, Any]:
    errors = _Errors()
    clean: dict[str, Any] = {}
    for name in values:
        if name not in ("name", "subject", "body"):
            errors.add(name, "unknown field")
    if "name" in values:
        clean["name"] = _text(values, "name", 200, errors)
        if not clean["name"]:
            errors.add("name", "a template needs a name")
        elif (
            EmailTemplate.objects.filter(owner=owner, name=clean["name"])
            .exclude(pk=current.pk if current else 0)
            .exists()
        ):
            errors.add("name", "you already have a template with this name")
    if "subject" in values:
        clean["subject"] = _text(values, "subject", templating.SUBJECT_MAX_CHARS, errors, one_line=False)
    if "body" in values:
        body = values["body"]
        if not isinstance(body, str):
            errors.add("body", "must be text")
        clean["body"] = body if isinstance(body, str) else ""
    for part in ("subject", "body"):
        source = clean.get(part, getattr(current, part) if current else "")
        if part in values or current is None:
            if not (source or "").strip():
                errors.add(part, f"a template needs a {part}")
                continue
            for problem in templating.validate_template(source):
                errors.add(part, problem)
    errors.raise_if_any()
    return clean


def do_create_template(owner: Any, **fields: Any) -> EmailTemplate:
    """Save a new email template; its Liquid is checked (syntax, filters, placeholders)."""
    clean = _clean_template(owner, fields, None)
    now = clock.now()
    with transaction.atomic():
        return EmailTemplate.objects.create(owner=owner, created_at=now, updated_at=now, **clean)


def do_update_template(template: EmailTemplate, **changes: Any) -> EmailTemplate:
    """Change a template; the next sends that use it render the new text."""
    clean = _clean_template(template.owner, changes, template)
    with transaction.atomic():
        for name, value in clean.items():
            setattr(template, name, value)
        template.updated_at = clock.now()
        template.save()
    return template


def do_delete_template(template: EmailTemplate) -> None:
    """Delete a template."""
    with transaction.atomic():
        template.delete()


# --- unsubscribes and bounces -------------------------------------------------------------


def do_unsubscribe(target: UnsubscribeTarget) -> Contact | None:
    """Opt the contact out of email, record the event, and cancel every email still
    waiting for them in every sequence. None when the link's message or contact is gone."""
    message = None
    if target.kind == "message":
        message = OutboundMessage.objects.select_related("contact").filter(pk=target.pk).first()
        contact = message.contact if message is not None else None
    else:
        contact = Contact.objects.filter(pk=target.pk).first()
    if contact is None:
        return None
    now = clock.now()
    with transaction.atomic():
        Contact.objects.filter(pk=contact.pk).update(email_opt_out=True, updated_at=now)
        key = f"unsubscribed:m{message.pk}" if message is not None else f"unsubscribed:c{contact.pk}"
        EmailEvent.objects.bulk_create(
            [
                EmailEvent(
                    message=message,
                    contact=contact,
                    enrollment_id=message.enrollment_id if message else None,
                    step_id=message.step_id if message else None,
                    kind=EmailEventKind.UNSUBSCRIBED,
                    occurred_at=now,
                    dedupe_key=key,
                )
            ],
            ignore_conflicts=True,
        )
        OutboundMessage.objects.filter(contact=contact, status__in=PENDING_MESSAGE_STATUSES).update(
            status=MessageStatus.CANCELLED,
            reason_code="unsubscribed",
            last_error="the contact unsubscribed",
            claimed_by="",
            lease_until=None,
        )
    contact.email_opt_out = True
    return contact


def do_bounce_contacts(contact_ids: set[int], now: dt.datetime) -> None:
    """Mark contacts whose address was refused as bounced: their enrollments in sequences
    that exit on bounce exit, and every email still waiting for them is cancelled."""
    from sequent.sequences.exits import exit_enrollments
    from sequent.sequences.models import Enrollment, ExitReason

    if not contact_ids:
        return
    with transaction.atomic():
        Contact.objects.filter(pk__in=contact_ids).update(email_status=EmailStatus.BOUNCED, updated_at=now)
        exit_enrollments(
            Enrollment.objects.filter(contact_id__in=contact_ids, sequence__exit_on_bounce=True),
            ExitReason.BOUNCED,
            now,
        )
        OutboundMessage.objects.filter(
            contact_id__in=contact_ids, status__in=PENDING_MESSAGE_STATUSES
        ).update(
            status=MessageStatus.CANCELLED,
            reason_code="bounced",
            last_error="the contact's email address bounced",
            claimed_by="",
            lease_until=None,
        )


@dataclass(frozen=True)
class EmailActivity:
    """An email activity to record for a contact (sent, bounced ...)."""

    contact_id: int
    kind: str
    occurred_at: dt.datetime
    user_id: int | None
    subject: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


def do_record_email_activities(items: list[EmailActivity]) -> None:
    """Record many email activities at once, updating each contact's last-contacted
    fields by the same rules as ``crm.actions.do_record_activity`` (one rule set:
    ``contact_field_changes``), with a fixed number of queries."""
    if not items:
        return
    tracked = ["last_contacted_mode", "last_activity_type", "last_contacted_at", "updated_at"]
    with transaction.atomic():
        contacts = {
            contact.pk: contact
            for contact in Contact.objects.select_for_update()
            .filter(pk__in={item.contact_id for item in items})
            .only("pk", *tracked)
            .order_by("pk")
        }
        insert_rows(
            Activity,
            ["contact_id", "user_id", "kind", "occurred_at", "subject", "metadata"],
            [
                (item.contact_id, item.user_id, item.kind, item.occurred_at, item.subject[:255], item.metadata)
                for item in items
                if item.contact_id in contacts
            ],
        )
        changed: dict[int, Contact] = {}
        now = clock.now()
        for item in sorted(items, key=lambda entry: entry.occurred_at):
            contact = contacts.get(item.contact_id)
            if contact is None:
                continue
            changes = contact_field_changes(contact, item.kind, item.occurred_at)
            for name, value in changes.items():
                setattr(contact, name, value)
            if changes:
                contact.updated_at = now
                changed[contact.pk] = contact
        bulk_set(list(changed.values()), tracked)


# --- demo -----------------------------------------------------------------------------------

DEMO_MAILBOX_ADDRESS = "demo@sequent.example"
DEMO_TEMPLATE_NAME = "Introduction"
DEMO_TEMPLATE_SUBJECT = 'Quick question for {{ account.name | default: "your team" }}'
DEMO_TEMPLATE_BODY = """<p>Hi {{ contact.first_name | default: "there" }},</p>
<p>Teams like {{ account.name | default: "yours" }} use us to follow up with every lead
without spreadsheets. Would a
<a href="https://www.example.com/demo">15-minute demo</a> next week be useful?</p>
<p>Best,<br>{{ sender.first_name | default: sender.name }}</p>
{% if unsubscribe_link %}<p style="font-size:12px;color:#888">
Not interested? <a href="{{ unsubscribe_link }}">Unsubscribe</a>.</p>{% endif %}
"""


def do_seed_demo_mail(owner: Any) -> list[str]:
    """The demo mailbox (sending to the local mail catcher, workspace default when
    there is none) and a demo template for *owner*; returns what was created."""
    from sequent.mail.catcher import HOST, catcher_port

    created: list[str] = []
    now = clock.now()
    with transaction.atomic():
        if not Mailbox.objects.filter(owner=owner).exists():
            Mailbox.objects.create(
                owner=owner,
                email_address=DEMO_MAILBOX_ADDRESS,
                display_name=owner.get_full_name() or "Demo",
                smtp_host=HOST,
                smtp_port=catcher_port(),
                smtp_security=Security.NONE,
                per_minute_limit=60,
                is_workspace_default=not Mailbox.objects.filter(is_workspace_default=True).exists(),
                created_at=now,
                updated_at=now,
            )
            created.append(
                f"mailbox {DEMO_MAILBOX_ADDRESS} (sends to the local mail catcher on {HOST}:{catcher_port()})"
            )
        if not EmailTemplate.objects.filter(owner=owner, name=DEMO_TEMPLATE_NAME).exists():
            EmailTemplate.objects.create(
                owner=owner,
                name=DEMO_TEMPLATE_NAME,
                subject=DEMO_TEMPLATE_SUBJECT,
                body=DEMO_TEMPLATE_BODY,
                created_at=now,
                updated_at=now,
            )
            created.append(f"email template {DEMO_TEMPLATE_NAME!r}")
    return created
