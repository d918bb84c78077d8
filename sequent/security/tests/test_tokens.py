"""Tracking and unsubscribe tokens: forged, truncated, altered by one character, swapped
between messages or made for another purpose -> 404 (the open pixel with its GIF as the body), never a
redirect, nothing stored or changed; signatures compared in constant time."""

from __future__ import annotations

import hmac
import inspect
import secrets

import django.core.signing
import pytest
from django.test import Client
from django.utils import crypto

from sequent.crm.models import Contact
from sequent.mail import tokens
from sequent.mail.message_ids import new_message_id
from sequent.mail.models import OutboundMessage, TrackedLink
from sequent.security.tests.world import build_world, snapshot

RECORDED = "https://www.example.com/case-study"


@pytest.fixture
def messages(rep, admin_user):
    """Two sent messages to two contacts, each with one recorded link."""
    world = build_world(rep, admin_user)
    first = Contact.objects.get(pk=world.ids["contact_id"])
    second = Contact.objects.create(owner=rep, first_name="Other", email="other@client.example")
    rows = []
    for contact in (first, second):
        row = OutboundMessage.objects.create(
            contact=contact, owner=rep, to_email=contact.email, status="sent", message_id=new_message_id()
        )
        TrackedLink.objects.create(message=row, index=0, url=RECORDED)
        rows.append(row)
    return rows


def _altered(token: str) -> list[str]:
    """Damaged copies of a good token."""
    payload, _, signature = token.rpartition(":")
    flip = lambda s, i: s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1 :]  # noqa: E731
    return [
        token[:-1],  # truncated
        token[: len(token) // 2],
        flip(token, 0),  # one character of the payload
        flip(token, len(token) - 1),  # one character of the signature
        payload,  # no signature
        payload + ":" + "x" * len(signature),  # forged signature
        "nonsense",
        "",
        "https:%2F%2Fevil.example",
    ]


def _swapped(one: str, other: str) -> str:
    """*one*'s payload under *other*'s signature."""
    return one.rpartition(":")[0] + ":" + other.rpartition(":")[2]


def test_it_refuses_every_damaged_click_token_and_never_redirects(messages):
    first, second = messages
    good = tokens.make_click_token(first.pk, 0)
    other = tokens.make_click_token(second.pk, 0)
    bad = [
        *_altered(good),
        _swapped(good, other),
        _swapped(other, good),
        tokens.make_open_token(first.pk),  # another purpose
        tokens.make_unsubscribe_token(message_id=first.pk),
        tokens.make_click_token(first.pk, 7),  # a link index nothing was recorded for
        tokens.make_click_token(999999, 0),  # a message that does not exist
    ]
    before = snapshot()
    for token in bad:
        if not token:
            continue
        response = Client().get(f"/t/c/{token}")
        assert 400 <= response.status_code < 500, token
        assert "Location" not in response, token
    assert snapshot() == before
    response = Client().get(f"/t/c/{good}")
    assert response.status_code == 302 and response["Location"] == RECORDED


def test_it_records_nothing_for_a_damaged_open_token(messages):
    first, second = messages
    good = tokens.make_open_token(first.pk)
    bad = [
        *_altered(good),
        _swapped(good, tokens.make_open_token(second.pk)),
        tokens.make_click_token(first.pk, 0),
    ]
    before = snapshot()
    for token in filter(None, bad):
        response = Client().get(f"/t/o/{token}.gif")
        # 404 (with the GIF as its body, so no broken image shows: docs/EMAIL.md); never
        # a redirect.
        assert "Location" not in response, token
        assert response.status_code == 404, token
    assert snapshot() == before


@pytest.mark.parametrize("method", ["get", "post"])
def test_it_unsubscribes_nobody_with_a_damaged_unsubscribe_token(messages, method):
    first, second = messages
    good = tokens.make_unsubscribe_token(message_id=first.pk)
    other = tokens.make_unsubscribe_token(message_id=second.pk)
    bad = [
        *_altered(good),
        _swapped(good, other),
        tokens.make_click_token(first.pk, 0),
        tokens.make_unsubscribe_token(contact_id=999999),
    ]
    before = snapshot()
    client = Client(enforce_csrf_checks=True)
    for token in filter(None, bad):
        response = getattr(client, method)(f"/u/{token}", {"List-Unsubscribe": "One-Click"})
        assert 400 <= response.status_code < 500, token
        assert "Location" not in response
    assert snapshot() == before
    assert not Contact.objects.filter(email_opt_out=True).exists()
    # The real token, as a provider's one-click POST (no cookie, no CSRF token), works.
    assert client.post(f"/u/{good}", {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert list(Contact.objects.filter(email_opt_out=True)) == [first.contact]


def test_it_compares_signatures_in_constant_time(messages, monkeypatch):
    compared = []
    real = django.core.signing.constant_time_compare

    def recording(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(django.core.signing, "constant_time_compare", recording)
    first, _ = messages
    token = tokens.make_click_token(first.pk, 0)
    Client().get(f"/t/c/{token[:-1]}A")
    Client().get(f"/u/{tokens.make_unsubscribe_token(message_id=first.pk)}")
    Client().get(f"/t/o/{tokens.make_open_token(first.pk)}.gif")
    assert len(compared) >= 3
    # And Django's comparison is secrets.compare_digest, which is hmac.compare_digest.
    assert "secrets.compare_digest(" in inspect.getsource(crypto.constant_time_compare)
    assert secrets.compare_digest is hmac.compare_digest
