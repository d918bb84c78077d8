"""Delivery of outbox rows to a real SMTP server: headers on the wire, threading,
rendering at send time, the send-time gate, and connection reuse."""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field

import pytest
from django.core.management import call_command

from sequent.crm.models import Activity, ActivityKind, EmailStatus, LastContactedMode
from sequent.lib import clock
from sequent.mail import tokens
from sequent.mail.delivery import deliver_due, email_sources, recover_stale
from sequent.mail.models import (
    EmailEvent,
    EmailEventKind,
    Mailbox,
    MessageStatus,
    OutboundMessage,
    TrackedLink,
)
from sequent.mail.tests.conftest import NOW, parse
from sequent.mail.tests.servers import RecordingHandler, smtp_server
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import EnrollmentStatus, SequenceStatus

pytestmark = pytest.mark.usefixtures("delivery_env")

BODY = """<html><head><style>p { color: #333; }</style></head><body>
<p>Hi {{ contact.first_name }} at {{ account.name }},</p>
<p>See <a href="https://www.example.com/pricing?plan=pro&amp;ref=seq">our pricing</a>
or <a href="mailto:alice@acme.example">write to me</a>.</p>
<p>{{ sender.first_name }}</p>
<p><a href="{{ unsubscribe_link }}">Unsubscribe</a></p>
</body></html>"""


def send_all(worker="w1"):
    """Deliver until nothing is left, as `sequent send_due` does."""
    while deliver_due(worker):
        pass


def by_message_id(handler):
    counts = {}
    for received in handler.received:
        message_id = parse(received.data)["Message-ID"]
        counts[message_id] = counts.get(message_id, 0) + 1
    return counts


def test_it_sends_a_queued_email_with_every_header_on_the_wire(
    recorder, make_mailbox, make_sequence, make_contact, queue, rep
):
    handler, host, port = recorder
    mailbox = make_mailbox(host, port)
    sequence, (step,) = make_sequence(
        [
            {
                "subject": "Pricing for {{ account.name }}",
                "body": BODY,
                "cc": ["manager@acme.example"],
                "bcc": ["crm-log@acme.example"],
                "reply_to": "replies@acme.example",
            }
        ],
        mailbox=mailbox,
    )
    contact = make_contact(first_name="Dana", last_name="Whitfield", email="dana@client.example")
    row = queue(sequence, step, contact)

    assert deliver_due("w1") is True

    assert len(handler.received) == 1
    received = handler.received[0]
    assert received.mail_from == "alice@acme.example"
    assert sorted(received.rcpt_tos) == [
        "crm-log@acme.example",
        "dana@client.example",
        "manager@acme.example",
    ]
    msg = parse(received.data)
    assert msg["From"] == "Alice Rep <alice@acme.example>"
    assert msg["To"] == "Dana Whitfield <dana@client.example>"
    assert msg["Cc"] == "manager@acme.example"
    assert msg["Bcc"] is None
    assert msg["Reply-To"] == "replies@acme.example"
    assert msg["Subject"] == f"Pricing for {contact.account.name}"
    assert msg["Message-ID"] == row.message_id
    assert msg["Date"] == "Mon, 02 Mar 2026 09:00:00 +0000"
    assert msg["In-Reply-To"] is None
    unsubscribe = re.fullmatch(r"<https://sequent\.example\.com/u/([^>]+)>", msg["List-Unsubscribe"])
    assert unsubscribe, msg["List-Unsubscribe"]
    assert tokens.read_unsubscribe_token(unsubscribe.group(1)).pk == row.pk
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "Hi Dana at" in html and "Hi Dana at" in text
    assert 'style="color: #333' in html  # CSS inlined
    assert "https://www.example.com/pricing" not in html  # the link is tracked ...
    assert "mailto:alice@acme.example" in html  # ... a mailto is not
    assert re.search(r'href="https://sequent\.example\.com/t/c/[^"]+"', html)
    assert re.search(r'<img src="https://sequent\.example\.com/t/o/[^"]+\.gif"', html)
    assert f"https://sequent.example.com/u/{unsubscribe.group(1)}" in html  # the same link, untracked

    row.refresh_from_db()
    assert row.status == MessageStatus.SENT
    assert row.sent_at == NOW
    assert row.attempts == 1
    assert row.subject == msg["Subject"]
    assert "Hi Dana at" in row.body
    assert row.from_email == "alice@acme.example"
    assert list(TrackedLink.objects.filter(message=row).values_list("index", "url")) == [
        (0, "https://www.example.com/pricing?plan=pro&ref=seq")
    ]
    assert EmailEvent.objects.filter(message=row, kind=EmailEventKind.SENT, step=step).count() == 1
    contact.refresh_from_db()
    assert contact.last_contacted_mode == LastContactedMode.NO_REPLY
    assert contact.last_contacted_at == NOW
    assert Activity.objects.filter(contact=contact, kind=ActivityKind.EMAIL_SENT, user=rep).count() == 1
    assert deliver_due("w1") is False  # nothing left


