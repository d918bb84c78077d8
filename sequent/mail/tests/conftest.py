"""Fixtures for delivery tests: a real SMTP server, mailboxes, and queued outbox rows
shaped exactly as the sequence engine's email executor writes them."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools

import pytest

from sequent.crm.models import Account, Contact
from sequent.lib import clock
from sequent.mail.message_ids import new_message_id
from sequent.mail.models import Mailbox, MessageStatus, OutboundMessage, Security
from sequent.mail.tests.servers import FaultHandler, RecordingHandler, smtp_server
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import Enrollment, EnrollmentStatus, ExecutionStatus, StepExecution

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday
_counter = itertools.count(1)


def parse(data: bytes) -> email.message.EmailMessage:
    """A received message, parsed."""
    return email.message_from_bytes(data, policy=email.policy.default)


@pytest.fixture
def delivery_env(settings):
    """The clock frozen at NOW, an HTTPS base URL and short SMTP timeouts."""
    settings.SEQUENT_BASE_URL = "https://sequent.example.com"
    settings.SEQUENT_SMTP_TIMEOUT = 5
    clock.set_now(NOW)
    yield
    clock.set_now(None)


@pytest.fixture
def recorder():
    """A recording SMTP server: (handler, host, port)."""
    handler = RecordingHandler()
    with smtp_server(handler) as (host, port):
        yield handler, host, port


@pytest.fixture
def fault_server():
    """Start a FaultHandler server: ``fault_server(stage, reply, **kw)`` -> (handler, host, port)."""
    started = []

    def start(stage, reply, **kwargs):
        handler = FaultHandler(stage=stage, reply=reply, **kwargs)
        context = smtp_server(handler)
        host, port = context.__enter__()
        started.append(context)
        return handler, host, port

    yield start
    for context in started:
        context.__exit__(None, None, None)


@pytest.fixture
def make_mailbox(rep):
    def make(host="127.0.0.1", port=25, owner=None, **fields):
        fields.setdefault("email_address", "alice@acme.example")
        fields.setdefault("display_name", "Alice Rep")
        fields.setdefault("smtp_security", Security.NONE)
        fields.setdefault("per_minute_limit", 100)
        return Mailbox.objects.create(owner=owner or rep, smtp_host=host, smtp_port=port, **fields)

    return make


@pytest.fixture
def make_contact(db):
    def make(**fields) -> Contact:
        n = next(_counter)
        fields.setdefault("first_name", f"Dana{n}")
        fields.setdefault("last_name", "Client")
        fields.setdefault("email", f"dana{n}@client.example")
        if "account" not in fields:
            fields["account"] = Account.objects.create(name=f"Client Co {n}", domain="client.example")
        return Contact.objects.create(**fields)

    return make


@pytest.fixture
def make_sequence(rep):
    """An active sequence with the given step dicts; returns (sequence, [steps])."""

    def make(steps, owner=None, mailbox=None, **fields):
        fields.setdefault("time_zone", "UTC")
        fields.setdefault("send_time", "09:00")
        sequence = sequence_actions.do_create_sequence(owner or rep, fields.pop("name", "Outreach"), **fields)
        made = []
        for step in steps:
            step = dict(step)
            kind = step.pop("kind", "email")
            step.setdefault("subject", "Hello {{ contact.first_name }}")
            step.setdefault("body", "<p>Hi {{ contact.first_name }}</p>")
            made.append(sequence_actions.do_add_step(sequence, kind, **step))
        with clock.frozen(NOW - dt.timedelta(days=1)):
            sequence_actions.do_activate(sequence)
        if mailbox is not None:
            sequence.mailbox = mailbox
            sequence.save(update_fields=["mailbox"])
        sequence.refresh_from_db()
        return sequence, made

    return make


@pytest.fixture
def queue(db):
    """Queue the email of *step* for *contact* as the engine does (an enrollment, the
    step's execution, and a queued row with its Message-ID and an empty subject and body)."""

    def make(sequence, step, contact, *, not_before=None, status=MessageStatus.QUEUED) -> OutboundMessage:
        enrollment, _ = Enrollment.objects.get_or_create(
            sequence=sequence, contact=contact, defaults={"status": EnrollmentStatus.ACTIVE}
        )
        StepExecution.objects.get_or_create(
            enrollment=enrollment,
            step=step,
            defaults={"status": ExecutionStatus.EXECUTED, "run_date": NOW.date()},
        )
        return OutboundMessage.objects.create(
            enrollment=enrollment,
            step=step,
            sequence=sequence,
            contact=contact,
            owner_id=sequence.owner_id,
            mailbox_id=sequence.mailbox_id,
            to_email=contact.email,
            status=status,
            message_id=new_message_id(),
            not_before=not_before or clock.now(),
        )

    return make
