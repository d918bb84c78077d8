"""Email: the mailboxes reps send from, the outbox, and the events that come back.

The sequence engine writes outbox rows and reads events; sending, tracking and
inbound processing (the email issues) fill in the rest.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from sequent.lib import clock
from sequent.lib.crypto import EncryptedTextField


def _default_imap_folders() -> list[str]:
    return ["INBOX"]


class Security(models.TextChoices):
    SSL = "ssl", "SSL/TLS (implicit, usually port 465 or 993)"
    STARTTLS = "starttls", "STARTTLS (usually port 587 or 143)"
    NONE = "none", "None (local servers only)"


class MailboxStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED_AUTH = "paused_auth", "Paused: the login was refused"
    PAUSED_QUOTA = "paused_quota", "Paused: the provider's sending limit was reached"
    DISABLED = "disabled", "Disabled"


class Mailbox(models.Model):
    """A mailbox a rep sends from (SMTP) and reads replies in (IMAP).

    Passwords are encrypted at rest and never leave through the API. ``status`` says
    whether delivery may use it: a refused login pauses it until the password is
    fixed; a provider quota pauses it until ``paused_until``. At most one mailbox is
    the workspace default, used by users who have none of their own.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mailboxes")
    # The From address and name.
    email_address = models.CharField(max_length=254)
    display_name = models.CharField(max_length=200, blank=True)

    smtp_host = models.CharField(max_length=255, blank=True)
    smtp_port = models.PositiveIntegerField(default=587)
    smtp_security = models.CharField(max_length=8, choices=Security.choices, default=Security.STARTTLS)
    smtp_username = models.CharField(max_length=254, blank=True, help_text="Empty: no login (local servers).")
    smtp_password = EncryptedTextField(null=True, blank=True)

    imap_host = models.CharField(max_length=255, blank=True)
    imap_port = models.PositiveIntegerField(default=993)
    imap_security = models.CharField(max_length=8, choices=Security.choices, default=Security.SSL)
    imap_username = models.CharField(max_length=254, blank=True)
    imap_password = EncryptedTextField(null=True, blank=True)
    # Folders the inbound reader watches, and the Sent folder used to reconcile
    # uncertain sends ("" = find it by its \Sent flag).
    imap_folders = models.JSONField(default=_default_imap_folders, blank=True)
    imap_sent_folder = models.CharField(max_length=255, blank=True)

    per_minute_limit = models.PositiveIntegerField(default=20, help_text="Messages sent per minute at most.")
    status = models.CharField(max_length=16, choices=MailboxStatus.choices, default=MailboxStatus.ACTIVE)
    paused_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    is_workspace_default = models.BooleanField(default=False)
    # Inbound sync (sequent/mail/inbound.py): the next time a worker may read this
    # mailbox; taking a sync moves it forward, so it is both throttle and lease.
    inbound_due_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(
                fields=["is_workspace_default"],
                condition=Q(is_workspace_default=True),
                name="mailbox_one_workspace_default",
            ),
        ]

    def __str__(self) -> str:
        return self.email_address


class MessageStatus(models.TextChoices):
    DRAFT = "draft", "Draft"  # an email reminder waiting for the rep to personalise it
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DEFERRED = "deferred", "Deferred"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"
    UNCERTAIN = "uncertain", "Uncertain"


# Messages that may still leave: an exit or an unsubscribe cancels these.
PENDING_MESSAGE_STATUSES = (MessageStatus.DRAFT, MessageStatus.QUEUED, MessageStatus.DEFERRED)


