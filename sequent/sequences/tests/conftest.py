"""Helpers for engine scenarios: contacts, sequences with steps, and run-due at an instant."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import pytest
from django.core.management import call_command

from sequent.crm.models import Contact
from sequent.lib import clock
from sequent.sequences import actions
from sequent.sequences.models import Enrollment, StepExecution

_counter = itertools.count(1)


def at(text: str) -> dt.datetime:
    """An aware UTC instant from 'YYYY-MM-DD HH:MM' (UTC)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def run_due(when: str) -> str:
    """Run `sequent run-due --now` at *when* ('YYYY-MM-DD HH:MM' UTC); returns its output."""
    out = io.StringIO()
    # Delivery is tested in the mail app; here emails stay queued so runs can be read.
    call_command("run_due", now=at(when).isoformat(), no_mail=True, stdout=out)
    return out.getvalue()


def executions(enrollment: Enrollment) -> list[tuple[int, str, str]]:
    """(step position, status, run date) of each step execution of *enrollment*, in step order."""
    return [
        (e.step.position, e.status, e.run_date.isoformat())
        for e in StepExecution.objects.filter(enrollment=enrollment)
        .select_related("step")
        .order_by("step__position")
    ]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The shared user fixtures hash passwords; the default hasher costs about a second per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_contact(db):
    def make(**fields) -> Contact:
        n = next(_counter)
        fields.setdefault("first_name", f"Pat{n}")
        fields.setdefault("last_name", "Lee")
        fields.setdefault("email", f"pat{n}@example.com")
        return Contact.objects.create(**fields)

    return make


@pytest.fixture
def make_sequence(rep):
    """A sequence of *steps* (dicts of step fields), activated at *activate_at* unless None."""

    def make(steps, *, activate_at="2026-02-27 12:00", contacts=(), owner=None, **fields):
        fields.setdefault("time_zone", "UTC")
        fields.setdefault("send_time", "09:00")
        fields.setdefault("exclude_weekends", True)
        sequence = actions.do_create_sequence(owner or rep, fields.pop("name", "Outreach"), **fields)
        for step in steps:
            step = dict(step)
            kind = step.pop("kind")
            if kind in ("email", "email_reminder"):
                step.setdefault("subject", "Hello")
            if kind == "sms":
                step.setdefault("sms_body", "Hi from us")
            actions.do_add_step(sequence, kind, **step)
        if contacts:
            actions.do_add_contacts(sequence, [c.pk for c in contacts])
        if activate_at:
            with clock.frozen(at(activate_at)):
                actions.do_activate(sequence)
        return sequence

    return make
