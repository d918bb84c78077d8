"""Header injection: CR or LF in a contact's name or address, a subject (typed or rendered
by Liquid), CC, BCC, Reply-To or a mailbox's display name never adds a header to a
message. Either the value is refused where it is entered, with the reason, or the
send fails with the reason; the bytes that reach the SMTP server are checked."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from sequent.mail import actions
from sequent.mail.delivery import deliver_due
from sequent.mail.models import MessageStatus
from sequent.mail.tests.conftest import parse
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import Step

pytestmark = pytest.mark.usefixtures("delivery_env")

PAYLOADS = [
    "Eve\r\nBcc: victim@evil.example",
    "Eve\nX-Injected: yes",
    "Eve\rX-Injected: yes",
    "Eve\r\n\r\n<p>a body of our choosing</p>",
    "Eve\u2028X-Injected: yes",
]
EXPECTED_HEADERS = {
    "from",
    "to",
    "cc",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "in-reply-to",
    "references",
}


def send_all():
    while deliver_due("w1"):
        pass


def assert_not_injected(handler):
    for received in handler.received:
        message = parse(received.data)
        names = {name.lower() for name in message.keys()}
        assert names <= EXPECTED_HEADERS, f"extra headers: {names - EXPECTED_HEADERS}"
        assert "victim@evil.example" not in received.rcpt_tos
        head = received.data.split(b"\r\n\r\n", 1)[0]
        assert b"\nX-Injected" not in head and b"\nBcc" not in head
        assert (
            message.get_body(("html",)) is None
            or "of our choosing" not in message.get_body(("html",)).get_content()
        )


def assert_sent_clean_or_failed(row, handler):
    row.refresh_from_db()
    assert_not_injected(handler)
    if row.status == MessageStatus.SENT:
        # The value went into the subject without its line break.
        (received,) = handler.received
        subject = parse(received.data)["Subject"]
        assert "\n" not in subject and "\r" not in subject
    else:
        assert (row.status, handler.received) == (MessageStatus.FAILED, [])
        assert "line break" in row.last_error


@pytest.fixture
def sender(recorder, make_mailbox, make_sequence):
    handler, host, port = recorder

    def make(**step_fields):
        mailbox = make_mailbox(host, port)
        step_fields.setdefault("subject", "Hello {{ contact.first_name }}")
        sequence, (step,) = make_sequence([step_fields], mailbox=mailbox)
        return mailbox, sequence, step

    return handler, make


@pytest.mark.parametrize("payload", PAYLOADS)
def test_it_never_lets_a_contact_name_add_a_header(sender, make_contact, queue, payload):
    handler, make = sender
    _, sequence, step = make()
    contact = make_contact(first_name=payload, last_name=payload)
    row = queue(sequence, step, contact)

    send_all()

    assert_sent_clean_or_failed(row, handler)


@pytest.mark.parametrize("payload", PAYLOADS[:3])
def test_it_never_lets_a_contact_address_add_a_header(sender, make_contact, queue, payload):
    handler, make = sender
    _, sequence, step = make()
    row = queue(sequence, step, make_contact(email=payload.replace("Eve", "eve@client.example")))

    send_all()

    row.refresh_from_db()
    assert row.status == MessageStatus.FAILED
    assert row.last_error
    assert handler.received == []


@pytest.mark.parametrize("field", ["cc", "bcc", "reply_to"])
def test_it_refuses_a_line_break_in_cc_bcc_and_reply_to(sender, field):
    _, make = sender
    _, _, step = make()
    value = "crm@acme.example\r\nBcc: victim@evil.example"
    with pytest.raises(ValidationError) as caught:
        sequence_actions.do_update_step(step, **{field: [value] if field != "reply_to" else value})
    assert field in str(caught.value)


@pytest.mark.parametrize("field", ["cc", "bcc", "reply_to"])
def test_it_fails_a_stored_cc_bcc_or_reply_to_with_a_line_break(sender, make_contact, queue, field):
    handler, make = sender
    _, sequence, step = make()
    value = "crm@acme.example\r\nBcc: victim@evil.example"
    Step.objects.filter(pk=step.pk).update(**{field: [value] if field != "reply_to" else value})
    row = queue(sequence, step, make_contact())

    send_all()

    row.refresh_from_db()
    assert row.status == MessageStatus.FAILED
    assert "line break" in row.last_error or "not a valid address" in row.last_error
    assert handler.received == []


def test_it_refuses_a_typed_subject_with_a_line_break(sender):
    _, make = sender
    _, _, step = make()
    with pytest.raises(ValidationError) as caught:
        sequence_actions.do_update_step(step, subject="Hello\r\nBcc: victim@evil.example")
    assert "must be one line" in str(caught.value)


def test_it_never_lets_a_stored_subject_with_a_line_break_add_a_header(sender, make_contact, queue):
    # A subject saved before the editor refused line breaks: the send folds it away or fails.
    handler, make = sender
    _, sequence, step = make()
    Step.objects.filter(pk=step.pk).update(subject="Hello\r\nBcc: victim@evil.example")
    row = queue(sequence, step, make_contact())

    send_all()

    assert_sent_clean_or_failed(row, handler)


def test_it_never_lets_liquid_output_add_a_header(sender, make_contact, queue):
    handler, make = sender
    _, sequence, step = make()
    Step.objects.filter(pk=step.pk).update(
        subject="Hi {{ contact.job_title | append: '\r\nX-Injected: yes' }}"
    )
    row = queue(sequence, step, make_contact(job_title="Buyer"))

    send_all()

    assert_sent_clean_or_failed(row, handler)


@pytest.mark.parametrize("payload", PAYLOADS[:3])
def test_it_refuses_a_line_break_in_a_mailbox_display_name(sender, rep, payload):
    _, make = sender
    mailbox, _, _ = make()
    with pytest.raises(ValidationError) as caught:
        actions.do_update_mailbox(mailbox, rep, display_name=payload)
    assert "display_name" in str(caught.value) or "line break" in str(caught.value)


def test_it_never_sends_from_a_stored_display_name_with_a_line_break(sender, make_contact, queue):
    handler, make = sender
    mailbox, sequence, step = make()
    type(mailbox).objects.filter(pk=mailbox.pk).update(display_name="Alice\r\nBcc: victim@evil.example")
    row = queue(sequence, step, make_contact())

    send_all()

    row.refresh_from_db()
    assert_not_injected(handler)
    assert row.status in (MessageStatus.SENT, MessageStatus.FAILED)
    if row.status == MessageStatus.FAILED:
        assert "line break" in row.last_error
