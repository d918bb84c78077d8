"""Sales sequences, their steps, the contacts enrolled in them, and the record of each run.

The CRM condition compiler relies on ``Sequence.name``, ``Sequence.owner`` and
``Enrollment.contact/sequence/status``. How runs use these rows: docs/ENGINE.md.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q

from sequent.crm.models import RECORD_CONTACT, RECORD_TYPES
from sequent.lib import clock

if TYPE_CHECKING:
    from sequent.sequences.schedule import Schedule


class SequenceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class SequenceKind(models.TextChoices):
    CLASSIC = "classic", "Classic"
    SMART = "smart", "Smart"


def _default_send_time() -> dt.time:
    return dt.time(9, 0)


class Sequence(models.Model):
    """A multi-step outreach plan owned by one user."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sequences")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=SequenceStatus.choices, default=SequenceStatus.DRAFT)
    kind = models.CharField(max_length=16, choices=SequenceKind.choices, default=SequenceKind.CLASSIC)
    record_type = models.CharField(max_length=16, choices=RECORD_TYPES, default=RECORD_CONTACT)

    # Audience: (any of the views) AND (all the conditions), plus the contacts added by hand.
    audience_conditions = models.JSONField(default=list, blank=True)
    audience_views = models.ManyToManyField("crm.SavedView", blank=True, related_name="sequences")
    prevent_duplicates = models.BooleanField(default=False)
    exclusive = models.BooleanField(default=False)

    # Schedule (see sequent/sequences/schedule.py).
    send_time = models.TimeField(default=_default_send_time)
    time_zone = models.CharField(max_length=64, default="UTC")
    exclude_weekends = models.BooleanField(default=True)
    holiday_country = models.CharField(max_length=8, blank=True)
    holiday_subdivision = models.CharField(max_length=16, blank=True)
    smart_interval_days = models.PositiveIntegerField(default=1)
    smart_expiry_days = models.PositiveIntegerField(default=90)

    # Exit criteria.
    exit_on_all_steps = models.BooleanField(default=True)
    exit_on_reply = models.BooleanField(default=True)
    # A reply from any contact of an account takes that account's other contacts out too.
    exit_account_on_reply = models.BooleanField(default=False)
    exit_on_unsubscribe = models.BooleanField(default=True)
    exit_on_bounce = models.BooleanField(default=True)
    exit_conditions = models.JSONField(default=list, blank=True)

    mailbox = models.ForeignKey("mail.Mailbox", null=True, blank=True, on_delete=models.SET_NULL)

    # Run bookkeeping: activated_at is the first activation; runs_from the last
    # activation or resume (slots before it never run); anchor_date the first run day,
    # from which smart intervals count; next_run_at a cached "look again at" instant.
    activated_at = models.DateTimeField(null=True, blank=True)
    runs_from = models.DateTimeField(null=True, blank=True)
    anchor_date = models.DateField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()
        indexes = [models.Index(fields=["status", "next_run_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def schedule(self) -> Schedule:
        """The run schedule: daily for classic, every ``smart_interval_days`` run days for smart."""
        from sequent.sequences.schedule import Schedule

        return Schedule(
            send_time=self.send_time,
            time_zone=self.time_zone,
            exclude_weekends=self.exclude_weekends,
            holiday_country=self.holiday_country,
            holiday_subdivision=self.holiday_subdivision,
            interval_days=self.smart_interval_days if self.kind == SequenceKind.SMART else 1,
        )


class SequenceContact(models.Model):
    """A contact added to a sequence's audience by hand."""

    owner_lookup = "sequence__owner"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="hand_added")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["sequence", "contact"], name="sequence_contact_once"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} added to {self.sequence_id}"


class StepKind(models.TextChoices):
    EMAIL = "email", "Email"
    EMAIL_REMINDER = "email_reminder", "Email reminder"
    FOLLOW_UP = "follow_up", "Follow-up task"
    CALL_REMINDER = "call_reminder", "Call reminder"
    SMS = "sms", "SMS"


EMAIL_STEP_KINDS = (StepKind.EMAIL, StepKind.EMAIL_REMINDER)


class ThreadMode(models.TextChoices):
    NEW = "new", "New thread"
    REPLY = "reply", "Reply to the previous email step"


class StepQuerySet(models.QuerySet["Step"]):
    def live(self) -> StepQuerySet:
        """Steps that have not been deleted, in order."""
        return self.filter(deleted_at__isnull=True).order_by("position", "id")


class Step(models.Model):
    """One step of a sequence. Deleting a step only marks it, so history keeps pointing at it."""

    owner_lookup = "sequence__owner"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=StepKind.choices)
    day = models.PositiveIntegerField(
        default=1, help_text="Classic: the enrollment's run on which it is due."
    )
    conditions = models.JSONField(default=list, blank=True)

    # Email and email reminder (the email issue adds a template).
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField(blank=True)
    # When set, the template's subject and body are sent instead (rendered at send time,
    # so an edit to the template reaches the next send).
    template = models.ForeignKey(
        "mail.EmailTemplate", null=True, blank=True, on_delete=models.SET_NULL, related_name="steps"
    )
    thread = models.CharField(max_length=8, choices=ThreadMode.choices, default=ThreadMode.NEW)
    reply_to = models.CharField(max_length=254, blank=True)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)
    include_unsubscribe = models.BooleanField(default=True)
    # Follow-up task, call reminder, email reminder.
    task_title = models.CharField(max_length=255, blank=True)
    task_notes = models.TextField(blank=True)
    # SMS.
    sms_body = models.TextField(blank=True)

    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = StepQuerySet.as_manager()

    class Meta:
        default_permissions = ()
        indexes = [models.Index(fields=["sequence", "position"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.position} of {self.sequence_id}"


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    EXITED = "exited", "Exited"


# Enrollments still in flight: exits, exclusivity and "active in another sequence" look at these.
IN_FLIGHT = (EnrollmentStatus.ACTIVE, EnrollmentStatus.PAUSED)


class ExitReason(models.TextChoices):
    REPLIED = "replied", "Replied"
    ACCOUNT_REPLIED = "account_replied", "A contact of the same account replied"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced"
    CONDITION = "condition", "Met an exit condition"
    REMOVED = "removed", "Removed by hand"
    ARCHIVED = "archived", "Sequence archived"
    EXPIRED = "expired", "Expired"


class Enrollment(models.Model):
    """One contact's passage through one sequence.

    ``run_count`` is the number of runs this enrollment took part in while active; a
    classic step on day d is due at its d-th run. ``next_due_at`` set means a run marked
    it and a worker still has to process it; ``claimed_until``/``claimed_by`` are the lease.
    """

    owner_lookup = "sequence__owner"

    # No single-column FK indexes: (sequence, contact) and (contact, status) lead with
    # them, and every index costs a write on each of the three updates per run.
    sequence = models.ForeignKey(
        Sequence, on_delete=models.CASCADE, related_name="enrollments", db_index=False
    )
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, related_name="enrollments", db_index=False
    )
    status = models.CharField(
        max_length=16, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE
    )
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices, blank=True, db_default="")
    enrolled_at = models.DateTimeField(default=clock.now)
    enrolled_on = models.DateField(null=True, blank=True, help_text="Local date in the sequence's zone.")
    run_count = models.PositiveIntegerField(default=0, db_default=0)
    last_run_date = models.DateField(null=True, blank=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True, db_default="")
    paused_until = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["sequence", "contact"], name="enrollment_once_per_sequence"),
        ]
        indexes = [
            models.Index(fields=["contact", "status"]),
            models.Index(fields=["sequence", "status"]),
            # Only pending rows carry next_due_at, so the claim query scans a small index.
            models.Index(
                fields=["next_due_at"], condition=Q(next_due_at__isnull=False), name="enrollment_pending_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.sequence_id}"


class ExecutionStatus(models.TextChoices):
    EXECUTED = "executed", "Executed"
    SKIPPED = "skipped", "Skipped"
    FAILED = "failed", "Failed"


class StepExecution(models.Model):
    """What happened to one step for one enrollment; at most one per pair."""

    owner_lookup = "enrollment__sequence__owner"

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="executions")
    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="executions")
    status = models.CharField(max_length=16, choices=ExecutionStatus.choices)
    reason = models.TextField(blank=True)
    run_date = models.DateField()
    executed_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="step_execution_once"),
        ]
        indexes = [models.Index(fields=["step", "status"])]

    def __str__(self) -> str:
        return f"step {self.step_id} {self.status} for {self.enrollment_id}"


