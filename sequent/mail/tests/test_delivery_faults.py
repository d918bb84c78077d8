"""SMTP faults from a real server: each ends in the state DESIGN gives, and no message
is ever received twice."""

from __future__ import annotations

import datetime as dt

import pytest

from sequent.crm.models import Activity, ActivityKind, Contact, EmailStatus
from sequent.lib import clock
from sequent.mail import actions
from sequent.mail.delivery import RetryPolicy, deliver_due, retry_delay
from sequent.mail.models import EmailEvent, EmailEventKind, Mailbox, MessageStatus, OutboundMessage
from sequent.mail.tests.conftest import NOW, parse
from sequent.mail.tests.servers import PASSWORD, USERNAME, RecordingHandler, free_port, smtp_server
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import Enrollment, EnrollmentStatus, ExitReason

pytestmark = pytest.mark.usefixtures("delivery_env")


def send_all():
    while deliver_due("w1"):
        pass


def state(row):
    row.refresh_from_db()
    return row.status


def received_ids(*handlers):
    ids = [parse(r.data)["Message-ID"] for handler in handlers for r in handler.received]
    assert len(ids) == len(set(ids)), f"a message was received twice: {ids}"
    return ids


@pytest.fixture
def one_email(make_mailbox, make_sequence, make_contact, queue):
    """A mailbox pointing at (host, port) and one queued email: returns (mailbox, row)."""

    def make(host, port, **mailbox_fields):
        mailbox = make_mailbox(host, port, **mailbox_fields)
        sequence, (step,) = make_sequence([{}], mailbox=mailbox)
        return mailbox, queue(sequence, step, make_contact())

    return make


def test_it_backs_off_like_postfix():
    policy = RetryPolicy()
    delays = [retry_delay(policy, n) for n in range(1, 9)]
    assert [d.total_seconds() / 60 for d in delays] == [5, 10, 20, 40, 80, 160, 240, 240]


@pytest.mark.parametrize(
    ("stage", "reply"),
    [("mail", "421 4.7.0 Too many connections, closing"), ("rcpt", "450 4.2.1 Mailbox busy, try later")],
)
def test_it_defers_a_temporary_failure_and_sends_it_once_later(fault_server, one_email, stage, reply):
    faulty, host, port = fault_server(stage, reply)
    mailbox, row = one_email(host, port)

    send_all()

    assert state(row) == MessageStatus.DEFERRED
    assert row.attempts == 1
    assert row.not_before == NOW + dt.timedelta(minutes=5)
    assert reply.split(" ", 1)[0] in row.last_error
    assert faulty.received == []

    # The server recovers; nothing happens before the back-off, then the email goes once.
    good = RecordingHandler()
    with smtp_server(good) as (good_host, good_port):
        Mailbox.objects.filter(pk=mailbox.pk).update(smtp_host=good_host, smtp_port=good_port)
        clock.set_now(NOW + dt.timedelta(minutes=4))
        send_all()
        assert good.received == []
        clock.set_now(NOW + dt.timedelta(minutes=5))
        send_all()
        clock.set_now(NOW + dt.timedelta(hours=5))
        send_all()
    assert state(row) == MessageStatus.SENT
    assert row.attempts == 2
    assert received_ids(faulty, good) == [row.message_id]


def test_it_defers_when_the_server_cannot_be_reached_and_gives_up_after_five_days(one_email):
    _, row = one_email("127.0.0.1", free_port())  # nothing listens there
    send_all()
    assert state(row) == MessageStatus.DEFERRED
    assert "cannot connect" in row.last_error
    for hours in (1, 3, 10, 30, 60, 100, 119):
        clock.set_now(NOW + dt.timedelta(hours=hours))
        send_all()
        assert state(row) == MessageStatus.DEFERRED
    clock.set_now(NOW + dt.timedelta(days=5, hours=3))  # the back-off after 119 h is 4 h
    send_all()
    assert state(row) == MessageStatus.FAILED
    assert row.last_error.startswith("gave up after 5 days of temporary failures")