def test_it_threads_follow_ups_under_the_earlier_emails(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (first, second, third) = make_sequence(
        [
            {"subject": "Idea for {{ account.name }}"},
            {"thread": "reply", "subject": "", "body": "<p>Following up</p>"},
            {"thread": "reply", "subject": "", "body": "<p>Last try</p>"},
        ],
        mailbox=make_mailbox(host, port),
    )
    contact = make_contact()
    one = queue(sequence, first, contact)
    send_all()
    two = queue(sequence, second, contact)
    send_all()
    three = queue(sequence, third, contact)
    send_all()

    msgs = [parse(r.data) for r in handler.received]
    assert [m["Message-ID"] for m in msgs] == [one.message_id, two.message_id, three.message_id]
    subject = f"Idea for {contact.account.name}"
    assert msgs[0]["Subject"] == subject
    assert msgs[1]["Subject"] == f"Re: {subject}"
    assert msgs[1]["In-Reply-To"] == one.message_id
    assert msgs[1]["References"] == one.message_id
    assert msgs[2]["Subject"] == f"Re: {subject}"  # never "Re: Re:"
    assert msgs[2]["In-Reply-To"] == two.message_id
    assert msgs[2]["References"] == f"{one.message_id} {two.message_id}"


def test_it_holds_a_reply_until_the_email_it_answers_has_left(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (first, second) = make_sequence(
        [{"subject": "Hello"}, {"thread": "reply", "subject": "", "body": "<p>Again</p>"}],
        mailbox=make_mailbox(host, port),
    )
    contact = make_contact()
    queue(sequence, first, contact, not_before=NOW + dt.timedelta(hours=1))
    reply = queue(sequence, second, contact)
    send_all()
    reply.refresh_from_db()
    assert handler.received == []
    assert reply.status == MessageStatus.DEFERRED
    assert reply.last_error == "waits for the earlier email of its thread to be sent"


def test_it_renders_the_step_as_it_is_at_send_time(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{"subject": "Old subject"}], mailbox=make_mailbox(host, port))
    row = queue(sequence, step, make_contact(first_name="Lee"))
    sequence_actions.do_update_step(step, subject="New subject for {{ contact.first_name }}")
    send_all()
    assert parse(handler.received[0].data)["Subject"] == "New subject for Lee"
    assert email_sources(step) == ("New subject for {{ contact.first_name }}", step.body)
    row.refresh_from_db()
    assert row.subject == "New subject for Lee"


def test_it_fails_an_email_with_an_empty_placeholder_and_never_sends_hi_comma(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence(
        [{"body": "<p>Hi {{ contact.first_name }},</p>"}], mailbox=make_mailbox(host, port)
    )
    row = queue(sequence, step, make_contact(first_name=" "))
    send_all()
    row.refresh_from_db()
    assert handler.received == []
    assert row.status == MessageStatus.FAILED
    assert row.reason_code == "template"
    assert "contact.first_name is empty and has no default" in row.last_error


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("<p>{{ contact.__class__.__mro__ }}</p>", "is empty and has no default"),
        ("{% for i in (1..100000) %}x{% endfor %}", "a loop runs more than 10,000 times"),
        (
            "{% for i in (1..9000) %}{% for j in (1..9000) %}x{% endfor %}{% endfor %}",
            "a loop runs more than",
        ),
        (
            "{% assign s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}"
            "{% for i in (1..9999) %}{{ s }}{{ s }}{% endfor %}",
            "the output is larger than 1,000,000 bytes",
        ),
        ("{% include 'secrets' %}", "include"),
        ("{{ 'x' | system }}", "unknown filter"),
    ],
)
def test_it_refuses_template_injection_with_a_reason_and_sends_nothing(
    recorder, make_mailbox, make_sequence, make_contact, queue, body, reason
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{"body": "<p>ok</p>"}], mailbox=make_mailbox(host, port))
    step.body = body  # bypass the editor's validation: the send must still be safe
    step.save(update_fields=["body"])
    row = queue(sequence, step, make_contact())
    send_all()
    row.refresh_from_db()
    assert handler.received == []
    assert row.status == MessageStatus.FAILED
    assert reason in row.last_error


