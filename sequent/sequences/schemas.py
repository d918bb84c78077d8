"""Request and response shapes of the sequences API (see docs/SEQUENCES_API.md).

Input schemas refuse unknown keys and only check shapes; the actions in
``sequent.sequences.actions`` check meaning (conditions, schedule, addresses) and
name the field in every error, e.g. ``audience_conditions[2]`` or ``time_zone``.
Conditions are typed loosely here (``list[Any]``) so that a malformed clause is
reported by the action under its index rather than by the schema.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from django.core.exceptions import ObjectDoesNotExist
from ninja import Field, Schema

from sequent.crm.schemas import StrictIn
from sequent.lib import clock
from sequent.sequences import schedule as sched
from sequent.sequences.metrics import SEQUENCE_COUNTS
from sequent.sequences.models import Sequence, SequenceMetrics, SequenceStatus

SequenceKindName = Literal["classic", "smart"]
RecordTypeName = Literal["contact", "account"]
SequenceStatusName = Literal["draft", "active", "paused", "archived"]
StepKindName = Literal["email", "email_reminder", "follow_up", "call_reminder", "sms"]
EnrollmentStatusName = Literal["active", "paused", "completed", "exited"]

CONDITIONS_HELP = 'at most 8 clauses, all of which must hold, e.g. [{"field": "job_title", "op": "contains", "value": "CEO"}]'


def time_text(value: dt.time) -> str:
    """A send time as a rep writes it: ``09:30`` (seconds only when set)."""
    return value.isoformat(timespec="minutes" if not value.second else "seconds")


def next_run_at(sequence: Sequence) -> dt.datetime | None:
    """The instant of the sequence's next slot after now, while it is active."""
    if sequence.status != SequenceStatus.ACTIVE:
        return None
    try:
        return sched.next_slot(sequence.schedule, clock.now(), anchor=sequence.anchor_date)[1]
    except ValueError:
        return None


# --- sequences ----------------------------------------------------------------------------


class SequenceFields(StrictIn):
    """The settings of a sequence; on PATCH only the fields sent change."""

    name: str = Field("", max_length=200)
    kind: SequenceKindName = Field("classic", description="can only change while the sequence is a draft")
    record_type: RecordTypeName = Field(
        "contact", description="can only change while the sequence is a draft"
    )
    audience_conditions: list[Any] = Field(default_factory=list, description=CONDITIONS_HELP)
    audience_views: list[Any] = Field(
        default_factory=list,
        description="ids of your saved views; a record in any of them (and matching the conditions) enrolls",
    )
    prevent_duplicates: bool = Field(False, description="skip a contact whose email is already enrolled here")
    exclusive: bool = Field(False, description="skip a contact active in another sequence")
    send_time: str = Field("09:00", description="local wall-clock time of the daily run, e.g. 09:30")
    time_zone: str = Field("UTC", description="IANA zone of the send time, e.g. America/New_York")
    exclude_weekends: bool = True
    holiday_country: str = Field(
        "", description="skip this country's public holidays (ISO code: US, GB, DE ...)"
    )
    holiday_subdivision: str = Field("", description="and those of this state or region (CA, SCT ...)")
    smart_interval_days: int = Field(1, description="smart sequences run every N run days")
    smart_expiry_days: int = Field(90, description="a smart enrollment leaves after this many days")
    exit_on_all_steps: bool = True
    exit_on_reply: bool = True
    exit_account_on_reply: bool = Field(
        False, description="a reply from any contact of an account exits every contact of that account"
    )
    exit_on_unsubscribe: bool = True
    exit_on_bounce: bool = True
    exit_conditions: list[Any] = Field(
        default_factory=list, description="property conditions that take a contact out"
    )
    mailbox: int | None = Field(None, description="id of one of your mailboxes (null: none)")


class SequenceIn(SequenceFields):
    name: str = Field(max_length=200)


class SequencePatch(SequenceFields):
    pass