def test_it_pauses_the_mailbox_on_a_refused_login_and_resumes_when_the_password_is_fixed(
    one_email, make_sequence, make_contact, queue, rep
):
    handler = RecordingHandler()
    with smtp_server(handler, auth=True) as (host, port):
        mailbox, row = one_email(host, port, smtp_username=USERNAME, smtp_password="wrong-password")
        sequence, (step,) = make_sequence([{}], mailbox=mailbox, name="Second")
        second = queue(sequence, step, make_contact())

        send_all()

        mailbox.refresh_from_db()
        assert mailbox.status == "paused_auth"
        assert "535" in mailbox.last_error
        assert state(row) == MessageStatus.QUEUED
        assert state(second) == MessageStatus.QUEUED
        assert second.last_error.startswith("waiting: the mailbox login was refused")
        assert row.attempts == 0
        clock.set_now(NOW + dt.timedelta(hours=1))
        send_all()
        assert handler.received == []

        actions.do_update_mailbox(mailbox, rep, smtp_password=PASSWORD)
        assert mailbox.status == "active"
        send_all()
    assert state(row) == MessageStatus.SENT
    assert state(second) == MessageStatus.SENT
    assert sorted(received_ids(handler)) == sorted([row.message_id, second.message_id])


def test_it_bounces_a_contact_whose_address_does_not_exist(
    fault_server, make_mailbox, make_sequence, make_contact, queue
):
    faulty, host, port = fault_server(
        "rcpt",
        "550 5.1.1 <gone@client.example>: Recipient address rejected: User unknown",
        bad_recipients=("gone@client.example",),
    )
    mailbox = make_mailbox(host, port)
    sequence, (step, later) = make_sequence([{}, {"day": 3}], mailbox=mailbox)
    other_sequence, (other_step,) = make_sequence([{}], mailbox=mailbox, name="Other", exit_on_bounce=False)
    gone = make_contact(email="gone@client.example")
    fine = make_contact()
    row = queue(sequence, step, gone)
    waiting = queue(sequence, later, gone, not_before=NOW + dt.timedelta(days=2))
    elsewhere = queue(other_sequence, other_step, gone, not_before=NOW + dt.timedelta(days=1))
    ok = queue(sequence, step, fine)

    send_all()

    assert state(row) == MessageStatus.FAILED
    assert row.reason_code == "recipient_rejected"
    assert "5.1.1" in row.last_error
    gone.refresh_from_db()
    assert gone.email_status == EmailStatus.BOUNCED
    assert (
        EmailEvent.objects.filter(message=row, kind=EmailEventKind.BOUNCED, is_automated=False).count() == 1
    )
    assert Activity.objects.filter(contact=gone, kind=ActivityKind.EMAIL_BOUNCED).count() == 1
    enrollment = Enrollment.objects.get(sequence=sequence, contact=gone)
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.BOUNCED)
    # A sequence that does not exit on bounce keeps the enrollment, but no email can reach the address.
    assert Enrollment.objects.get(sequence=other_sequence, contact=gone).status == EnrollmentStatus.ACTIVE
    assert state(waiting) == MessageStatus.CANCELLED
    assert state(elsewhere) == MessageStatus.CANCELLED
    assert state(ok) == MessageStatus.SENT
    assert received_ids(faulty) == [ok.message_id]


