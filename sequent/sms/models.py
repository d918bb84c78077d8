"""SMS: the outbox of text messages. The SMS issue adds providers and delivery."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from sequent.lib import clock


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

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="sms_once_per_enrollment_step"),
        ]
        indexes = [models.Index(fields=["status", "not_before"])]

    def __str__(self) -> str:
        return f"SMS to {self.to_number} ({self.status})"