class SequenceSummaryOut(Schema):
    """A sequence in a list: its status and how it is doing."""

    id: int
    name: str
    status: str
    kind: str
    record_type: str
    step_count: int = Field(description="number of steps")
    enrolled: int = Field(description="contacts ever enrolled")
    active: int = Field(description="enrollments in progress")
    reply_rate: float = Field(description="replies per email sent, 0..1, as of the last run")
    next_run_at: dt.datetime | None = Field(description="the next scheduled run after now, while active")
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_step_count(obj: Sequence) -> int:
        return int(getattr(obj, "step_count", 0) or 0)

    @staticmethod
    def resolve_enrolled(obj: Sequence) -> int:
        return int(getattr(obj, "enrolled_count", 0) or 0)

    @staticmethod
    def resolve_active(obj: Sequence) -> int:
        return int(getattr(obj, "active_count", 0) or 0)

    @staticmethod
    def resolve_next_run_at(obj: Sequence) -> dt.datetime | None:
        return next_run_at(obj)

    @staticmethod
    def resolve_reply_rate(obj: Sequence) -> float:
        try:
            metrics = obj.metrics
        except ObjectDoesNotExist:
            return 0.0
        return metrics.rates()["reply_rate"]


class StepOut(Schema):
    id: int
    position: int = Field(description="1-based place in the sequence")
    kind: str
    day: int = Field(description="classic: the enrollment's run (1 = first) on which the step is due")
    conditions: list[Any]
    subject: str
    body: str
    template_id: int | None
    thread: str
    reply_to: str
    cc: list[str]
    bcc: list[str]
    track_opens: bool
    track_clicks: bool
    include_unsubscribe: bool
    task_title: str
    task_notes: str
    sms_body: str
    created_at: dt.datetime
    updated_at: dt.datetime


class SequenceOut(SequenceSummaryOut):
    """A sequence whole: settings, counts and steps."""

    audience_conditions: list[Any]
    audience_views: list[int]
    prevent_duplicates: bool
    exclusive: bool
    send_time: str
    time_zone: str
    exclude_weekends: bool
    holiday_country: str
    holiday_subdivision: str
    smart_interval_days: int
    smart_expiry_days: int
    exit_on_all_steps: bool
    exit_on_reply: bool
    exit_account_on_reply: bool
    exit_on_unsubscribe: bool
    exit_on_bounce: bool
    exit_conditions: list[Any]
    mailbox: int | None
    activated_at: dt.datetime | None
    steps: list[StepOut] = Field(description="the steps, in order")

    @staticmethod
    def resolve_audience_views(obj: Sequence) -> list[int]:
        return sorted(view.pk for view in obj.audience_views.all())

    @staticmethod
    def resolve_send_time(obj: Sequence) -> str:
        return time_text(obj.send_time)

    @staticmethod
    def resolve_mailbox(obj: Sequence) -> int | None:
        return obj.mailbox_id

    @staticmethod
    def resolve_steps(obj: Sequence) -> list[Any]:
        return list(getattr(obj, "live_steps", []))


# --- steps ----------------------------------------------------------------------------------


class StepFields(StrictIn):
    """The settings of a step; on PATCH only the fields sent change."""

    kind: StepKindName = "email"
    day: int = Field(1, description="classic: the enrollment's run (1 = first) on which the step is due")
    conditions: list[Any] = Field(
        default_factory=list,
        description=CONDITIONS_HELP
        + '; email activity: {"field": "email.opened", "op": "is_true", "value": null, "of": "previous"}',
    )
    subject: str = Field("", description="email: the subject (required in a new thread)")
    body: str = Field("", description="email: the body template")
    template_id: int | None = Field(
        None, description="email: one of your email templates, sent instead of subject and body"
    )
    thread: Literal["new", "reply"] = Field(
        "new", description="email: new thread, or reply to the previous email step"
    )
    reply_to: str = ""
    cc: list[Any] = Field(default_factory=list)
    bcc: list[Any] = Field(default_factory=list)
    track_opens: bool = True
    track_clicks: bool = True
    include_unsubscribe: bool = True
    task_title: str = Field("", description="task and reminder title; {name} is the contact's name")
    task_notes: str = ""
    sms_body: str = Field("", description="SMS: the message")