def test_it_pauses_the_mailbox_until_the_quota_window_clears(
    fault_server, make_mailbox, make_sequence, make_contact, queue
):
    faulty, host, port = fault_server("data", "552 5.2.0 Daily sending quota exceeded")
    mailbox = make_mailbox(host, port)
    sequence, (step,) = make_sequence([{}], mailbox=mailbox)
    rows = [queue(sequence, step, make_contact()) for _ in range(3)]

    send_all()

    mailbox.refresh_from_db()
    assert mailbox.status == "paused_quota"
    assert mailbox.paused_until == NOW + dt.timedelta(hours=1)
    assert state(rows[0]) == MessageStatus.DEFERRED
    assert rows[0].not_before == NOW + dt.timedelta(hours=1)
    # The rest of the batch was not tried: back in the queue, waiting for the mailbox.
    assert [state(r) for r in rows[1:]] == [MessageStatus.QUEUED, MessageStatus.QUEUED]
    assert faulty.received == []

    good = RecordingHandler()
    with smtp_server(good) as (good_host, good_port):
        Mailbox.objects.filter(pk=mailbox.pk).update(smtp_host=good_host, smtp_port=good_port)
        clock.set_now(NOW + dt.timedelta(minutes=59))
        send_all()
        assert good.received == []
        clock.set_now(NOW + dt.timedelta(hours=1))
        send_all()
    assert [state(r) for r in rows] == [MessageStatus.SENT] * 3
    assert Mailbox.objects.get(pk=mailbox.pk).status == "active"
    assert sorted(received_ids(faulty, good)) == sorted(r.message_id for r in rows)


def test_it_fails_a_message_the_server_refuses_for_good(fault_server, one_email):
    _, host, port = fault_server("data", "554 5.7.1 Message rejected as spam")
    _, row = one_email(host, port)
    send_all()
    assert state(row) == MessageStatus.FAILED
    assert row.reason_code == "permanent"
    assert "5.7.1" in row.last_error
    clock.set_now(NOW + dt.timedelta(days=1))
    send_all()
    assert state(row) == MessageStatus.FAILED


def test_it_marks_a_message_uncertain_when_the_connection_drops_after_data_and_never_resends_it(
    fault_server, make_mailbox, make_sequence, make_contact, queue
):
    faulty, host, port = fault_server("data", "drop")
    mailbox = make_mailbox(host, port)
    sequence, (step,) = make_sequence([{}], mailbox=mailbox)
    first = queue(sequence, step, make_contact())
    second = queue(sequence, step, make_contact())

    send_all()

    assert state(first) == MessageStatus.UNCERTAIN
    assert "may have been delivered" in first.last_error
    # The next message of the batch went over a new connection (and dropped too).
    assert state(second) == MessageStatus.UNCERTAIN
    for days in (1, 2, 6):
        clock.set_now(NOW + dt.timedelta(days=days))
        send_all()
    assert [state(first), state(second)] == [MessageStatus.UNCERTAIN] * 2
    assert sorted(received_ids(faulty)) == sorted([first.message_id, second.message_id])
    assert not OutboundMessage.objects.filter(status=MessageStatus.SENT).exists()
    assert not EmailEvent.objects.filter(kind=EmailEventKind.SENT).exists()


def test_it_bounces_a_refused_contact_even_when_a_bcc_is_accepted(
    delivery_env, fault_server, make_mailbox, queue, rep
):
    _, host, port = fault_server(
        "rcpt",
        "550 5.1.1 <gone@client.example>: Recipient address rejected: User unknown",
        bad_recipients=("gone@client.example",),
    )
    mailbox = make_mailbox(host, port)
    sequence = sequence_actions.do_create_sequence(rep, "Outreach", time_zone="UTC", send_time="09:00")
    step = sequence_actions.do_add_step(
        sequence, "email", subject="Hello", body="<p>Hi</p>", bcc=["crm-log@acme.example"]
    )
    with clock.frozen(NOW - dt.timedelta(days=1)):
        sequence_actions.do_activate(sequence)
    sequence.mailbox = mailbox
    sequence.save(update_fields=["mailbox"])
    gone = Contact.objects.create(first_name="Gone", email="gone@client.example")
    row = queue(sequence, step, gone)

    while deliver_due("w1"):
        pass

    # DESIGN 5: "5.1.x on a recipient bounces the contact" (EMAIL.md: for the contact's address).
    row.refresh_from_db()
    gone.refresh_from_db()
    assert (row.status, gone.email_status) == (MessageStatus.FAILED, EmailStatus.BOUNCED)

