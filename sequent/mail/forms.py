"""Forms of the mail pages: email templates and mailboxes.

The forms only parse what a browser posts; the rules (Liquid checks, unique names, host
and port ranges, who may set the workspace default) live in ``sequent.mail.actions``,
whose ``ValidationError`` is put back on the form with ``apply_errors``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from sequent.crm.models import Contact
from sequent.mail.models import Mailbox, MailboxStatus, Security

# How many contacts a preview picker offers (contacts are shared by the workspace).
CONTACT_CHOICES = 200


def contact_choices(user: Any) -> list[tuple[int, str]]:
    """Contacts a preview can be rendered for: the user's own first, then the others."""
    rows = Contact.objects.order_by("-owner_id", "last_name", "first_name", "pk").values_list(
        "pk", "first_name", "last_name", "email", "owner_id"
    )[: CONTACT_CHOICES * 2]
    mine = [row for row in rows if row[4] == user.pk]
    others = [row for row in rows if row[4] != user.pk]
    choices = []
    for pk, first, last, email, _ in (mine + others)[:CONTACT_CHOICES]:
        name = f"{first} {last}".strip()
        choices.append((pk, f"{name} <{email}>" if name and email else name or email or f"#{pk}"))
    return choices


def apply_errors(form: forms.Form, exc: ValidationError) -> None:
    """Show an action's ``{field: [reasons]}`` next to the form's fields (others on top)."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for name, errors in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, errors)


class EmailTemplateForm(forms.Form):
    name = forms.CharField(max_length=200)
    subject = forms.CharField(
        max_length=998, help_text='Liquid, e.g. Quick question for {{ account.name | default: "your team" }}'
    )
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 14}), help_text="Liquid HTML")


class MailboxForm(forms.Form):
    """A mailbox's settings. Passwords are write-only: an empty field keeps the saved one."""

    email_address = forms.CharField(max_length=254, label="From address")
    display_name = forms.CharField(max_length=200, required=False, label="From name")
    smtp_host = forms.CharField(max_length=255, label="SMTP server")
    smtp_port = forms.IntegerField(initial=587, label="SMTP port")
    smtp_security = forms.ChoiceField(
        choices=Security.choices, initial=Security.STARTTLS, label="SMTP security"
    )
    smtp_username = forms.CharField(max_length=254, required=False, label="SMTP username")
    smtp_password = forms.CharField(
        required=False, strip=False, label="SMTP password", widget=forms.PasswordInput(render_value=False)
    )
    clear_smtp_password = forms.BooleanField(required=False, label="Remove the saved SMTP password")
    imap_host = forms.CharField(max_length=255, required=False, label="IMAP server")
    imap_port = forms.IntegerField(initial=993, label="IMAP port")
    imap_security = forms.ChoiceField(choices=Security.choices, initial=Security.SSL, label="IMAP security")
    imap_username = forms.CharField(max_length=254, required=False, label="IMAP username")
    imap_password = forms.CharField(
        required=False,
        strip=False,
        label="IMAP password",
        widget=forms.PasswordInput(render_value=False),
        help_text="Empty: the SMTP password is used.",
    )
    clear_imap_password = forms.BooleanField(required=False, label="Remove the saved IMAP password")
    imap_folders = forms.CharField(
        max_length=2000,
        required=False,
        initial="INBOX",
        label="Folders to read",
        help_text="Comma-separated, e.g. INBOX",
    )
    imap_sent_folder = forms.CharField(
        max_length=255, required=False, label="Sent folder", help_text="Empty: found by its \\Sent flag."
    )
    per_minute_limit = forms.IntegerField(initial=20, label="Messages per minute at most")
    status = forms.ChoiceField(
        choices=[(MailboxStatus.ACTIVE, "Active"), (MailboxStatus.DISABLED, "Disabled")],
        initial=MailboxStatus.ACTIVE,
        required=False,
    )

    def __init__(self, *args: Any, mailbox: Mailbox | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox
        if mailbox is None:
            del self.fields["clear_smtp_password"], self.fields["clear_imap_password"]
        if mailbox is not None and mailbox.status not in (MailboxStatus.ACTIVE, MailboxStatus.DISABLED):
            # A paused mailbox keeps its status until delivery or a test resumes it.
            del self.fields["status"]

    @staticmethod
    def initial_for(mailbox: Mailbox) -> dict[str, Any]:
        """The form's initial values for *mailbox* (never its passwords)."""
        names = (
            "email_address display_name smtp_host smtp_port smtp_security smtp_username imap_host "
            "imap_port imap_security imap_username imap_sent_folder per_minute_limit status"
        ).split()
        initial = {name: getattr(mailbox, name) for name in names}
        initial["imap_folders"] = ", ".join(mailbox.imap_folders or [])
        return initial

    def changes(self) -> dict[str, Any]:
        """The cleaned values as action keyword arguments; a password is sent only when
        typed (set or replace) or when its removal is ticked."""
        data = dict(self.cleaned_data)
        values: dict[str, Any] = {}
        for name in MailboxForm.base_fields:
            if name.startswith("clear_") or name not in self.fields:
                continue
            if name in ("smtp_password", "imap_password"):
                if data.get(name):
                    values[name] = data[name]
                elif data.get(f"clear_{name}"):
                    values[name] = None
                continue
            if name == "imap_folders":
                values[name] = [part.strip() for part in (data[name] or "").split(",") if part.strip()] or [
                    "INBOX"
                ]
                continue
            if name == "status" and not data.get(name):
                continue
            values[name] = data[name]
        return values