class RunSlotStatus(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"


class RunSlot(models.Model):
    """One run of one sequence, identified by its local date. Inserting the row claims
    the run: the unique key lets exactly one worker win."""

    owner_lookup = "sequence__owner"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="run_slots")
    local_date = models.DateField()
    run_at = models.DateTimeField(help_text="The slot's instant (send time on local_date, in UTC).")
    status = models.CharField(max_length=16, choices=RunSlotStatus.choices, default=RunSlotStatus.RUNNING)
    claimed_by = models.CharField(max_length=64, blank=True)
    enrolled = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    enrollments_due = models.PositiveIntegerField(default=0)
    # Problems a rep should see, e.g. audience conditions that no longer compile.
    notes = models.TextField(blank=True)
    started_at = models.DateTimeField(default=clock.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["sequence", "local_date"], name="run_slot_once"),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"run of {self.sequence_id} on {self.local_date}"


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


class StepCounts(models.Model):
    """Counters that a sequence and each of its steps keep alike."""

    executed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    clicked = models.PositiveIntegerField(default=0)
    # Counting automated hits too (scanners, proxies): "opened"/"clicked" are the human counts.
    opened_raw = models.PositiveIntegerField(default=0)
    clicked_raw = models.PositiveIntegerField(default=0)
    replied = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(default=clock.now)

    class Meta:
        abstract = True

    def email_rates(self) -> dict[str, float]:
        """Email rates over emails sent (0..1)."""
        return {
            "delivered_rate": _rate(self.delivered, self.sent),
            "open_rate": _rate(self.opened, self.sent),
            "click_rate": _rate(self.clicked, self.sent),
            "reply_rate": _rate(self.replied, self.sent),
            "bounce_rate": _rate(self.bounced, self.sent),
            "unsubscribe_rate": _rate(self.unsubscribed, self.sent),
        }


