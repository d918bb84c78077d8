"""Tasks and reminders in a rep's activities dashboard. The tasks issue adds the
dashboard, completion and call outcomes."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from sequent.lib import clock


class TaskKind(models.TextChoices):
    FOLLOW_UP = "follow_up", "Follow-up task"
    CALL_REMINDER = "call_reminder", "Call reminder"
    EMAIL_REMINDER = "email_reminder", "Email reminder"


class TaskStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    SKIPPED = "skipped", "Skipped"


class CallOutcome(models.TextChoices):
    CONNECTED = "connected", "Connected"
    LEFT_VOICEMAIL = "left_voicemail", "Left voicemail"
    NO_ANSWER = "no_answer", "No answer"
    WRONG_NUMBER = "wrong_number", "Wrong number"
    BUSY = "busy", "Busy"


class Task(models.Model):
    """Something a rep has to do for a contact, usually created by a sequence step."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tasks")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="tasks")
    enrollment = models.ForeignKey(
        "sequences.Enrollment", null=True, blank=True, on_delete=models.CASCADE, related_name="tasks"
    )
    step = models.ForeignKey(
        "sequences.Step", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    # The draft an email reminder asks the rep to personalise and send.
    message = models.ForeignKey(
        "mail.OutboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    title = models.CharField(max_length=255)
    notes = models.TextField(blank=True)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    created_at = models.DateTimeField(default=clock.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    # The call outcome a rep chose when completing a call reminder.
    outcome = models.CharField(max_length=16, choices=CallOutcome.choices, blank=True, default="")
    snoozed_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="task_once_per_enrollment_step"),
        ]
        indexes = [models.Index(fields=["owner", "status", "due_at"])]

    def __str__(self) -> str:
        return self.title
