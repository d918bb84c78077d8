"""Forms of the CRM pages: contact and account editing, logging an activity, the import wizard.

The forms only shape input; the actions in ``crm.records`` and ``crm.imports`` validate
it. Their ``ValidationError({field: reason})`` is put back on the form field it names
with ``add_action_errors``, so every reason appears next to its field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from sequent.crm import importer
from sequent.crm.models import (
    RECORD_ACCOUNT,
    RECORD_CONTACT,
    Account,
    ActivityKind,
    ActivityType,
    Contact,
    CustomField,
    CustomFieldType,
)

CUSTOM_PREFIX = "custom_"
# Action error keys that belong to a differently named form field.
FIELD_FOR_ERROR = {"account_id": "account_name"}


def _owner_choices() -> list[tuple[str, str]]:
    users = get_user_model().objects.filter(is_active=True).order_by("email")
    return [(u.email, u.email) for u in users]


def _custom_form_field(definition: CustomField) -> forms.Field:
    label = definition.label
    if definition.field_type == CustomFieldType.NUMBER:
        return forms.CharField(
            label=label, required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"})
        )
    if definition.field_type == CustomFieldType.DATE:
        return forms.CharField(label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}))
    if definition.field_type == CustomFieldType.BOOLEAN:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", "—"), ("yes", "Yes"), ("no", "No")]
        )
    if definition.field_type == CustomFieldType.CHOICE:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", "—"), *((c, c) for c in definition.choices or ())]
        )
    return forms.CharField(label=label, required=False)


def _custom_initial(definition: CustomField, value: Any) -> Any:
    if definition.field_type == CustomFieldType.BOOLEAN and isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else value


class RecordForm(forms.Form):
    """A contact or account form with one input per custom field of its record type."""

    record_type = RECORD_CONTACT

    def __init__(self, *args: Any, instance: Contact | Account | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance = instance
        self.owner_field = self.fields["owner"]
        self.owner_field.choices = _owner_choices()  # type: ignore[attr-defined]
        self.custom_definitions = list(
            CustomField.objects.filter(record_type=self.record_type).order_by("label", "key")
        )
        for definition in self.custom_definitions:
            name = CUSTOM_PREFIX + definition.key
            self.fields[name] = _custom_form_field(definition)
            if instance is not None:
                self.initial[name] = _custom_initial(definition, (instance.custom or {}).get(definition.key))

    @property
    def custom_fields(self) -> list[forms.BoundField]:
        return [self[CUSTOM_PREFIX + d.key] for d in self.custom_definitions]

    @property
    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if not name.startswith(CUSTOM_PREFIX)]

    def custom_data(self) -> dict[str, Any]:
        """Custom values for the action: '' clears a value (None), booleans as yes/no."""
        return {d.key: self.cleaned_data.get(CUSTOM_PREFIX + d.key) or None for d in self.custom_definitions}

    def add_action_errors(self, error: ValidationError) -> None:
        """Put each reason of an action's ValidationError on the field it names."""
        for key, messages in error.message_dict.items():
            name = FIELD_FOR_ERROR.get(key, key)
            if name.startswith("custom."):
                name = CUSTOM_PREFIX + name.removeprefix("custom.")
            for message in messages:
                self.add_error(name if name in self.fields else None, message)


