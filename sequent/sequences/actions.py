"""Actions that change sequences, steps and enrollments. The API and UI call these.

Each action validates its input (errors are ``ValidationError({field: reason})``,
conditions named by index, e.g. ``exit_conditions[2]``) and runs in one transaction.
Permission checks are the caller's (``sequent.users.access``); edits reach
enrollments in flight at the next run, because the engine reads steps at run time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max

from sequent.crm.conditions import ConditionError, validate_conditions
from sequent.crm.fields import normalize_email
from sequent.crm.models import RECORD_CONTACT, RECORD_TYPES, Contact, SavedView
from sequent.lib import clock
from sequent.mail.building import LINE_BREAKS
from sequent.mail.models import EmailTemplate, Mailbox
from sequent.sequences import schedule as sched
from sequent.sequences.exits import exit_enrollments
from sequent.sequences.models import (
    Enrollment,
    ExitReason,
    Sequence,
    SequenceContact,
    SequenceKind,
    SequenceStatus,
    Step,
    StepKind,
    ThreadMode,
)
from sequent.sequences.selection import is_email_clause, parse_email_clause

MAX_CLAUSES = 8
MAX_DAY = 3650
MAX_SMART_INTERVAL = 365
MAX_SMART_EXPIRY = 3650

SEQUENCE_FIELDS = (
    "name",
    "kind",
    "record_type",
    "audience_conditions",
    "audience_views",
    "prevent_duplicates",
    "exclusive",
    "send_time",
    "time_zone",
    "exclude_weekends",
    "holiday_country",
    "holiday_subdivision",
    "smart_interval_days",
    "smart_expiry_days",
    "exit_on_all_steps",
    "exit_on_reply",
    "exit_account_on_reply",
    "exit_on_unsubscribe",
    "exit_on_bounce",
    "exit_conditions",
    "mailbox",
)
SCHEDULE_FIELDS = (
    "send_time",
    "time_zone",
    "exclude_weekends",
    "holiday_country",
    "holiday_subdivision",
    "smart_interval_days",
)
BOOLEAN_FIELDS = (
    "prevent_duplicates",
    "exclusive",
    "exclude_weekends",
    "exit_on_all_steps",
    "exit_on_reply",
    "exit_account_on_reply",
    "exit_on_unsubscribe",
    "exit_on_bounce",
)
STEP_FIELDS = (
    "kind",
    "day",
    "conditions",
    "subject",
    "body",
    "template_id",
    "thread",
    "reply_to",
    "cc",
    "bcc",
    "track_opens",
    "track_clicks",
    "include_unsubscribe",
    "task_title",
    "task_notes",
    "sms_body",
)


class _Errors:
    """Collects field errors so one call reports every problem at once."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def add(self, field: str, reason: str) -> None:
        self.errors.setdefault(field, reason)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def _unknown(given: Iterable[str], allowed: Iterable[str], errors: _Errors) -> None:
    for name in sorted(set(given) - set(allowed)):
        errors.add(name, "unknown field")


def _check_conditions(
    field: str, record_type: str, clauses: Any, owner: Any, errors: _Errors, *, email_activity: bool = False
) -> None:
    """Validate a list of at most 8 clauses; errors name ``field[index]``."""
    if not isinstance(clauses, list):
        errors.add(field, "must be a list of conditions")
        return
    if len(clauses) > MAX_CLAUSES:
        errors.add(field, f"at most {MAX_CLAUSES} conditions, got {len(clauses)}")
        return
    for index, clause in enumerate(clauses):
        name = f"{field}[{index}]"
        if not isinstance(clause, Mapping):
            errors.add(name, "must be an object with field, op and value")
            continue
        if is_email_clause(clause):
            if not email_activity:
                errors.add(name, f"{clause.get('field')!r}: email activity conditions belong to steps")
                continue
            try:
                parse_email_clause(index, clause)
            except ValueError as exc:
                errors.add(name, str(exc))
            continue
        try:
            # One clause at a time, so the error names this clause's place in the full list.
            validate_conditions(record_type, [dict(clause)], user=owner)
        except ConditionError as exc:
            errors.add(name, _condition_reason(exc))


def _condition_reason(exc: ConditionError) -> str:
    # The index is already in the error's key ("conditions[2]"); say which field and why.
    return f"field {exc.field!r}: {exc.reason}" if exc.field else exc.reason


