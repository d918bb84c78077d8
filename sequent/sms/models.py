"""SMS: the outbox of text messages, the workspace's provider settings, what the
development provider recorded, inbound messages and provider status events."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from sequent.lib import clock
from sequent.lib.crypto import EncryptedTextField


class SmsStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class SmsMessage(models.Model):
    """One text message to a contact, a row before it leaves."""

    owner_lookup = "owner"

    enrollment = models.ForeignKey(
        "sequences.Enrollment", null=True, blank=True, on_delete=models.CASCADE, related_name="sms_messages"
    )
    step = models.ForeignKey(
        "sequences.Step", null=True, blank=True, on_delete=models.SET_NULL, related_name="sms_messages"
    )
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="sms_messages")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sms_messages")
    to_number = models.CharField(max_length=20, help_text="E.164")
    body = models.TextField()
    status = models.CharField(max_length=16, choices=SmsStatus.choices, default=SmsStatus.QUEUED)
    provider_message_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    not_before = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Filled when the body is rendered at send time.
    segments = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    # When a send was last tried: the per-second limit counts these.
    attempted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="sms_once_per_enrollment_step"),
        ]
        indexes = [
            models.Index(fields=["status", "not_before"]),
            models.Index(fields=["provider_message_id"]),
            models.Index(fields=["attempted_at"]),
        ]

    def __str__(self) -> str:
        return f"SMS to {self.to_number} ({self.status})"


class SmsProviderKind(models.TextChoices):
    DEVELOPMENT = "development", "Development (records messages, sends nothing)"
    TWILIO = "twilio", "Twilio"


class SmsSettings(models.Model):
    """The workspace's SMS provider: one row (pk 1); absent means the development provider."""

    provider = models.CharField(
        max_length=16, choices=SmsProviderKind.choices, default=SmsProviderKind.DEVELOPMENT
    )
    twilio_account_sid = models.CharField(max_length=64, blank=True, default="")
    twilio_auth_token = EncryptedTextField(blank=True, default="")
    from_number = models.CharField(max_length=20, blank=True, default="", help_text="E.164")
    messaging_service_sid = models.CharField(max_length=64, blank=True, default="")
    # Sending is limited per workspace per second (Twilio queues beyond about 1/s per long code).
    per_second_limit = models.PositiveSmallIntegerField(default=1)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"SMS settings ({self.provider})"


class RecordedSms(models.Model):
    """A message the development provider 'sent': shown in the app instead of leaving."""

    sid = models.CharField(max_length=64, unique=True)
    to_number = models.CharField(max_length=20)
    from_number = models.CharField(max_length=20, blank=True, default="")
    body = models.TextField()
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"recorded SMS to {self.to_number}"


class InboundSms(models.Model):
    """A text message a contact sent us; the provider's message id makes it idempotent."""

    sid = models.CharField(max_length=64, unique=True)
    from_number = models.CharField(max_length=20)
    to_number = models.CharField(max_length=20, blank=True, default="")
    body = models.TextField(blank=True)
    contact = models.ForeignKey(
        "crm.Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="inbound_sms"
    )
    # "opt_out", "opt_in" or "" for an ordinary message.
    keyword_action = models.CharField(max_length=8, blank=True, default="")
    received_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"SMS from {self.from_number}"


class SmsStatusEvent(models.Model):
    """One delivery status callback, kept once per (message id, status)."""

    sid = models.CharField(max_length=64)
    status = models.CharField(max_length=32)
    error_code = models.CharField(max_length=16, blank=True, default="")
    received_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()
        constraints = [models.UniqueConstraint(fields=["sid", "status"], name="sms_status_event_once")]

    def __str__(self) -> str:
        return f"{self.sid} {self.status}"
