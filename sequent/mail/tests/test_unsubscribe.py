"""Unsubscribing: GET shows a page and changes nothing, POST without cookies or CSRF
unsubscribes with a valid token, a forged token changes nothing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client

from sequent.crm.models import Contact
from sequent.mail import tokens
from sequent.mail.delivery import deliver_due
from sequent.mail.models import EmailEvent, EmailEventKind, MessageStatus, OutboundMessage
from sequent.mail.tests.conftest import NOW, parse

pytestmark = pytest.mark.usefixtures("delivery_env")


@pytest.fixture
def sent(recorder, make_mailbox, make_sequence, make_contact, queue):
    """One email sent to a contact who has more emails waiting in two sequences:
    (sent row, unsubscribe path from the List-Unsubscribe header, [waiting rows], body link)."""
    handler, host, port = recorder
    mailbox = make_mailbox(host, port)
    first, (step, later) = make_sequence(
        [{"body": '<p>Hi</p><p><a href="{{ unsubscribe_link }}">Unsubscribe</a></p>'}, {"day": 3}],
        mailbox=mailbox,
    )
    second, (other_step,) = make_sequence([{"kind": "email_reminder"}], mailbox=mailbox, name="Second")
    contact = make_contact()
    row = queue(first, step, contact)
    assert deliver_due("w1")
    msg = parse(handler.received[0].data)
    header_url = re.fullmatch(r"<https://sequent\.example\.com(/u/[^>]+)>", msg["List-Unsubscribe"]).group(1)
    body_url = re.search(
        r'href="https://sequent\.example\.com(/u/[^"]+)"', msg.get_body(("html",)).get_content()
    ).group(1)
    waiting = [
        queue(first, later, contact, not_before=NOW + dt.timedelta(days=2)),
        queue(second, other_step, contact, status=MessageStatus.DRAFT),
    ]
    OutboundMessage.objects.filter(pk=waiting[0].pk).update(status=MessageStatus.DEFERRED)
    row.refresh_from_db()
    return row, header_url, waiting, body_url


def opted_out(contact):
    return Contact.objects.get(pk=contact.pk).email_opt_out


def test_it_shows_a_confirmation_page_on_get_and_unsubscribes_nobody(sent):
    row, path, waiting, body_url = sent
    assert body_url == path  # the link in the body is the header's, and is not click-tracked
    response = Client().get(path)
    assert response.status_code == 200
    assert b'<form method="post">' in response.content
    assert b"d***@client.example" in response.content  # masked: enough to recognise, no more
    assert not opted_out(row.contact)
    assert not EmailEvent.objects.filter(kind=EmailEventKind.UNSUBSCRIBED).exists()
    assert {OutboundMessage.objects.get(pk=w.pk).status for w in waiting} == {
        MessageStatus.DEFERRED,
        MessageStatus.DRAFT,
    }


def test_it_unsubscribes_on_a_cookieless_one_click_post_and_cancels_every_waiting_email(sent):
    row, path, waiting, _ = sent
    client = Client(enforce_csrf_checks=True)  # no session, no CSRF cookie: as a mailbox provider posts
    response = client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    assert b"You are unsubscribed" in response.content
    assert "Set-Cookie" not in response.headers
    assert opted_out(row.contact)
    event = EmailEvent.objects.get(kind=EmailEventKind.UNSUBSCRIBED)
    assert (event.message_id, event.contact_id, event.step_id) == (row.pk, row.contact_id, row.step_id)
    assert [OutboundMessage.objects.get(pk=w.pk).status for w in waiting] == [MessageStatus.CANCELLED] * 2
    assert OutboundMessage.objects.get(pk=row.pk).status == MessageStatus.SENT  # what left stays sent

    # Pressing the button again is harmless: one event, and the page says so on GET.
    client.post(path)
    assert EmailEvent.objects.filter(kind=EmailEventKind.UNSUBSCRIBED).count() == 1
    assert b"already unsubscribed" in Client().get(path).content


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_changes_nothing_for_a_forged_token(sent, method):
    row, path, waiting, _ = sent
    token = path.removeprefix("/u/")
    forged = [
        token[:-2] + ("xx" if not token.endswith("xx") else "yy"),
        tokens.make_open_token(row.pk),  # another purpose's token
        "eyJtIjoxfQ:1:forged",
    ]
    for bad in forged:
        response = getattr(Client(), method)(f"/u/{bad}")
        assert response.status_code == 404
        assert b"not valid" in response.content
    assert not opted_out(row.contact)
    assert not EmailEvent.objects.filter(kind=EmailEventKind.UNSUBSCRIBED).exists()
    assert {OutboundMessage.objects.get(pk=w.pk).status for w in waiting} == {
        MessageStatus.DEFERRED,
        MessageStatus.DRAFT,
    }


def test_it_unsubscribes_with_a_contact_token_too(make_contact):
    contact = make_contact()
    response = Client(enforce_csrf_checks=True).post(
        f"/u/{tokens.make_unsubscribe_token(contact_id=contact.pk)}"
    )
    assert response.status_code == 200
    assert opted_out(contact)
    assert EmailEvent.objects.get(kind=EmailEventKind.UNSUBSCRIBED).message_id is None