@dataclass
class CountingHandler(RecordingHandler):
    sessions: list[str] = field(default_factory=list)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions.append(hostname)
        session.host_name = hostname
        return responses


def test_it_reuses_one_connection_for_a_batch_of_a_mailbox(make_mailbox, make_sequence, make_contact, queue):
    handler = CountingHandler()
    with smtp_server(handler) as (host, port):
        sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port))
        rows = [queue(sequence, step, make_contact()) for _ in range(5)]
        assert deliver_due("w1") is True
    assert len(handler.received) == 5
    assert len(handler.sessions) == 1
    assert set(by_message_id(handler)) == {r.message_id for r in rows}


def test_it_cancels_or_holds_emails_the_send_time_gate_refuses(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    mailbox = make_mailbox(host, port)
    sequence, (step,) = make_sequence([{}], mailbox=mailbox)
    opted_out = queue(sequence, step, make_contact(email_opt_out=True))
    bounced = queue(sequence, step, make_contact(email_status=EmailStatus.BOUNCED))
    exited = queue(sequence, step, make_contact())
    exited.enrollment.status, exited.enrollment.exit_reason = EnrollmentStatus.EXITED, "replied"
    exited.enrollment.save()
    paused = queue(sequence, step, make_contact())
    paused.enrollment.status = EnrollmentStatus.PAUSED
    paused.enrollment.paused_until = NOW + dt.timedelta(days=3)
    paused.enrollment.save()
    fine = queue(sequence, step, make_contact())

    send_all()

    assert [parse(r.data)["Message-ID"] for r in handler.received] == [fine.message_id]
    states = {
        name: OutboundMessage.objects.values_list("status", "last_error", "not_before").get(pk=row.pk)
        for name, row in [
            ("opted_out", opted_out),
            ("bounced", bounced),
            ("exited", exited),
            ("paused", paused),
        ]
    }
    assert states["opted_out"][:2] == (MessageStatus.CANCELLED, "the contact opted out of email")
    assert states["bounced"][:2] == (MessageStatus.CANCELLED, "the contact's email address bounced")
    assert states["exited"][:2] == (MessageStatus.CANCELLED, "the enrollment is exited (replied)")
    assert states["paused"][0] == MessageStatus.DEFERRED
    assert states["paused"][2] == NOW + dt.timedelta(days=3)


def test_it_holds_the_emails_of_a_paused_sequence_and_sends_them_after_resuming(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port))
    row = queue(sequence, step, make_contact())
    sequence_actions.do_pause(sequence)
    send_all()
    row.refresh_from_db()
    assert (row.status, row.last_error) == (MessageStatus.DEFERRED, "the sequence is paused")
    sequence_actions.do_resume(sequence)
    clock.set_now(row.not_before)
    send_all()
    row.refresh_from_db()
    assert row.status == MessageStatus.SENT
    assert len(handler.received) == 1


def test_it_leaves_the_queue_of_a_mailbox_paused_for_its_login_untouched(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    mailbox = make_mailbox(host, port, status="paused_auth")
    sequence, (step,) = make_sequence([{}], mailbox=mailbox)
    row = queue(sequence, step, make_contact())
    assert deliver_due("w1") is False
    row.refresh_from_db()
    assert row.status == MessageStatus.QUEUED
    assert handler.received == []


def test_it_sends_from_the_owners_mailbox_or_the_workspace_default_when_the_sequence_names_none(
    recorder, make_mailbox, make_sequence, make_contact, queue, other_rep
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{}])
    row = queue(sequence, step, make_contact())
    send_all()
    row.refresh_from_db()
    assert row.status == MessageStatus.DEFERRED
    assert row.last_error.startswith("no mailbox to send from")
    assert row.not_before == NOW + dt.timedelta(hours=1)

    make_mailbox(host, port, owner=other_rep, email_address="team@acme.example", is_workspace_default=True)
    clock.set_now(NOW + dt.timedelta(hours=1))
    send_all()
    row.refresh_from_db()
    assert row.status == MessageStatus.SENT
    assert parse(handler.received[0].data)["From"].endswith("<team@acme.example>")


