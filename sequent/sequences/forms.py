"""Forms of the sequence builder: they parse what a rep typed into the keyword arguments of
``sequences.actions``; the actions validate, and their ``{field: reason}`` errors are put
back next to the field (``attach_errors``).

Conditions are posted as parallel lists (``<prefix>-field``, ``<prefix>-op``,
``<prefix>-value``), one entry per row of the condition builder; rows without a field
are ignored. They become the same ``{field, op, value}`` JSON the API takes.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import holidays
from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from sequent.crm.conditions import LIST_OPS, NO_VALUE_OPS, OPERATORS_BY_TYPE, field_catalog
from sequent.crm.models import RECORD_CONTACT, RECORD_TYPES, SavedView
from sequent.mail.models import EmailTemplate, Mailbox
from sequent.sequences.actions import MAX_CLAUSES
from sequent.sequences.models import SequenceKind, Step, StepKind, ThreadMode
from sequent.sequences.selection import EMAIL_ACTIVITY_FIELDS, EMAIL_ACTIVITY_OPS

KIND_HELP = {
    SequenceKind.CLASSIC: "Classic: each step runs on its day after the contact enrolls, in order.",
    SequenceKind.SMART: "Smart: at each run a contact takes the next step whose conditions hold, one step per run.",
}
OP_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "any_of": "is any of",
    "none_of": "is none of",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "gt": "is greater than",
    "lt": "is less than",
    "between": "is between",
    "on": "is on",
    "before": "is before",
    "after": "is after",
    "in_last_days": "in the last N days",
    "is_true": "is true",
    "is_false": "is false",
    "in_sequence": "is in sequence",
    "not_in_sequence": "is not in sequence",
}
# Email-activity fields of step conditions, with the step they look at ("@previous", "@any").
EMAIL_SCOPES = {"previous": "previous email step", "any": "any email step"}
CONDITION_ERROR = re.compile(r"^(?P<base>[a-z_]+)\[(?P<index>\d+)\]$")


def time_zone_choices() -> list[tuple[str, str]]:
    """Every IANA zone name, sorted, as select options."""
    return [(name, name) for name in _zones()]


@functools.cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


@functools.cache
def holiday_country_choices() -> tuple[tuple[str, str], ...]:
    """("", "none") and each country the holiday calendar knows, by ISO code."""
    return (
        ("", "No holiday calendar"),
        *((code, code) for code in sorted(holidays.list_supported_countries())),
    )


# --- conditions --------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldOption:
    """A field a condition row may pick."""

    name: str
    label: str
    operators: tuple[str, ...]
    type: str = ""
    choices: tuple[str, ...] = ()


# What the value box of a row says it expects, by field type.
VALUE_HINTS = {
    "number": "a number",
    "date": "YYYY-MM-DD",
    "datetime": "YYYY-MM-DD",
    "user": "an email address or me",
    "sequence": "a sequence name",
    "tags": "a tag",
}


@dataclass
class ConditionRow:
    """One row of the condition builder as drawn."""

    field: str = ""
    op: str = ""
    value: str = ""
    error: str = ""
    operators: tuple[str, ...] = ()
    placeholder: str = "value (a, b for lists)"

    @property
    def operator_choices(self) -> list[tuple[str, str]]:
        """(operator, label) pairs for the row's operator select."""
        return [(op, OP_LABELS.get(op, op.replace("_", " "))) for op in self.operators]


@dataclass
class ConditionSet:
    """The rows of one condition builder (audience, exit or step conditions)."""

    prefix: str
    record_type: str
    email_activity: bool
    rows: list[ConditionRow] = field(default_factory=list)
    options: list[FieldOption] = field(default_factory=list)
    error: str = ""

    @property
    def can_add(self) -> bool:
        return len(self.rows) < MAX_CLAUSES


def field_options(record_type: str, *, email_activity: bool = False) -> list[FieldOption]:
    """The fields a condition row offers: the record's, then (for steps) email activity."""
    options = [
        FieldOption(f.name, f.label, f.operators, f.type, f.choices) for f in field_catalog(record_type)
    ]
    if email_activity:
        for name in EMAIL_ACTIVITY_FIELDS:
            what = name.removeprefix("email.")
            for scope, label in EMAIL_SCOPES.items():
                options.append(
                    FieldOption(f"{name}@{scope}", f"Email {what} ({label})", EMAIL_ACTIVITY_OPS, "boolean")
                )
    return options


