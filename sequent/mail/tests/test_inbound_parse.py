"""Classifying inbound mail: bounce reports of Gmail, Exchange, Postfix and qmail,
auto-replies of Gmail and Exchange, replies with quoted history, return dates and
unsubscribe requests. Pure: no database, no server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sequent.mail import inbound_parse
from sequent.mail.inbound_parse import classify, return_date

DATA = Path(__file__).parent / "data" / "inbound"
OURS = "<177244.9.1@sequent.example.com>"
CONTACT = "dana@client.example"
MAILBOX = "alice@acme.example"
MONDAY = dt.date(2026, 3, 2)


def fixture(name: str, message_id: str = OURS, contact: str = CONTACT) -> bytes:
    """A stored inbound message with our Message-ID and addresses filled in."""
    text = (DATA / name).read_text()
    text = text.replace("{{MESSAGE_ID}}", message_id).replace("{{CONTACT}}", contact)
    return text.replace("{{MAILBOX}}", MAILBOX).replace("\n", "\r\n").encode()


@pytest.mark.parametrize(
    ("name", "status"),
    [("gmail_bounce.eml", "5.1.1"), ("exchange_bounce.eml", "5.1.10"), ("postfix_bounce.eml", "5.1.1")],
)
def test_it_reads_a_hard_bounce_report_and_the_message_it_returns(name, status):
    found = classify(fixture(name), today=MONDAY)

    assert found.kind == "hard_bounce"
    assert found.referenced_ids[0] == OURS
    (report,) = found.bounces
    assert (report.action, report.status, report.recipient) == ("failed", status, CONTACT)
    assert report.diagnostic.startswith("550 5.1.")


def test_it_treats_a_delayed_report_as_a_soft_bounce():
    found = classify(fixture("postfix_delayed.eml"), today=MONDAY)

    assert found.kind == "soft_bounce"
    assert [(b.action, b.status) for b in found.bounces] == [("delayed", "4.4.1")]
    assert found.referenced_ids == [OURS]


def test_it_falls_back_to_flufl_bounce_for_a_report_without_rfc3464_parts():
    found = classify(fixture("qmail_bounce.eml"), today=MONDAY)

    assert found.kind == "hard_bounce"
    assert [b.recipient for b in found.bounces] == [CONTACT]


@pytest.mark.parametrize(
    ("name", "back"),
    [("gmail_auto_reply.eml", dt.date(2026, 3, 9)), ("exchange_auto_reply.eml", dt.date(2026, 3, 12))],
)
def test_it_recognises_an_auto_reply_and_its_return_date(name, back):
    found = classify(fixture(name), today=MONDAY)

    assert found.kind == "auto_reply"
    assert found.return_date == back
    assert found.referenced_ids == [OURS]


def test_it_needs_both_exchange_headers_to_call_a_message_automatic():
    # Outlook puts X-Auto-Response-Suppress on ordinary mail too.
    found = classify(fixture("outlook_reply.eml"), today=MONDAY)

    assert found.kind == "reply"
    assert "pricing first" in found.reply_text
    assert "15-minute demo" not in found.reply_text


def test_it_keeps_only_the_new_text_of_a_gmail_reply():
    found = classify(fixture("gmail_reply.eml"), today=MONDAY)

    assert found.kind == "reply"
    assert found.referenced_ids == [OURS]
    assert found.from_address == CONTACT
    assert found.reply_text.startswith("Hi Alice,")
    assert "Thursday afternoon works" in found.reply_text
    assert "wrote:" not in found.reply_text
    assert "15-minute demo" not in found.reply_text
    assert found.wants_unsubscribe is False


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Auto-Submitted: auto-replied", True),
        ("Auto-Submitted: auto-generated", True),
        ("Auto-Submitted: no", False),
        ("X-Autoreply: yes", True),
        ("X-Autorespond: Out of office", True),
        ("Precedence: auto_reply", True),
        ("Precedence: bulk", False),
    ],
)
def test_it_reads_each_auto_reply_header(value, expected):
    raw = f"From: {CONTACT}\r\nSubject: Re: Hello\r\nIn-Reply-To: {OURS}\r\n{value}\r\n\r\nHi\r\n".encode()

    assert (classify(raw, today=MONDAY).kind == "auto_reply") is expected


def test_it_reads_the_unsubscribe_request_in_the_first_line_of_a_reply():
    found = classify(fixture("unsubscribe_reply.eml"), today=MONDAY)

    assert found.kind == "reply"
    assert found.wants_unsubscribe is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unsubscribe", True),
        ("Unsubscribe me please", True),
        ("Remove me.", True),
        ("Please remove me from your list", True),
        ("STOP", True),
        ("\n\nStop!\n", True),
        ("Don't stop, this is interesting", False),
        ("Thanks! How do I unsubscribe my colleague?", False),
        ("Hi,\nunsubscribe", False),
    ],
)
def test_it_only_takes_an_unsubscribe_request_from_the_first_line(text, expected):
    assert inbound_parse.asks_to_unsubscribe(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I will be back on March 9.", dt.date(2026, 3, 9)),
        ("I am out of the office until 12/03/2026.", dt.date(2026, 3, 12)),
        ("I'm returning Monday and will reply then.", dt.date(2026, 3, 9)),
        ("I will return on the 16th of March.", dt.date(2026, 3, 16)),
        ("Back Thursday, March 5th.", dt.date(2026, 3, 5)),
        ("Out until 2026-03-20 with no access to email", dt.date(2026, 3, 20)),
        ("Thanks for your message, I'll get back to you soon.", None),
        # February 2 has passed; next year's is too far away to be an absence.
        ("Back on February 2", None),
    ],
)
def test_it_finds_the_return_date_in_english_text(text, expected):
    assert return_date(text, MONDAY) == expected


def test_it_reads_a_return_date_without_a_year_as_the_next_one():
    assert return_date("Away until Jan 5", dt.date(2026, 12, 20)) == dt.date(2027, 1, 5)


def test_it_ignores_a_return_date_too_far_away_to_be_an_absence():
    assert return_date("Back on 2027-12-01", MONDAY) is None


def test_it_treats_mail_without_our_headers_as_a_candidate_reply_with_its_sender():
    found = classify(fixture("plain_followup.eml"), today=MONDAY)

    assert found.kind == "reply"
    assert found.referenced_ids == []
    assert found.from_address == CONTACT
    assert found.date == dt.datetime(2026, 3, 4, 7, 30, tzinfo=dt.UTC)
