"""The CRM core: accounts, contacts, custom fields, tags, activities, saved views, imports.

Contacts and accounts are shared by the workspace; saved views and imports belong
to the user who made them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from sequent.lib import clock

RECORD_CONTACT = "contact"
RECORD_ACCOUNT = "account"
RECORD_TYPES = [(RECORD_CONTACT, "Contact"), (RECORD_ACCOUNT, "Account")]


class Account(models.Model):
    """A company: a contact's primary sales account."""

    name = models.CharField(max_length=255)
    domain = models.CharField(max_length=255, blank=True, db_index=True)
    industry = models.CharField(max_length=255, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="accounts",
    )
    custom = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [
            models.Index(fields=["name"]),
            # The importer links contacts to accounts by name or domain, ignoring case.
            models.Index(Lower("name"), name="crm_account_lower_name"),
            models.Index(Lower("domain"), name="crm_account_lower_domain"),
        ]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)

    def __str__(self) -> str:
        return self.name


class LastContactedMode(models.TextChoices):
    NOT_CONTACTED = "not_contacted", "Not yet contacted"
    NO_REPLY = "no_reply", "No reply"
    OPENED = "opened_no_reply", "Opened but no reply"
    REPLIED = "replied", "Replied"
    INCOMING_CALL = "incoming_call", "Incoming call"
    OUTGOING_CALL = "outgoing_call", "Outgoing call"
    CHAT = "chat", "Chat"
    SALES_ACTIVITY = "sales_activity", "Sales Activity"


class EmailStatus(models.TextChoices):
    OK = "ok", "OK"
    BOUNCED = "bounced", "Bounced"


class Contact(models.Model):
    """A person reps reach out to."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="contacts",
    )
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    # Stored lower-cased: deduplication and reply matching compare addresses exactly.
    email = models.CharField(max_length=254, blank=True, db_index=True)
    mobile = models.CharField(max_length=20, blank=True, help_text="E.164, e.g. +14155550123")
    job_title = models.CharField(max_length=255, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 alpha-2")
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts",
        verbose_name="primary sales account",
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts")
    custom = models.JSONField(default=dict, blank=True)
    email_opt_out = models.BooleanField(default=False)
    sms_opt_out = models.BooleanField(default=False)
    email_status = models.CharField(max_length=16, choices=EmailStatus.choices, default=EmailStatus.OK)
    last_contacted_mode = models.CharField(
        max_length=32, choices=LastContactedMode.choices, default=LastContactedMode.NOT_CONTACTED
    )
    last_activity_type = models.CharField(max_length=64, blank=True)
    last_contacted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [
            models.Index(fields=["last_name", "first_name"]),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"Contact {self.pk}"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class CustomFieldType(models.TextChoices):
    TEXT = "text", "Text"
    NUMBER = "number", "Number"
    DATE = "date", "Date"
    BOOLEAN = "boolean", "Boolean"
    CHOICE = "choice", "Choice"


class CustomField(models.Model):
    """A typed field that contacts or accounts carry in their ``custom`` JSON, under ``key``."""

    record_type = models.CharField(max_length=16, choices=RECORD_TYPES)
    key = models.SlugField(max_length=64)
    label = models.CharField(max_length=100)
    field_type = models.CharField(max_length=16, choices=CustomFieldType.choices)
    choices = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["record_type", "key"], name="custom_field_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.record_type})"


class ActivityType(models.Model):
    """A custom sales activity type an admin manages (Lunch, Coffee, InMail ...)."""

    name = models.CharField(max_length=64, unique=True)
    is_active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.name


class ActivityKind(models.TextChoices):
    CALL_INCOMING = "call_incoming", "Incoming call"
    CALL_OUTGOING = "call_outgoing", "Outgoing call"
    CHAT = "chat", "Chat"
    MEETING = "meeting", "Meeting"
    NOTE = "note", "Note"
    SMS_SENT = "sms_sent", "SMS sent"
    SMS_RECEIVED = "sms_received", "SMS received"
    TASK = "task", "Task completed"
    EMAIL_SENT = "email_sent", "Email sent"
    EMAIL_OPENED = "email_opened", "Email opened"
    EMAIL_CLICKED = "email_clicked", "Email link clicked"
    EMAIL_REPLIED = "email_replied", "Email replied"
    EMAIL_BOUNCED = "email_bounced", "Email bounced"
    CUSTOM = "custom", "Sales activity"


class Activity(models.Model):
    """One thing that happened with a contact. Recorded only through
    ``crm.actions.do_record_activity``, which also updates the contact's
    last-contacted fields."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="activities")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="activities",
    )
    kind = models.CharField(max_length=32, choices=ActivityKind.choices)
    custom_type = models.ForeignKey(ActivityType, null=True, blank=True, on_delete=models.PROTECT)
    occurred_at = models.DateTimeField(default=clock.now)
    subject = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    outcome = models.CharField(max_length=64, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["contact", "-occurred_at"])]
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return f"{self.get_kind_display()} with {self.contact_id}"


class SavedView(models.Model):
    """A named set of conditions on contacts or accounts."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="views")
    name = models.CharField(max_length=100)
    record_type = models.CharField(max_length=16, choices=RECORD_TYPES, default=RECORD_CONTACT)
    conditions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="saved_view_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """One CSV import: its options, its progress and its report."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="imports")
    record_type = models.CharField(max_length=16, choices=RECORD_TYPES, default=RECORD_CONTACT)
    file_name = models.CharField(max_length=255)
    file_path = models.CharField(max_length=500)
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    total_bytes = models.BigIntegerField(default=0)
    processed_bytes = models.BigIntegerField(default=0)
    rows_seen = models.IntegerField(default=0)
    created_count = models.IntegerField(default=0)
    updated_count = models.IntegerField(default=0)
    skipped_count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=clock.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Who holds the lease: progress is written only while it is still ours, so a
    # worker that lost an expired lease cannot write over the one that took it.
    claimed_by = models.CharField(max_length=100, blank=True)
    # The last line whose row is committed: a claimed-again job resumes after it.
    last_line = models.IntegerField(default=0)
    # What was detected and how columns were mapped: encoding, delimiter, header, columns, ignored.
    report = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.file_name}"


class ImportRowError(models.Model):
    """A row the import refused, with its line number in the file and the reason."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    line = models.IntegerField()
    reason = models.TextField()
    raw = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["job", "line"])]
        ordering = ["line"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"