class StepIn(StepFields):
    kind: StepKindName


class StepPatch(StepFields):
    pass


class ReorderIn(StrictIn):
    step_ids: list[int] = Field(description="every step id of the sequence, each once, in the new order")


# --- audience and enrollments ---------------------------------------------------------------


class ContactBrief(Schema):
    id: int
    first_name: str
    last_name: str
    email: str


class PreviewOut(Schema):
    would_enroll: int = Field(description="contacts the next run would enroll, checked now")
    audience: int = Field(description="contacts in the audience, enrolled or not")
    sample: list[ContactBrief] = Field(description="up to 10 of those who would enroll, oldest first")


class EnrollmentOut(Schema):
    id: int
    contact: ContactBrief
    status: str
    exit_reason: str
    enrolled_at: dt.datetime
    enrolled_on: dt.date | None = Field(description="the local date of the first run, in the sequence's zone")
    run_count: int = Field(description="runs this enrollment took part in")
    last_run_date: dt.date | None
    paused_until: dt.datetime | None
    completed_at: dt.datetime | None
    exited_at: dt.datetime | None


class AddContactsIn(StrictIn):
    contact_ids: list[Any] = Field(
        description="contacts to add to the audience by hand", min_length=1, max_length=10000
    )


class AddContactsOut(Schema):
    added: int = Field(description="contacts new to the audience")
    enrolls_at: dt.datetime | None = Field(
        description="the next run, when they enroll unless an exit criterion or exclusivity keeps them out"
    )


# --- timeline ---------------------------------------------------------------------------------


class EventOut(Schema):
    kind: str
    occurred_at: dt.datetime


class ProducedOut(Schema):
    type: Literal["email", "task", "sms"]
    id: int
    status: str
    to: str
    subject: str
    message_id: str
    title: str
    due_at: dt.datetime | None
    not_before: dt.datetime | None
    sent_at: dt.datetime | None
    last_error: str
    reason_code: str = Field(description="email: why it is deferred, cancelled or failed, as a code")
    events: list[EventOut]


class TimelineEntryOut(Schema):
    step_id: int
    position: int
    kind: str
    day: int
    deleted: bool = Field(description="the step was deleted after this enrollment went through it")
    state: Literal["executed", "skipped", "failed", "deferred", "cancelled", "due", "waiting", "not_reached"]
    reason: str = Field(description="what happened and why, or what it waits for")
    at: dt.datetime | None = Field(description="when it happened, or when it is expected")
    run_date: dt.date | None = Field(description="the local date of the run that decided it")
    produced: list[ProducedOut]


class TimelineOut(Schema):
    enrollment: EnrollmentOut
    next_run_at: dt.datetime | None = Field(description="the next run this enrollment takes part in")
    expires_on: dt.date | None = Field(description="smart sequences: the date the enrollment expires")
    entries: list[TimelineEntryOut]


# --- metrics -----------------------------------------------------------------------------------


class StepMetricsOut(Schema):
    step_id: int
    position: int
    kind: str
    deleted: bool
    counts: dict[str, int]
    rates: dict[str, float]


class MetricsOut(Schema):
    refreshed_at: dt.datetime | None = Field(description="the end of the last run; null before the first")
    counts: dict[str, int] = Field(
        description="enrolled, active, paused, completed, exited, executed, sent ..."
    )
    exited_by_reason: dict[str, int]
    rates: dict[str, float] = Field(
        description="0..1; email rates per email sent, completion and exit per enrolled"
    )
    steps: list[StepMetricsOut]


def metrics_counts(metrics: SequenceMetrics) -> dict[str, int]:
    """The counters of a sequence's metrics as a plain mapping."""
    return {name: getattr(metrics, name) for name in SEQUENCE_COUNTS}
