"""Sales sequences and the contacts enrolled in them.

The engine (issue 3) extends these models; the CRM condition compiler relies on
``Sequence.name``, ``Sequence.owner`` and ``Enrollment.contact/sequence/status``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from sequent.lib import clock


class SequenceStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class Sequence(models.Model):
    """A multi-step outreach plan owned by one user."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sequences")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=SequenceStatus.choices, default=SequenceStatus.DRAFT)
    created_at = models.DateTimeField(default=clock.now)
    updated_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return self.name


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    EXITED = "exited", "Exited"


class Enrollment(models.Model):
    """One contact's passage through one sequence."""

    owner_lookup = "sequence__owner"

    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="enrollments")
    contact = models.ForeignKey("crm.Contact", on_delete=models.CASCADE, related_name="enrollments")
    status = models.CharField(max_length=16, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE)
    enrolled_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sequence", "contact"], name="enrollment_once_per_sequence"),
        ]
        indexes = [models.Index(fields=["contact", "status"])]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.sequence_id}"
