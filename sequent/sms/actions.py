"""Actions that change SMS state: the workspace's provider settings, inbound messages
(STOP / START keywords) and delivery status callbacks. Each runs in one transaction and
is idempotent on the provider's message id, since providers retry webhooks."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from sequent.crm.actions import do_record_activity
from sequent.crm.fields import normalize_phone
from sequent.crm.models import ActivityKind, Contact
from sequent.lib import clock
from sequent.sms.models import InboundSms, SmsMessage, SmsProviderKind, SmsSettings, SmsStatus, SmsStatusEvent

# The opt-out and opt-in keywords carriers and Twilio honour (compared upper-cased, trimmed).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})

OPTED_OUT_REASON = "contact opted out of SMS"

# Provider statuses -> ours; a later status never moves a message backwards.
_STATUS_MAP = {
    "accepted": SmsStatus.SENT,
    "queued": SmsStatus.SENT,
    "sending": SmsStatus.SENT,
    "sent": SmsStatus.SENT,
    "delivered": SmsStatus.DELIVERED,
    "undelivered": SmsStatus.FAILED,
    "failed": SmsStatus.FAILED,
}
_RANK = {SmsStatus.SENDING: 0, SmsStatus.SENT: 1, SmsStatus.DELIVERED: 2, SmsStatus.FAILED: 2}


def do_save_sms_settings(fields: dict[str, Any]) -> SmsSettings:
    """Save the workspace's provider settings; an auth token left out keeps the saved one."""
    with transaction.atomic():
        config, _ = SmsSettings.objects.select_for_update().get_or_create(pk=1)
        for name, value in fields.items():
            if name == "twilio_auth_token" and not value:
                continue
            setattr(config, name, value)
        if config.from_number:
            try:
                config.from_number = normalize_phone(config.from_number)
            except ValueError as exc:
                raise ValidationError({"from_number": str(exc)}) from None
        if config.provider == SmsProviderKind.TWILIO:
            if not config.twilio_account_sid or not config.twilio_auth_token:
                raise ValidationError(
                    {"twilio_auth_token": "Twilio needs the account SID and the auth token"}
                )
            if not config.from_number and not config.messaging_service_sid:
                raise ValidationError(
                    {"from_number": "Twilio needs a from number or a messaging service SID"}
                )
        if config.per_second_limit < 1:
            raise ValidationError({"per_second_limit": "at least 1 message per second"})
        config.updated_at = clock.now()
        config.save()
    return config


def keyword_action(body: str) -> str:
    """``opt_out``, ``opt_in`` or ``""`` for an inbound message's text."""
    word = body.strip().strip(".!").upper()
    if word in OPT_OUT_KEYWORDS:
        return "opt_out"
    if word in OPT_IN_KEYWORDS:
        return "opt_in"
    return ""


def do_record_inbound(sid: str, from_number: str, to_number: str, body: str) -> InboundSms | None:
    """Record a message a contact sent; STOP and its synonyms opt the number out (its
    queued messages are cancelled), START / UNSTOP / YES opt it back in. Returns None
    when this message id was already processed."""
    action = keyword_action(body)
    now = clock.now()
    try:
        # Contacts' mobiles are stored in E.164 (the CRM normalises them on write).
        from_number = normalize_phone(from_number)
    except ValueError:
        pass  # a short code or alphanumeric sender matches no contact; still recorded
    try:
        with transaction.atomic():
            contacts = list(Contact.objects.filter(mobile=from_number).order_by("pk"))
            inbound = InboundSms.objects.create(
                sid=sid,
                from_number=from_number,
                to_number=to_number,
                body=body,
                contact=contacts[0] if contacts else None,
                keyword_action=action,
                received_at=now,
            )
            ids = [c.pk for c in contacts]
            if action == "opt_out":
                Contact.objects.filter(pk__in=ids).update(sms_opt_out=True, updated_at=now)
                SmsMessage.objects.filter(contact_id__in=ids, status=SmsStatus.QUEUED).update(
                    status=SmsStatus.CANCELLED, last_error=OPTED_OUT_REASON
                )
            elif action == "opt_in":
                Contact.objects.filter(pk__in=ids).update(sms_opt_out=False, updated_at=now)
            for contact in contacts:
                do_record_activity(
                    contact, ActivityKind.SMS_RECEIVED, occurred_at=now, body=body, metadata={"sid": sid}
                )
    except IntegrityError:
        return None  # the provider retried a message already recorded
    return inbound


def do_apply_status(sid: str, status: str, error_code: str = "", error_message: str = "") -> bool:
    """Apply a delivery status callback to the message with provider id *sid*. A repeated
    (sid, status) is ignored; a status never moves a message backwards. Returns whether
    anything changed."""
    ours = _STATUS_MAP.get(status)
    try:
        with transaction.atomic():
            SmsStatusEvent.objects.create(sid=sid, status=status[:32], error_code=error_code[:16])
            message = SmsMessage.objects.select_for_update().filter(provider_message_id=sid).first()
            if message is None or ours is None:
                return False
            if (
                _RANK.get(SmsStatus(message.status), -1) >= _RANK[ours]
                and message.status != SmsStatus.SENDING
            ):
                return False
            changes: dict[str, Any] = {"status": ours}
            if ours == SmsStatus.FAILED:
                detail = error_message or "the carrier did not deliver the message"
                changes["last_error"] = f"{status}: {detail}" + (
                    f" (error {error_code})" if error_code else ""
                )
            SmsMessage.objects.filter(pk=message.pk).update(**changes)
    except IntegrityError:
        return False
    return True
