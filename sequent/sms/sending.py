"""The SMS sender: claims due queued messages within the workspace's per-second limit,
renders each body (Liquid), normalises the number to E.164 and hands it to the provider.

``send_due(worker_id)`` does one unit of work and says whether it found any, so the
worker loop and ``sequent send_sms_due`` can both drive it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction

from sequent.crm.actions import do_record_activity
from sequent.crm.fields import normalize_phone
from sequent.crm.models import ActivityKind
from sequent.lib import clock
from sequent.mail import templating, tracking
from sequent.mail.delivery import render_context
from sequent.sms.actions import OPTED_OUT_REASON
from sequent.sms.models import SmsMessage, SmsStatus
from sequent.sms.providers import SmsSendError, load_settings, provider_for
from sequent.sms.segments import count_segments

RETRY_DELAY = dt.timedelta(minutes=5)
# A claim older than this belongs to a worker that stopped mid-send.
LEASE = dt.timedelta(minutes=15)
UNCERTAIN_REASON = "uncertain: the sender stopped while handing this message to the provider; not resent"
WINDOW = dt.timedelta(seconds=1)


def sms_context(message: SmsMessage) -> dict[str, Any]:
    """The Liquid context of one SMS: the same placeholders as an email, without a mailbox."""
    sequence = message.enrollment.sequence if message.enrollment is not None else None
    return render_context(message.contact, message.owner, None, sequence, None)


def status_callback_url() -> str:
    """Where the provider posts delivery statuses."""
    return f"{tracking.base_url()}/webhooks/twilio/status/"


def _claim(worker_id: str, now: dt.datetime, limit: int) -> list[SmsMessage]:
    """Conditionally claim up to the room left in this second: the per-second limit counts
    every attempt of the last second, across workers."""
    with transaction.atomic():
        recent = SmsMessage.objects.filter(attempted_at__gt=now - WINDOW, attempted_at__lte=now).count()
        room = min(limit, load_settings().per_second_limit - recent)
        if room <= 0:
            return []
        ids = list(
            SmsMessage.objects.filter(status=SmsStatus.QUEUED, not_before__lte=now)
            .order_by("not_before", "pk")
            .values_list("pk", flat=True)[:room]
        )
        SmsMessage.objects.filter(pk__in=ids, status=SmsStatus.QUEUED).update(
            status=SmsStatus.SENDING, claimed_by=worker_id, attempted_at=now
        )
    return list(
        SmsMessage.objects.filter(
            pk__in=ids, status=SmsStatus.SENDING, claimed_by=worker_id, attempted_at=now
        )
        .select_related("owner", "enrollment__sequence", "contact__account")
        .prefetch_related("contact__tags")
        .order_by("not_before", "pk")
    )


def _fail(message: SmsMessage, reason: str, status: str = SmsStatus.FAILED) -> None:
    SmsMessage.objects.filter(pk=message.pk).update(status=status, last_error=reason, claimed_by="")


def _send_one(provider: Any, message: SmsMessage, now: dt.datetime) -> None:
    contact = message.contact
    if contact.sms_opt_out:
        _fail(message, OPTED_OUT_REASON, SmsStatus.CANCELLED)
        return
    try:
        to_number = normalize_phone(message.to_number or contact.mobile, contact.country)
    except ValueError as exc:
        _fail(message, f"to_number: {exc}")
        return
    try:
        body = templating.render_text(message.body, sms_context(message))
    except templating.TemplateRenderError as exc:
        _fail(message, f"body {exc.message}")
        return
    segments = count_segments(body).segments
    try:
        result = provider.send(to_number, body, status_callback_url())
    except SmsSendError as exc:
        if exc.permanent:
            SmsMessage.objects.filter(pk=message.pk).update(
                status=SmsStatus.FAILED,
                last_error=str(exc),
                to_number=to_number,
                body=body,
                segments=segments,
            )
        else:
            SmsMessage.objects.filter(pk=message.pk).update(
                status=SmsStatus.QUEUED, last_error=str(exc), not_before=now + RETRY_DELAY, claimed_by=""
            )
        return
    status = SmsStatus.DELIVERED if result.status == "delivered" else SmsStatus.SENT
    with transaction.atomic():
        SmsMessage.objects.filter(pk=message.pk).update(
            status=status,
            provider_message_id=result.sid,
            sent_at=now,
            to_number=to_number,
            body=body,
            segments=segments,
            last_error="",
        )
        do_record_activity(
            contact,
            ActivityKind.SMS_SENT,
            user=message.owner,
            occurred_at=now,
            body=body,
            metadata={"sms_id": message.pk, "sid": result.sid},
        )


def recover_stale(now: dt.datetime) -> int:
    """Messages left ``sending`` past the lease fail as uncertain: the provider may have
    accepted them, and a text sent twice is worse than one a rep resends by hand."""
    return SmsMessage.objects.filter(status=SmsStatus.SENDING, attempted_at__lt=now - LEASE).update(
        status=SmsStatus.FAILED, last_error=UNCERTAIN_REASON, claimed_by=""
    )


def send_due(worker_id: str, limit: int = 50) -> bool:
    """Send one batch of due SMS; False when nothing was due or this second's room is used."""
    now = clock.now()
    recover_stale(now)
    batch = _claim(worker_id, now, limit)
    if not batch:
        return False
    config = load_settings()
    try:
        provider = provider_for(config)
    except SmsSendError as exc:
        # A half-configured provider: the messages wait (and say why) until it is fixed.
        SmsMessage.objects.filter(pk__in=[m.pk for m in batch]).update(
            status=SmsStatus.QUEUED, last_error=str(exc), not_before=now + RETRY_DELAY, claimed_by=""
        )
        return True
    for message in batch:
        _send_one(provider, message, now)
    return True