def _check_bool(field: str, value: Any, errors: _Errors) -> None:
    if not isinstance(value, bool):
        errors.add(field, "must be true or false")


def _check_int(field: str, value: Any, low: int, high: int, errors: _Errors) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.add(field, "must be a whole number")
    elif not low <= value <= high:
        errors.add(field, f"must be between {low} and {high}")


def _parse_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a time of day such as 09:30") from None


def _clean_sequence(owner: Any, values: dict[str, Any], current: Sequence | None) -> dict[str, Any]:
    """Validate and normalise sequence fields; returns the values to set."""
    errors = _Errors()
    _unknown(values, SEQUENCE_FIELDS, errors)
    clean: dict[str, Any] = {}
    if "name" in values:
        name = str(values["name"] or "").strip()
        if not name:
            errors.add("name", "a sequence needs a name")
        elif len(name) > 200:
            errors.add("name", "at most 200 characters")
        clean["name"] = name
    for field, choices in (("kind", SequenceKind.values), ("record_type", [k for k, _ in RECORD_TYPES])):
        if field in values:
            if values[field] not in choices:
                errors.add(field, f"must be one of {', '.join(choices)}")
            elif (
                current is not None
                and current.status != SequenceStatus.DRAFT
                and values[field] != getattr(current, field)
            ):
                errors.add(field, "can only change while the sequence is a draft")
            clean[field] = values[field]
    record_type = clean.get("record_type", current.record_type if current else RECORD_CONTACT)
    for field in BOOLEAN_FIELDS:
        if field in values:
            _check_bool(field, values[field], errors)
            clean[field] = values[field]
    for field in ("audience_conditions", "exit_conditions"):
        if field in values:
            _check_conditions(field, record_type, values[field], owner, errors)
            clean[field] = values[field]
    if "record_type" in clean and current is not None:
        for field in ("audience_conditions", "exit_conditions"):
            if field not in values:
                _check_conditions(field, record_type, getattr(current, field), owner, errors)
    if "audience_views" in values:
        ids = values["audience_views"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            errors.add("audience_views", "must be a list of saved view ids")
        else:
            views = {v.pk: v for v in SavedView.objects.filter(owner=owner, pk__in=ids)}
            for index, pk in enumerate(ids):
                view = views.get(pk)
                if view is None:
                    errors.add(f"audience_views[{index}]", f"no saved view {pk} of yours")
                elif view.record_type != record_type:
                    errors.add(
                        f"audience_views[{index}]",
                        f"view {view.name!r} lists {view.record_type} records; this sequence enrolls {record_type}s",
                    )
            clean["audience_views"] = list(views.values())
    if "send_time" in values:
        try:
            clean["send_time"] = _parse_time(values["send_time"])
        except ValueError as exc:
            errors.add("send_time", str(exc))
    for field in ("time_zone", "holiday_country", "holiday_subdivision"):
        if field in values:
            clean[field] = str(values[field] or "").strip()
            if field == "holiday_country":
                clean[field] = clean[field].upper()
    if "smart_interval_days" in values:
        _check_int("smart_interval_days", values["smart_interval_days"], 1, MAX_SMART_INTERVAL, errors)
        clean["smart_interval_days"] = values["smart_interval_days"]
    if "smart_expiry_days" in values:
        _check_int("smart_expiry_days", values["smart_expiry_days"], 1, MAX_SMART_EXPIRY, errors)
        clean["smart_expiry_days"] = values["smart_expiry_days"]
    if "mailbox" in values:
        mailbox = values["mailbox"]
        if mailbox is None:
            clean["mailbox"] = None
        else:
            pk = mailbox.pk if isinstance(mailbox, Mailbox) else mailbox
            found = Mailbox.objects.filter(owner=owner, pk=pk).first() if isinstance(pk, int) else None
            if found is None:
                errors.add("mailbox", f"no mailbox {pk} of yours")
            clean["mailbox"] = found
    errors.raise_if_any()
    if any(field in clean for field in SCHEDULE_FIELDS) or current is None:
        _check_schedule(current, clean)
    return clean


def _check_schedule(current: Sequence | None, clean: dict[str, Any]) -> None:
    probe = current if current is not None else Sequence()
    merged = dataclasses.replace(
        probe.schedule,
        **{
            name: clean[field]
            for field, name in (
                ("send_time", "send_time"),
                ("time_zone", "time_zone"),
                ("exclude_weekends", "exclude_weekends"),
                ("holiday_country", "holiday_country"),
                ("holiday_subdivision", "holiday_subdivision"),
            )
            if field in clean
        },
    )
    try:
        sched.validate_schedule(merged)
    except ValueError as exc:
        field, _, reason = str(exc).partition(": ")
        raise ValidationError({field if reason else "schedule": reason or str(exc)}) from None


def _editable(sequence: Sequence) -> None:
    if sequence.status == SequenceStatus.ARCHIVED:
        raise ValidationError({"status": "an archived sequence cannot be changed"})


def do_create_sequence(owner: Any, name: str, **fields: Any) -> Sequence:
    """Create a draft sequence owned by *owner*."""
    clean = _clean_sequence(owner, {"name": name, **fields}, None)
    views = clean.pop("audience_views", None)
    with transaction.atomic():
        sequence = Sequence.objects.create(owner=owner, **clean)
        if views:
            sequence.audience_views.set(views)
    return sequence


def do_update_sequence(sequence: Sequence, **changes: Any) -> Sequence:
    """Change a sequence's settings; schedule changes take effect from the next slot."""
    _editable(sequence)
    clean = _clean_sequence(sequence.owner, changes, sequence)
    views = clean.pop("audience_views", None)
    with transaction.atomic():
        for field, value in clean.items():
            setattr(sequence, field, value)
        sequence.updated_at = clock.now()
        if any(field in clean for field in SCHEDULE_FIELDS):
            sequence.next_run_at = None  # look at the schedule afresh
        sequence.save()
        if views is not None:
            sequence.audience_views.set(views)
    return sequence


# --- steps ----------------------------------------------------------------------


def _clean_addresses(field: str, value: Any, errors: _Errors) -> list[str]:
    if not isinstance(value, list):
        errors.add(field, "must be a list of email addresses")
        return []
    clean = []
    for index, address in enumerate(value):
        try:
            clean.append(normalize_email(str(address)))
        except ValueError as exc:
            errors.add(f"{field}[{index}]", str(exc))
    return [a for a in clean if a]


def _clean_step(sequence: Sequence, values: dict[str, Any], current: Step | None) -> dict[str, Any]:
    errors = _Errors()
    _unknown(values, STEP_FIELDS, errors)
    clean: dict[str, Any] = {}
    kind = values.get("kind", current.kind if current else None)
    if "kind" in values and kind not in StepKind.values:
        errors.add("kind", f"must be one of {', '.join(StepKind.values)}")
    if "kind" in values:
        clean["kind"] = kind
    if "day" in values:
        _check_int("day", values["day"], 1, MAX_DAY, errors)
        clean["day"] = values["day"]
    if "conditions" in values:
        _check_conditions(
            "conditions", RECORD_CONTACT, values["conditions"], sequence.owner, errors, email_activity=True
        )
        clean["conditions"] = values["conditions"]
    for field, limit in (("subject", 998), ("task_title", 255)):
        if field in values:
            clean[field] = str(values[field] or "")
            if len(clean[field]) > limit:
                errors.add(field, f"at most {limit} characters")
            elif any(char in LINE_BREAKS for char in clean[field]):
                errors.add(field, "must be one line (no line break)")
    for field in ("body", "task_notes", "sms_body"):
        if field in values:
            clean[field] = str(values[field] or "")
    if "template_id" in values:
        template_id = values["template_id"]
        if template_id is None:
            clean["template"] = None
        else:
            # Only the sequence owner's own templates: another user's id reads as unknown.
            template = EmailTemplate.objects.filter(owner=sequence.owner, pk=template_id).first()
            if template is None:
                errors.add("template_id", f"no email template {template_id!r} of yours")
            clean["template"] = template
    if "thread" in values:
        if values["thread"] not in ThreadMode.values:
            errors.add("thread", f"must be one of {', '.join(ThreadMode.values)}")
        clean["thread"] = values["thread"]
    if "reply_to" in values:
        try:
            clean["reply_to"] = normalize_email(str(values["reply_to"] or ""))
        except ValueError as exc:
            errors.add("reply_to", str(exc))
    for field in ("cc", "bcc"):
        if field in values:
            clean[field] = _clean_addresses(field, values[field], errors)
    for field in ("track_opens", "track_clicks", "include_unsubscribe"):
        if field in values:
            _check_bool(field, values[field], errors)
            clean[field] = values[field]
    merged = {
        name: clean.get(name, getattr(current, name) if current else "")
        for name in ("subject", "sms_body", "thread")
    }
    if kind == StepKind.SMS:
        if not merged["sms_body"].strip():
            errors.add("sms_body", "an SMS step needs a message")
        elif len(merged["sms_body"]) > 1600:
            errors.add("sms_body", "at most 1600 characters")
    has_template = clean["template"] is not None if "template" in clean else bool(current and current.template_id)
    if kind in (StepKind.EMAIL, StepKind.EMAIL_REMINDER) and merged["thread"] != ThreadMode.REPLY:
        if not merged["subject"].strip() and not has_template:
            errors.add("subject", "an email in a new thread needs a subject")
    errors.raise_if_any()
    return clean


def do_add_step(sequence: Sequence, kind: str, **fields: Any) -> Step:
    """Add a step at the end of the sequence."""
    _editable(sequence)
    clean = _clean_step(sequence, {"kind": kind, **fields}, None)
    with transaction.atomic():
        last = Step.objects.filter(sequence=sequence).live().aggregate(m=Max("position"))["m"]
        step = Step.objects.create(sequence=sequence, position=(last or 0) + 1, **clean)
        Sequence.objects.filter(pk=sequence.pk).update(updated_at=clock.now())
    return step


def do_update_step(step: Step, **changes: Any) -> Step:
    """Change a step; enrollments in flight see the change at their next run."""
    _editable(step.sequence)
    if step.deleted_at is not None:
        raise ValidationError({"step": "this step was deleted"})
    clean = _clean_step(step.sequence, changes, step)
    with transaction.atomic():
        for field, value in clean.items():
            setattr(step, field, value)
        step.updated_at = clock.now()
        step.save()
    return step


def do_reorder_steps(sequence: Sequence, step_ids: list[int]) -> list[Step]:
    """Put the sequence's live steps in the order of *step_ids* (each exactly once)."""
    _editable(sequence)
    live = {s.pk: s for s in Step.objects.filter(sequence=sequence).live()}
    if sorted(step_ids) != sorted(live) or len(set(step_ids)) != len(step_ids):
        raise ValidationError({"step_ids": f"must list each of this sequence's steps once: {sorted(live)}"})
    with transaction.atomic():
        for position, pk in enumerate(step_ids, start=1):
            live[pk].position = position
        Step.objects.bulk_update(live.values(), ["position"])
    return [live[pk] for pk in step_ids]


def do_delete_step(step: Step) -> None:
    """Remove a step from the sequence. Its history (executions, messages) stays."""
    _editable(step.sequence)
    with transaction.atomic():
        Step.objects.filter(pk=step.pk).update(deleted_at=clock.now())
        step.deleted_at = clock.now()
        # Keep the remaining positions 1..n.
        remaining = list(Step.objects.filter(sequence_id=step.sequence_id).live())
        for position, other in enumerate(remaining, start=1):
            other.position = position
        Step.objects.bulk_update(remaining, ["position"])


# --- status -----------------------------------------------------------------------


def _check_status(sequence: Sequence, allowed_from: tuple[str, ...], verb: str) -> None:
    if sequence.status not in allowed_from:
        raise ValidationError({"status": f"a {sequence.status} sequence cannot be {verb}"})


def do_activate(sequence: Sequence) -> Sequence:
    """Start a draft sequence. Its first run is the first slot after now."""
    _check_status(sequence, (SequenceStatus.DRAFT,), "activated")
    if not Step.objects.filter(sequence=sequence).live().exists():
        raise ValidationError({"steps": "add at least one step before activating"})
    now = clock.now()
    with transaction.atomic():
        daily = dataclasses.replace(sequence.schedule, interval_days=1)
        sequence.anchor_date = sched.next_slot(daily, now)[0]
        sequence.status = SequenceStatus.ACTIVE
        sequence.activated_at = now
        sequence.runs_from = now
        sequence.next_run_at = None
        sequence.updated_at = now
        sequence.save()
    return sequence


def do_pause(sequence: Sequence) -> Sequence:
    """Pause a sequence: no runs until resumed; every enrollment keeps its place."""
    _check_status(sequence, (SequenceStatus.ACTIVE,), "paused")
    with transaction.atomic():
        sequence.status = SequenceStatus.PAUSED
        sequence.updated_at = clock.now()
        sequence.save(update_fields=["status", "updated_at"])
        # Enrollments a run marked but no worker has taken yet give that run back.
        Enrollment.objects.filter(sequence=sequence, next_due_at__isnull=False, claimed_by="").update(
            next_due_at=None, run_count=F("run_count") - 1
        )
    return sequence


def do_resume(sequence: Sequence) -> Sequence:
    """Resume a paused sequence: runs start again at the next slot after now, and
    each enrollment goes on from where it was (its schedule slides by the pause)."""
    _check_status(sequence, (SequenceStatus.PAUSED,), "resumed")
    now = clock.now()
    with transaction.atomic():
        sequence.status = SequenceStatus.ACTIVE
        sequence.runs_from = now
        sequence.next_run_at = None
        sequence.updated_at = now
        sequence.save(update_fields=["status", "runs_from", "next_run_at", "updated_at"])
    return sequence


def do_archive(sequence: Sequence) -> Sequence:
    """Archive a sequence: every enrollment in flight exits (reason archived) and its
    pending messages are cancelled."""
    _check_status(sequence, (SequenceStatus.DRAFT, SequenceStatus.ACTIVE, SequenceStatus.PAUSED), "archived")
    now = clock.now()
    with transaction.atomic():
        sequence.status = SequenceStatus.ARCHIVED
        sequence.updated_at = now
        sequence.save(update_fields=["status", "updated_at"])
        exit_enrollments(Enrollment.objects.filter(sequence=sequence), ExitReason.ARCHIVED, now)
    return sequence


# --- audience by hand -------------------------------------------------------------


def do_add_contacts(sequence: Sequence, contact_ids: Iterable[int]) -> int:
    """Add contacts to the audience by hand; they enroll at the sequence's next run.
    Returns how many were new to the audience."""
    _editable(sequence)
    given = list(contact_ids)
    # Checked before de-duplicating: a list or an object in the list is not hashable.
    if any(isinstance(i, bool) or not isinstance(i, int) for i in given):
        raise ValidationError({"contact_ids": "must be a list of contact ids"})
    ids = list(dict.fromkeys(given))
    found = set(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [i for i in ids if i not in found]
    if missing:
        raise ValidationError({"contact_ids": f"no contact with id {', '.join(map(str, missing[:10]))}"})
    with transaction.atomic():
        before = SequenceContact.objects.filter(sequence=sequence).count()
        SequenceContact.objects.bulk_create(
            [SequenceContact(sequence=sequence, contact_id=pk) for pk in ids], ignore_conflicts=True
        )
        return SequenceContact.objects.filter(sequence=sequence).count() - before


def do_remove_enrollment(enrollment: Enrollment) -> Enrollment:
    """Take a contact out of a sequence by hand (reason removed); it does not re-enroll."""
    with transaction.atomic():
        left = exit_enrollments(Enrollment.objects.filter(pk=enrollment.pk), ExitReason.REMOVED, clock.now())
        if not left:
            raise ValidationError({"status": f"this enrollment is already {enrollment.status}"})
        enrollment.refresh_from_db()
    return enrollment


def do_delete_sequence(sequence: Sequence) -> None:
    """Delete *sequence*, its steps, enrollments, outbox rows and tasks.

    Only drafts and archived sequences: archiving first exits every enrollment and
    cancels its pending messages, so nothing is deleted under a worker's feet.
    """
    if sequence.status not in (SequenceStatus.DRAFT, SequenceStatus.ARCHIVED):
        raise ValidationError({"status": f"a {sequence.status} sequence cannot be deleted; archive it first"})
    with transaction.atomic():
        deleted, _ = Sequence.objects.filter(pk=sequence.pk, status=sequence.status).delete()
    if not deleted:
        # Its status changed since it was read (e.g. activated in another tab).
        raise ValidationError({"status": "the sequence changed meanwhile; reload it and try again"})