class SequenceMetrics(StepCounts):
    """Counts for one sequence, refreshed at the end of every run."""

    owner_lookup = "sequence__owner"

    sequence = models.OneToOneField(Sequence, on_delete=models.CASCADE, related_name="metrics")
    enrolled = models.PositiveIntegerField(default=0)
    active = models.PositiveIntegerField(default=0)
    paused = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    exited = models.PositiveIntegerField(default=0)
    exited_by_reason = models.JSONField(default=dict, blank=True)

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"metrics of {self.sequence_id}"

    def rates(self) -> dict[str, float]:
        """Email rates over sent, plus completion and exit rates over enrolled (0..1)."""
        return {
            **self.email_rates(),
            "completion_rate": _rate(self.completed, self.enrolled),
            "exit_rate": _rate(self.exited, self.enrolled),
        }


class StepMetrics(StepCounts):
    """Counts for one step, refreshed at the end of every run of its sequence."""

    owner_lookup = "step__sequence__owner"

    step = models.OneToOneField(Step, on_delete=models.CASCADE, related_name="metrics")

    class Meta:
        default_permissions = ()

    def __str__(self) -> str:
        return f"metrics of step {self.step_id}"

    def rates(self) -> dict[str, float]:
        """Email rates over sent, and the share of the step's decisions that were skips (0..1)."""
        decided = self.executed + self.skipped + self.failed
        return {
            **self.email_rates(),
            "skip_rate": _rate(self.skipped, decided),
            "failure_rate": _rate(self.failed, decided),
        }