def all_operators() -> tuple[str, ...]:
    """Every operator, for a row whose field is not chosen yet."""
    return tuple(dict.fromkeys(op for ops in OPERATORS_BY_TYPE.values() for op in ops))


def _value_text(clause: dict[str, Any]) -> str:
    value = clause.get("value")
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("sequence", ""))
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def rows_from_clauses(clauses: list[dict[str, Any]]) -> list[ConditionRow]:
    """Stored clauses as builder rows."""
    rows = []
    for clause in clauses:
        name = str(clause.get("field", ""))
        if name in EMAIL_ACTIVITY_FIELDS:
            name = f"{name}@{clause.get('of', 'previous')}"
        rows.append(ConditionRow(name, str(clause.get("op", "")), _value_text(clause)))
    return rows


def rows_from_post(data: QueryDict, prefix: str) -> list[ConditionRow]:
    """The rows posted for *prefix*, blank ones left out."""
    fields = data.getlist(f"{prefix}-field")
    ops = data.getlist(f"{prefix}-op")
    values = data.getlist(f"{prefix}-value")
    rows = []
    for index, name in enumerate(fields):
        if not name.strip():
            continue
        op = ops[index] if index < len(ops) else ""
        value = values[index] if index < len(values) else ""
        rows.append(ConditionRow(name.strip(), op.strip(), value.strip()))
    return rows


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def clause_from_row(row: ConditionRow, types: dict[str, str]) -> dict[str, Any]:
    """A row as a ``{field, op, value}`` clause; the value typed as the operator needs it."""
    name, _, scope = row.field.partition("@")
    if name in EMAIL_ACTIVITY_FIELDS:
        return {"field": name, "op": row.op, "value": None, "of": scope or "previous"}
    ftype = types.get(name, "text")
    text = row.value
    value: Any
    if row.op in NO_VALUE_OPS:
        value = None
    elif row.op in ("in_sequence", "not_in_sequence"):
        value = {"sequence": int(text) if text.isdigit() else text}
    elif row.op in LIST_OPS or row.op == "between":
        parts = [part.strip() for part in text.split(",") if part.strip()]
        value = [_number(p) for p in parts] if ftype == "number" else parts
    elif row.op == "in_last_days":
        value = int(text) if text.isdigit() else text
    elif ftype == "number":
        value = _number(text)
    else:
        value = text
    return {"field": name, "op": row.op, "value": value}


def build_condition_set(
    prefix: str,
    record_type: str,
    rows: list[ConditionRow],
    *,
    email_activity: bool = False,
    blank_row: bool = True,
) -> ConditionSet:
    """A condition builder with the operators each row's field allows (and a blank row to fill)."""
    options = field_options(record_type, email_activity=email_activity)
    by_name = {o.name: o for o in options}
    for row in rows:
        option = by_name.get(row.field)
        row.operators = option.operators if option else all_operators()
        if option and option.choices:
            row.placeholder = "one of: " + ", ".join(option.choices)
        elif option and option.type in VALUE_HINTS:
            row.placeholder = VALUE_HINTS[option.type]
    if blank_row and len(rows) < MAX_CLAUSES:
        rows = [*rows, ConditionRow(operators=all_operators())]
    return ConditionSet(prefix, record_type, email_activity, rows, options)


def clauses_from_rows(rows: list[ConditionRow], record_type: str) -> list[dict[str, Any]]:
    types = {f.name: f.type for f in field_catalog(record_type)}
    return [clause_from_row(row, types) for row in rows]


# --- the sequence settings form -----------------------------------------------------------


