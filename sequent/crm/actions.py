"""Actions that change CRM state. Views, API and CLI call these; nothing else writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from sequent.crm.models import Activity, ActivityKind, ActivityType, Contact, LastContactedMode
from sequent.lib import clock

# What each kind of activity does to the contact's last-contacted fields:
# (mode it sets or None, last activity type it sets or None, whether it counts as contact).
_EFFECTS: dict[str, tuple[str | None, str | None, bool]] = {
    ActivityKind.EMAIL_SENT: (LastContactedMode.NO_REPLY, None, True),
    ActivityKind.EMAIL_OPENED: (LastContactedMode.OPENED, None, False),
    ActivityKind.EMAIL_CLICKED: (LastContactedMode.OPENED, None, False),
    ActivityKind.EMAIL_REPLIED: (LastContactedMode.REPLIED, None, True),
    ActivityKind.EMAIL_BOUNCED: (None, None, False),
    ActivityKind.CALL_INCOMING: (LastContactedMode.INCOMING_CALL, "Call", True),
    ActivityKind.CALL_OUTGOING: (LastContactedMode.OUTGOING_CALL, "Call", True),
    ActivityKind.CHAT: (LastContactedMode.CHAT, "Chat", True),
    ActivityKind.MEETING: (LastContactedMode.SALES_ACTIVITY, "Meeting", True),
    ActivityKind.SMS_SENT: (None, "SMS", True),
    ActivityKind.SMS_RECEIVED: (None, None, False),
    ActivityKind.TASK: (None, "Task", False),
    ActivityKind.NOTE: (None, None, False),
    ActivityKind.CUSTOM: (LastContactedMode.SALES_ACTIVITY, None, True),
}


def contact_field_changes(
    contact: Contact, kind: str, occurred_at: dt.datetime, custom_type: ActivityType | None = None
) -> dict[str, Any]:
    """The last-contacted field values an activity of *kind* sets on *contact* (pure).

    Rules (docs/CRM.md): an activity older than the contact's last contact does not
    rewind the fields; an open or click never downgrades "Replied"; a custom sales
    activity sets "Sales Activity" and its own type name.
    """
    mode, activity_type, counts_as_contact = _EFFECTS[kind]
    if kind == ActivityKind.CUSTOM and custom_type is not None:
        activity_type = custom_type.name
    changes: dict[str, Any] = {}
    if contact.last_contacted_at is not None and occurred_at < contact.last_contacted_at:
        return changes
    if mode is not None:
        opened_like = mode == LastContactedMode.OPENED
        if not (opened_like and contact.last_contacted_mode == LastContactedMode.REPLIED):
            if contact.last_contacted_mode != mode:
                changes["last_contacted_mode"] = mode
    if activity_type is not None and contact.last_activity_type != activity_type:
        changes["last_activity_type"] = activity_type
    if counts_as_contact or "last_contacted_mode" in changes:
        changes["last_contacted_at"] = occurred_at
    return changes


def do_record_activity(
    contact: Contact,
    kind: str,
    *,
    user: Any = None,
    custom_type: ActivityType | None = None,
    occurred_at: dt.datetime | None = None,
    subject: str = "",
    body: str = "",
    outcome: str = "",
    metadata: dict[str, Any] | None = None,
) -> Activity:
    """Record an activity and update the contact's last-contacted fields by the DESIGN rules."""
    if kind not in ActivityKind.values:
        raise ValueError(f"kind: unknown activity kind {kind!r}")
    if kind == ActivityKind.CUSTOM and custom_type is None:
        raise ValueError("custom_type: a custom sales activity needs its type (Lunch, Coffee ...)")
    occurred_at = occurred_at or clock.now()
    with transaction.atomic():
        locked = Contact.objects.select_for_update().get(pk=contact.pk)
        activity = Activity.objects.create(
            contact=locked,
            user=user,
            kind=kind,
            custom_type=custom_type,
            occurred_at=occurred_at,
            subject=subject[:255],
            body=body,
            outcome=outcome[:64],
            metadata=metadata or {},
        )
        changes = contact_field_changes(locked, kind, occurred_at, custom_type)
        if changes:
            changes["updated_at"] = clock.now()
            Contact.objects.filter(pk=locked.pk).update(**changes)
            for field, value in changes.items():
                setattr(contact, field, value)
    return activity