class ContactForm(RecordForm):
    first_name = forms.CharField(required=False, label="First name")
    last_name = forms.CharField(required=False, label="Last name")
    email = forms.CharField(required=False, label="Email", widget=forms.EmailInput)
    mobile = forms.CharField(required=False, label="Mobile", help_text="E.164, e.g. +14155550123")
    job_title = forms.CharField(required=False, label="Job title")
    account_name = forms.CharField(
        required=False, label="Account", help_text="An account's name; a new name creates the account."
    )
    country = forms.CharField(required=False, label="Country", help_text="Two letters, e.g. US or GB")
    time_zone = forms.CharField(required=False, label="Time zone", help_text="e.g. Europe/London")
    tags = forms.CharField(required=False, label="Tags", help_text="Separated by commas")
    owner = forms.ChoiceField(label="Owner")
    email_opt_out = forms.BooleanField(required=False, label="Email opt-out")
    sms_opt_out = forms.BooleanField(required=False, label="SMS opt-out")

    record_type = RECORD_CONTACT

    def __init__(self, *args: Any, instance: Contact | None = None, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, instance=instance, **kwargs)
        if instance is not None:
            for name in ("first_name", "last_name", "email", "mobile", "job_title", "country", "time_zone"):
                self.initial.setdefault(name, getattr(instance, name))
            self.initial.setdefault("account_name", instance.account.name if instance.account else "")
            self.initial.setdefault("tags", ", ".join(t.name for t in instance.tags.order_by("name")))
            self.initial.setdefault("owner", instance.owner.email if instance.owner else "")
            self.initial.setdefault("email_opt_out", instance.email_opt_out)
            self.initial.setdefault("sms_opt_out", instance.sms_opt_out)
        elif user is not None:
            self.initial.setdefault("owner", user.email)

    def action_data(self) -> dict[str, Any]:
        """The form as the input of ``records.do_create_contact`` / ``do_update_contact``."""
        data = self.cleaned_data
        values: dict[str, Any] = {
            name: data[name]
            for name in (
                "first_name",
                "last_name",
                "email",
                "mobile",
                "job_title",
                "country",
                "time_zone",
                "account_name",
                "owner",
                "email_opt_out",
                "sms_opt_out",
            )
        }
        values["tags"] = [t.strip() for t in data["tags"].split(",") if t.strip()]
        values["custom"] = self.custom_data()
        return values


class AccountForm(RecordForm):
    name = forms.CharField(required=False, label="Name")
    domain = forms.CharField(required=False, label="Domain", help_text="e.g. acme.com")
    industry = forms.CharField(required=False, label="Industry")
    owner = forms.ChoiceField(label="Owner")

    record_type = RECORD_ACCOUNT

    def __init__(self, *args: Any, instance: Account | None = None, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, instance=instance, **kwargs)
        if instance is not None:
            for name in ("name", "domain", "industry"):
                self.initial.setdefault(name, getattr(instance, name))
            self.initial.setdefault("owner", instance.owner.email if instance.owner else "")
        elif user is not None:
            self.initial.setdefault("owner", user.email)

    def action_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "domain": data["domain"],
            "industry": data["industry"],
            "owner": data["owner"],
            "custom": self.custom_data(),
        }


# What a rep logs by hand; email and SMS activities are recorded by the system.
LOGGABLE_KINDS = [
    (ActivityKind.CALL_OUTGOING, "Outgoing call"),
    (ActivityKind.CALL_INCOMING, "Incoming call"),
    (ActivityKind.CHAT, "Chat"),
    (ActivityKind.MEETING, "Meeting"),
    (ActivityKind.NOTE, "Note"),
    (ActivityKind.CUSTOM, "Other sales activity (pick its type)"),
]