class OutboundMessage(models.Model):
    """One email in the outbox: a row before it is a packet.

    The Message-ID is fixed when the row is created, so a crash during sending can be
    reconciled against the Sent folder instead of sending twice.
    """

    owner_lookup = "owner"

    enrollment = models.ForeignKey(
        "sequences.Enrollment", null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    step = models.ForeignKey(
        "sequences.Step", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    sequence = models.ForeignKey(
        "sequences.Sequence", null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="messages")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="outbound_messages"
    )
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.SET_NULL)
    to_email = models.CharField(max_length=254)
    # Filled at send time (templates are rendered when the message leaves) or by the rep for drafts.
    subject = models.CharField(max_length=998, blank=True)
    body = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    message_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    not_before = models.DateTimeField(default=clock.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    # Delivery (sequent/mail/delivery.py). A claim sets status "sending" with a lease;
    # a row still "sending" after its lease expired may have left: it becomes uncertain.
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    # Committed just before the message is handed to SMTP under the current claim: a stale
    # "sending" row without it never reached a server and can safely be queued again.
    handed_at = models.DateTimeField(null=True, blank=True)
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    # Why the row is deferred, cancelled or failed, as a code (DeliveryReason); last_error has the words.
    reason_code = models.CharField(max_length=32, blank=True, default="")
    # Written just before SMTP, with the rendered subject and body.
    from_email = models.CharField(max_length=254, blank=True, default="")
    in_reply_to = models.CharField(max_length=255, blank=True, default="")
    thread_references = models.TextField(blank=True, default="")
    # Reconciling an uncertain row (sequent/mail/reconcile.py): when the Sent folder
    # first lacked it, and whether it was already queued again once.
    reconcile_missed_at = models.DateTimeField(null=True, blank=True)
    reconcile_requeued = models.BooleanField(default=False)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step"], name="outbound_once_per_enrollment_step"),
        ]
        indexes = [
            models.Index(fields=["status", "not_before"]),
            models.Index(fields=["contact", "status"]),
            models.Index(fields=["mailbox", "status", "not_before"], name="outbound_mailbox_due_idx"),
            models.Index(fields=["mailbox", "sent_at"], name="outbound_mailbox_sent_idx"),
            models.Index(fields=["owner", "sent_at"], name="outbound_owner_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} to {self.to_email} ({self.status})"


class MailboxFolderState(models.Model):
    """How far the inbound sync has read one IMAP folder of a mailbox.

    ``uidvalidity`` and ``last_uid`` let a sync fetch only what is new; a changed
    UIDVALIDITY means the folder was rebuilt, and the sync reads it again from the start
    (events are deduplicated on the inbound Message-ID, so nothing is counted twice).
    """

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="folder_states")
    folder = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    last_uid = models.BigIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "folder"], name="mailbox_folder_state_once"),
        ]

    def __str__(self) -> str:
        return f"{self.folder} of {self.mailbox_id}"


class EmailEventKind(models.TextChoices):
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    REPLIED = "replied", "Replied"
    BOUNCED = "bounced", "Bounced"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    AUTO_REPLY = "auto_reply", "Auto-reply"


class EmailEvent(models.Model):
    """Something that happened to an email: written by the email issues, read by the engine.

    ``dedupe_key`` makes recording idempotent: the same open pixel hit, inbound message
    or bounce report processed twice yields one row.
    """

    message = models.ForeignKey(
        OutboundMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="email_events")
    enrollment = models.ForeignKey(
        "sequences.Enrollment", null=True, blank=True, on_delete=models.CASCADE, related_name="email_events"
    )
    step = models.ForeignKey(
        "sequences.Step", null=True, blank=True, on_delete=models.SET_NULL, related_name="email_events"
    )
    kind = models.CharField(max_length=16, choices=EmailEventKind.choices)
    occurred_at = models.DateTimeField(default=clock.now)
    is_automated = models.BooleanField(default=False)
    dedupe_key = models.CharField(max_length=255, unique=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        default_permissions = ()
        indexes = [
            models.Index(fields=["enrollment", "kind"]),
            models.Index(fields=["contact", "kind"]),
            models.Index(fields=["step", "kind"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} by {self.contact_id}"


class TrackedLink(models.Model):
    """The original URL of link *index* of a sent message: a click redirects only here."""

    message = models.ForeignKey(OutboundMessage, on_delete=models.CASCADE, related_name="links")
    index = models.PositiveIntegerField()
    url = models.TextField()

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["message", "index"], name="tracked_link_once_per_index"),
        ]

    def __str__(self) -> str:
        return f"link {self.index} of {self.message_id}"


class EmailTemplate(models.Model):
    """A rep's reusable email: a Liquid subject and HTML body (docs/EMAIL.md, "Templates")."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_templates"
    )
    name = models.CharField(max_length=200)
    subject = models.CharField(max_length=998)
    body = models.TextField()
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    class Meta:
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="email_template_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name