def test_it_marks_a_row_left_sending_by_a_dead_worker_uncertain_and_never_resends_it(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port))
    row = queue(sequence, step, make_contact())
    OutboundMessage.objects.filter(pk=row.pk).update(
        status=MessageStatus.SENDING,
        claimed_by="dead/1",
        lease_until=NOW + dt.timedelta(minutes=15),
        handed_at=NOW,  # the dead worker had started handing it to SMTP
    )
    assert deliver_due("w1") is False  # the lease still runs: nobody touches it
    clock.set_now(NOW + dt.timedelta(minutes=16))
    assert recover_stale(clock.now()) == 1
    row.refresh_from_db()
    assert row.status == MessageStatus.UNCERTAIN
    clock.set_now(NOW + dt.timedelta(days=2))
    send_all()
    assert handler.received == []


def test_it_queues_again_a_row_a_dead_worker_claimed_but_never_handed_to_smtp(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port))
    row = queue(sequence, step, make_contact())
    OutboundMessage.objects.filter(pk=row.pk).update(
        status=MessageStatus.SENDING, claimed_by="dead/1", lease_until=NOW + dt.timedelta(minutes=15)
    )
    clock.set_now(NOW + dt.timedelta(minutes=16))
    assert recover_stale(clock.now()) == 1
    row.refresh_from_db()
    assert row.status == MessageStatus.QUEUED
    send_all()
    assert len(handler.received) == 1
    row.refresh_from_db()
    assert row.status == MessageStatus.SENT


def test_it_sends_what_a_sequence_run_queued_with_sequent_send_due(recorder, make_mailbox, make_contact, rep):
    """End to end with the engine: `run_due` at the send time queues, `send_due` sends."""
    handler, host, port = recorder
    mailbox = make_mailbox(host, port)
    contact = make_contact(first_name="Robin")
    sequence = sequence_actions.do_create_sequence(
        rep, "Intro", time_zone="UTC", send_time="09:00", mailbox=mailbox.pk
    )
    sequence_actions.do_add_step(
        sequence, "email", subject="Hi {{ contact.first_name }}", body="<p>Hello</p>"
    )
    sequence_actions.do_add_contacts(sequence, [contact.pk])
    with clock.frozen(NOW - dt.timedelta(hours=1)):
        sequence_actions.do_activate(sequence)
    call_command("run_due", now=NOW.isoformat(), no_mail=True, stdout=io.StringIO())
    assert OutboundMessage.objects.filter(contact=contact, status=MessageStatus.QUEUED).count() == 1

    out = io.StringIO()
    call_command("send_due", now=NOW.isoformat(), stdout=out)
    assert out.getvalue().startswith("1 sent, 0 deferred")
    assert parse(handler.received[0].data)["Subject"] == "Hi Robin"
    assert sequence.status == SequenceStatus.ACTIVE
    assert Mailbox.objects.get(pk=mailbox.pk).status == "active"


# SQLite's in-memory test database locks whole tables across threads; a file database
# (production) serialises writers with IMMEDIATE transactions instead.
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_never_sends_twice_when_workers_deliver_at_the_same_time(
    make_mailbox, make_sequence, make_contact, queue
):
    import threading

    from django.db import connection

    handler = RecordingHandler()
    with smtp_server(handler) as (host, port):
        sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port, per_minute_limit=1000))
        rows = [queue(sequence, step, make_contact()) for _ in range(30)]
        errors = []

        def work(name):
            try:
                while deliver_due(name, limit=4):
                    pass
            except Exception as exc:  # surfaced below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
    counts = by_message_id(handler)
    assert sorted(counts) == sorted(r.message_id for r in rows)
    assert set(counts.values()) == {1}
    assert OutboundMessage.objects.filter(status=MessageStatus.SENT).count() == 30
    assert EmailEvent.objects.filter(kind=EmailEventKind.SENT).count() == 30


def test_it_sends_a_personalised_reminder_draft_as_the_rep_wrote_it(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{"kind": "email_reminder"}], mailbox=make_mailbox(host, port))
    row = queue(sequence, step, make_contact(), status=MessageStatus.DRAFT)
    assert deliver_due("w1") is False  # a draft waits for the rep
    # The rep's final text is sent as written: it is not a template any more.
    OutboundMessage.objects.filter(pk=row.pk).update(
        status=MessageStatus.QUEUED, subject="About {{ our call }}", body="<p>As promised: {{ notes }}</p>"
    )
    send_all()
    msg = parse(handler.received[0].data)
    assert msg["Subject"] == "About {{ our call }}"
    assert "As promised: {{ notes }}" in msg.get_body(("html",)).get_content()
