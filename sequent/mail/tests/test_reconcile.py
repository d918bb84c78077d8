"""Uncertain sends settled through the Sent folder of a real Dovecot: a message that left
before the worker died is marked sent and never sent again; one that did not leave is
queued again, once."""

from __future__ import annotations

import datetime as dt
import smtplib
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from sequent.crm.models import Activity, ActivityKind
from sequent.lib import clock
from sequent.mail import delivery, inbound
from sequent.mail.models import EmailEvent, EmailEventKind, MessageStatus, OutboundMessage, Security
from sequent.mail.tests.dovecot import dovecot, imap_user  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("delivery_env")


def send_all() -> None:
    while delivery.deliver_due("w1"):
        pass


def sync_now(at: dt.datetime) -> bool:
    clock.set_now(at)
    return inbound.sync_due("w1")


@pytest.fixture
def outbox(recorder, dovecot, imap_user, make_mailbox, make_sequence, make_contact, queue):  # noqa: F811
    """A queued email of a mailbox on the recording SMTP server and Dovecot."""
    handler, host, port = recorder
    name, password = imap_user
    mailbox = make_mailbox(
        host,
        port,
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_security=Security.NONE,
        imap_username=name,
        imap_password=password,
    )
    sequence, (step,) = make_sequence([{}], mailbox=mailbox)
    row = queue(sequence, step, make_contact())
    return {"row": row, "handler": handler, "smtp": (host, port), "dovecot": dovecot, "user": imap_user}


def die_after_smtp(outbox: dict, *, filed_in_sent: bool) -> OutboundMessage:
    """A worker claims the row, the SMTP server takes the message, and the worker dies
    before recording it: the row is left ``sending`` until its lease expires and
    delivery's housekeeping marks it uncertain."""
    row = outbox["row"]
    claim, _ = delivery.claim("w1", clock.now())
    assert claim is not None and claim.ids == [row.pk]
    message = EmailMessage()
    message["From"] = "alice@acme.example"
    message["To"] = row.to_email
    message["Subject"] = "Hello"
    message["Message-ID"] = row.message_id
    message.set_content("Hi there")
    raw = message.as_bytes(policy=SMTP)
    OutboundMessage.objects.filter(pk=row.pk).update(handed_at=clock.now())  # as the sender does
    with smtplib.SMTP(*outbox["smtp"]) as conn:
        conn.sendmail("alice@acme.example", [row.to_email], raw)
    if filed_in_sent:
        with outbox["dovecot"].client(*outbox["user"]) as client:
            client.append("Sent", raw)
    clock.set_now(claim.until + dt.timedelta(seconds=1))
    assert delivery.recover_stale(clock.now()) == 1
    row.refresh_from_db()
    assert row.status == MessageStatus.UNCERTAIN
    return row


def test_it_marks_an_uncertain_send_found_in_the_sent_folder_sent_and_never_resends_it(outbox):
    row = die_after_smtp(outbox, filed_in_sent=True)
    assert len(outbox["handler"].received) == 1

    assert sync_now(clock.now()) is True

    row.refresh_from_db()
    assert row.status == MessageStatus.SENT
    assert row.sent_at is not None
    assert EmailEvent.objects.filter(message=row, kind=EmailEventKind.SENT).count() == 1
    assert Activity.objects.filter(contact_id=row.contact_id, kind=ActivityKind.EMAIL_SENT).count() == 1
    clock.set_now(clock.now() + dt.timedelta(hours=1))
    send_all()
    assert len(outbox["handler"].received) == 1


def test_it_queues_a_send_missing_from_the_sent_folder_again_once_after_the_lease(outbox):
    row = die_after_smtp(outbox, filed_in_sent=False)
    start = clock.now()

    assert sync_now(start) is True
    row.refresh_from_db()
    assert row.status == MessageStatus.UNCERTAIN  # the provider may still be filing its copy
    assert sync_now(start + dt.timedelta(minutes=10)) is True
    row.refresh_from_db()
    assert row.status == MessageStatus.UNCERTAIN

    assert sync_now(start + dt.timedelta(minutes=16)) is True
    row.refresh_from_db()
    assert row.status == MessageStatus.QUEUED
    send_all()
    assert len(outbox["handler"].received) == 2
    row.refresh_from_db()
    assert row.status == MessageStatus.SENT

    # Uncertain a second time and still not in the Sent folder: it fails, never a third send.
    OutboundMessage.objects.filter(pk=row.pk).update(status=MessageStatus.UNCERTAIN)
    assert sync_now(start + dt.timedelta(minutes=20)) is True
    assert sync_now(start + dt.timedelta(minutes=40)) is True
    row.refresh_from_db()
    assert row.status == MessageStatus.FAILED
    assert "not sent again" in row.last_error
    send_all()
    assert len(outbox["handler"].received) == 2


def test_it_leaves_an_uncertain_send_alone_when_the_mailbox_has_no_sent_folder(outbox):
    row = die_after_smtp(outbox, filed_in_sent=True)
    mailbox = row.mailbox
    mailbox.imap_sent_folder = "Does-not-exist"
    mailbox.save(update_fields=["imap_sent_folder"])

    assert sync_now(clock.now()) is True
    assert sync_now(clock.now() + dt.timedelta(hours=1)) is True

    row.refresh_from_db()
    assert row.status == MessageStatus.UNCERTAIN