class SequenceForm(forms.Form):
    """Name, type, audience, schedule, exit criteria and mailbox of a sequence."""

    # Not required here: the action says "a sequence needs a name" with the other errors.
    name = forms.CharField(label="Name", max_length=200, required=False)
    kind = forms.ChoiceField(
        label="Type",
        choices=[(k.value, KIND_HELP[k]) for k in SequenceKind],
        widget=forms.RadioSelect,
        initial=SequenceKind.CLASSIC,
    )
    record_type = forms.ChoiceField(label="Record type", choices=RECORD_TYPES, initial=RECORD_CONTACT)
    audience_views = forms.TypedMultipleChoiceField(
        label="Saved views", required=False, coerce=int, widget=forms.CheckboxSelectMultiple
    )
    prevent_duplicates = forms.BooleanField(label="Prevent duplicates", required=False)
    exclusive = forms.BooleanField(label="Exclusive", required=False)
    send_time = forms.TimeField(
        label="Send time", initial="09:00", widget=forms.TimeInput(attrs={"type": "time"})
    )
    time_zone = forms.ChoiceField(label="Time zone", initial="UTC")
    exclude_weekends = forms.BooleanField(label="Exclude weekends", required=False, initial=True)
    holiday_country = forms.ChoiceField(label="Holiday country", required=False)
    holiday_subdivision = forms.CharField(label="Holiday subdivision", required=False, max_length=16)
    smart_interval_days = forms.IntegerField(label="Smart interval (days)", initial=1, min_value=1)
    smart_expiry_days = forms.IntegerField(label="Smart expiry (days)", initial=90, min_value=1)
    exit_on_all_steps = forms.BooleanField(label="All steps executed", required=False, initial=True)
    exit_on_reply = forms.BooleanField(label="Replied", required=False, initial=True)
    exit_account_on_reply = forms.BooleanField(
        label="A contact of the same account replied", required=False, initial=False
    )
    exit_on_unsubscribe = forms.BooleanField(label="Unsubscribed", required=False, initial=True)
    exit_on_bounce = forms.BooleanField(label="Bounced", required=False, initial=True)
    mailbox = forms.TypedChoiceField(label="From mailbox", required=False, coerce=int, empty_value=None)

    def __init__(self, owner: Any, *args: Any, locked: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner = owner
        views = SavedView.objects.filter(owner=owner).order_by("name", "pk")
        self.fields["audience_views"].choices = [  # type: ignore[attr-defined]
            (v.pk, f"{v.name} ({v.record_type}s)") for v in views
        ]
        self.fields["time_zone"].choices = time_zone_choices()  # type: ignore[attr-defined]
        self.fields["holiday_country"].choices = holiday_country_choices()  # type: ignore[attr-defined]
        mailboxes = Mailbox.objects.filter(owner=owner).order_by("email_address", "pk")
        self.fields["mailbox"].choices = [  # type: ignore[attr-defined]
            ("", "My default mailbox"),
            *((m.pk, m.email_address) for m in mailboxes),
        ]
        if locked:
            # Type and record type only change while a draft (the action says so too).
            for name in ("kind", "record_type"):
                self.fields[name].disabled = True

    def values(self) -> dict[str, Any]:
        """The cleaned fields as action keyword arguments (``name`` included)."""
        data = dict(self.cleaned_data)
        data["send_time"] = data["send_time"].strftime("%H:%M")
        data["audience_views"] = list(data.get("audience_views") or [])
        return data


def sequence_initial(sequence: Any) -> dict[str, Any]:
    """A stored sequence as the form's initial values."""
    return {
        "name": sequence.name,
        "kind": sequence.kind,
        "record_type": sequence.record_type,
        "audience_views": [v.pk for v in sequence.audience_views.all()],
        "prevent_duplicates": sequence.prevent_duplicates,
        "exclusive": sequence.exclusive,
        "send_time": sequence.send_time.strftime("%H:%M"),
        "time_zone": sequence.time_zone,
        "exclude_weekends": sequence.exclude_weekends,
        "holiday_country": sequence.holiday_country,
        "holiday_subdivision": sequence.holiday_subdivision,
        "smart_interval_days": sequence.smart_interval_days,
        "smart_expiry_days": sequence.smart_expiry_days,
        "exit_on_all_steps": sequence.exit_on_all_steps,
        "exit_on_reply": sequence.exit_on_reply,
        "exit_account_on_reply": sequence.exit_account_on_reply,
        "exit_on_unsubscribe": sequence.exit_on_unsubscribe,
        "exit_on_bounce": sequence.exit_on_bounce,
        "mailbox": sequence.mailbox_id or "",
    }


# --- the step form ----------------------------------------------------------------------------


def _addresses(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,;\s]+", text) if part.strip()]


class StepForm(forms.Form):
    """One step: its day, content and (for emails) the advanced options."""

    day = forms.IntegerField(label="Day", min_value=1, initial=1)
    template_id = forms.TypedChoiceField(label="Email template", required=False, coerce=int, empty_value=None)
    subject = forms.CharField(label="Subject", required=False, max_length=998)
    body = forms.CharField(label="Body", required=False, widget=forms.Textarea(attrs={"rows": 8}))
    task_title = forms.CharField(label="Task title", required=False, max_length=255)
    task_notes = forms.CharField(label="Task notes", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    sms_body = forms.CharField(label="SMS message", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    thread = forms.ChoiceField(label="Thread", choices=ThreadMode.choices, initial=ThreadMode.NEW)
    reply_to = forms.CharField(label="Reply-To", required=False)
    cc = forms.CharField(label="CC", required=False, help_text="Addresses separated by commas.")
    bcc = forms.CharField(label="BCC", required=False, help_text="Addresses separated by commas.")
    track_opens = forms.BooleanField(label="Track opens", required=False, initial=True)
    track_clicks = forms.BooleanField(label="Track clicks", required=False, initial=True)
    include_unsubscribe = forms.BooleanField(label="Unsubscribe link", required=False, initial=True)

    EMAIL_ONLY = (
        "template_id", "subject", "body", "thread", "reply_to", "cc", "bcc",
        "track_opens", "track_clicks", "include_unsubscribe",
    )  # fmt: skip

    def __init__(self, owner: Any, kind: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        templates = EmailTemplate.objects.filter(owner=owner).order_by("name", "pk")
        self.fields["template_id"].choices = [  # type: ignore[attr-defined]
            ("", "Write it here"),
            *((t.pk, t.name) for t in templates),
        ]
        keep = set(self.fields_for(kind))
        for name in list(self.fields):
            if name not in keep:
                del self.fields[name]

    @classmethod
    def fields_for(cls, kind: str) -> tuple[str, ...]:
        """The form fields a step of *kind* uses."""
        if kind == StepKind.EMAIL:
            return ("day", *cls.EMAIL_ONLY)
        if kind == StepKind.EMAIL_REMINDER:
            return ("day", *cls.EMAIL_ONLY, "task_title", "task_notes")
        if kind == StepKind.SMS:
            return ("day", "sms_body")
        return ("day", "task_title", "task_notes")

    def values(self) -> dict[str, Any]:
        """The cleaned fields as ``do_add_step``/``do_update_step`` keyword arguments."""
        data = dict(self.cleaned_data)
        for name in ("cc", "bcc"):
            if name in data:
                data[name] = _addresses(data[name])
        return data


def step_initial(step: Step) -> dict[str, Any]:
    """A stored step as the form's initial values."""
    return {
        "day": step.day,
        "template_id": step.template_id or "",
        "subject": step.subject,
        "body": step.body,
        "task_title": step.task_title,
        "task_notes": step.task_notes,
        "sms_body": step.sms_body,
        "thread": step.thread,
        "reply_to": step.reply_to,
        "cc": ", ".join(step.cc or []),
        "bcc": ", ".join(step.bcc or []),
        "track_opens": step.track_opens,
        "track_clicks": step.track_clicks,
        "include_unsubscribe": step.include_unsubscribe,
    }


# --- action errors onto the form ----------------------------------------------------------------


def attach_errors(
    form: forms.Form, exc: ValidationError, condition_sets: dict[str, ConditionSet] | None = None
) -> None:
    """Put an action's ``{field: reason}`` errors next to their fields: ``cc[1]`` on ``cc``,
    ``audience_conditions[2]`` on the third row of that condition builder, the rest
    (``schedule``, ``status``, ``steps``) above the form."""
    condition_sets = condition_sets or {}
    for key, messages in exc.message_dict.items():
        reason = "; ".join(str(m) for m in messages)
        match = CONDITION_ERROR.match(key)
        base = match["base"] if match else key
        if base in condition_sets:
            conditions = condition_sets[base]
            if match and int(match["index"]) < len(conditions.rows):
                conditions.rows[int(match["index"])].error = reason
            else:
                conditions.error = reason
        elif base in form.fields and not form.fields[base].disabled:
            form.add_error(base, f"item {int(match['index']) + 1}: {reason}" if match else reason)
        elif base == "interval_days" and "smart_interval_days" in form.fields:
            form.add_error("smart_interval_days", reason)
        else:
            form.add_error(None, f"{key.replace('_', ' ')}: {reason}")