class ActivityForm(forms.Form):
    """Log a call, chat, meeting, note or custom sales activity on a contact."""

    kind = forms.ChoiceField(label="Activity", choices=LOGGABLE_KINDS)
    custom_type = forms.ChoiceField(label="Type", required=False, help_text="For “Other sales activity”")
    subject = forms.CharField(label="Subject", required=False)
    outcome = forms.CharField(label="Outcome", required=False, help_text="e.g. Connected, Left voicemail")
    body = forms.CharField(label="Notes", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    occurred_at = forms.DateTimeField(
        label="When (UTC)",
        required=False,
        help_text="Leave empty for now",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = ActivityType.objects.filter(is_active=True).order_by("name").values_list("name", flat=True)
        self.fields["custom_type"].choices = [("", "—"), *((n, n) for n in names)]  # type: ignore[attr-defined]

    def action_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``records.do_log_activity``."""
        data = self.cleaned_data
        occurred_at = data.get("occurred_at")
        if occurred_at is not None:
            # The input has no zone: it is read as UTC, as the page says.
            occurred_at = occurred_at.replace(tzinfo=dt.UTC)
        return {
            "kind": data["kind"],
            "custom_type": data.get("custom_type") or None,
            "occurred_at": occurred_at,
            "subject": data.get("subject", ""),
            "body": data.get("body", ""),
            "outcome": data.get("outcome", ""),
        }

    def add_action_errors(self, error: ValidationError) -> None:
        for key, messages in error.message_dict.items():
            for message in messages:
                self.add_error(key if key in self.fields else None, message)


class UploadForm(forms.Form):
    """Step 1 of the import wizard: the file and what it holds."""

    file = forms.FileField(label="CSV file")
    record_type = forms.ChoiceField(
        label="The file holds",
        choices=[(RECORD_CONTACT, "Contacts"), (RECORD_ACCOUNT, "Accounts")],
        initial=RECORD_CONTACT,
        widget=forms.RadioSelect,
    )


# Readable names of the fields a column can fill (importer.ALIASES holds the same keys).
TARGET_LABELS = {
    RECORD_CONTACT: {
        "first_name": "First name",
        "last_name": "Last name",
        "name": "Full name (split into first and last)",
        "email": "Email",
        "mobile": "Mobile",
        "job_title": "Job title",
        "time_zone": "Time zone",
        "country": "Country",
        "account": "Account (name or domain)",
        "tags": "Tags",
        "email_opt_out": "Email opt-out",
        "sms_opt_out": "SMS opt-out",
    },
    RECORD_ACCOUNT: {"name": "Name", "domain": "Domain", "industry": "Industry"},
}


def target_choices(record_type: str, customs: list[importer.CustomFieldDef]) -> list[tuple[str, str]]:
    """The fields a column can be mapped to, "Don't import" first."""
    labels = TARGET_LABELS[record_type]
    built_in = [(name, labels.get(name, name)) for name in importer.ALIASES[record_type]]
    custom = [(f"custom.{c.key}", f"{c.label} (custom field)") for c in customs]
    return [("", "— Don't import —"), *built_in, *custom]


class MappingForm(forms.Form):
    """Step 2 of the import wizard: a field for each column, duplicates, import name."""

    on_duplicate = forms.ChoiceField(
        label="When the record already exists",
        choices=[("skip", "Skip the row"), ("update", "Update the existing record")],
        initial="skip",
        widget=forms.RadioSelect,
    )
    tag = forms.CharField(
        label="Import name",
        required=False,
        max_length=255,
        help_text="Written to each imported record's “Import Name” field, so you can find them later.",
    )

    def __init__(
        self,
        *args: Any,
        header: list[str],
        guesses: Mapping[str, str],
        choices: list[tuple[str, str]],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.header = header
        for index, name in enumerate(header):
            self.fields[f"col_{index}"] = forms.ChoiceField(
                label=name or f"Column {index + 1}", choices=choices, required=False
            )
            self.initial.setdefault(f"col_{index}", guesses.get(name, ""))

    @property
    def column_fields(self) -> list[forms.BoundField]:
        return [self[f"col_{index}"] for index in range(len(self.header))]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        seen: dict[str, str] = {}
        for index, name in enumerate(self.header):
            target = data.get(f"col_{index}") or ""
            if not target:
                continue
            if target in seen:
                self.add_error(f"col_{index}", f"“{seen[target]}” already goes to this field")
            seen[target] = name
        if not seen:
            raise ValidationError("Choose a field for at least one column.")
        return data

    def mapping(self) -> dict[str, str]:
        """{header: field} for every named column ('' = not imported)."""
        return {
            name: self.cleaned_data.get(f"col_{index}") or ""
            for index, name in enumerate(self.header)
            if name
        }
