"""The SMS texts page: the live preview rendered for a contact with its GSM-7 / UCS-2
segment count and render errors, the user's SMS steps, and editing one (another rep's
step answers 404)."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from sequent.crm.models import Contact
from sequent.sequences import actions
from sequent.sequences.models import Step


@pytest.fixture
def client_for():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def sms_step():
    def make(owner, body="Hi {{ contact.first_name }}", name="Texts"):
        sequence = actions.do_create_sequence(owner, name, time_zone="UTC", send_time="09:00")
        return actions.do_add_step(sequence, "sms", sms_body=body)

    return make


def text(response) -> str:
    return html.unescape(response.content.decode())


def test_it_previews_the_text_for_a_contact_with_its_segments(rep, client_for):
    dana = Contact.objects.create(first_name="Dana", email="dana@client.example")
    client = client_for(rep)

    gsm = client.post("/sms/templates/preview/", {"body": "Hi {{ contact.first_name }}!", "contact": dana.pk})
    ucs = client.post(
        "/sms/templates/preview/", {"body": "Hi {{ contact.first_name }} 👋" + "x" * 70, "contact": dana.pk}
    )

    assert "Hi Dana!" in text(gsm) and "1 segment" in text(gsm) and "GSM-7" in text(gsm)
    assert "2 segments" in text(ucs) and "UCS-2" in text(ucs)


def test_it_explains_why_a_text_cannot_render(rep, client_for):
    dana = Contact.objects.create(first_name="Dana", email="dana@client.example")
    client = client_for(rep)

    empty = client.post("/sms/templates/preview/", {"body": "Hi {{ contact.job_title }}", "contact": dana.pk})
    broken = client.post("/sms/templates/preview/", {"body": "Hi {{ contact.first_name", "contact": dana.pk})

    assert "contact.job_title is empty and has no default" in text(empty)
    assert "syntax error" in text(broken)


def test_it_lists_and_edits_only_the_users_sms_steps(rep, other_rep, admin_user, client_for, sms_step):
    mine = sms_step(admin_user, body="Admin text {{ contact.first_name | default: 'there' }}")
    theirs = sms_step(other_rep, body="Bob's secret text", name="Bob's")
    client = client_for(admin_user)

    listed = text(client.get("/sms/templates/"))
    assert "Admin text" in listed and "Bob's secret text" not in listed
    assert client.get("/sms/templates/", {"step": theirs.pk}).status_code == 404
    assert client.post(f"/sms/templates/steps/{theirs.pk}/", {"body": "x"}).status_code == 404

    saved = client.post(f"/sms/templates/steps/{mine.pk}/", {"body": "New text"}, follow=True)
    refused = client.post(f"/sms/templates/steps/{mine.pk}/", {"body": ""})

    assert "SMS text of step 1" in text(saved)
    assert refused.status_code == 422 and "an SMS step needs a message" in text(refused)
    assert Step.objects.get(pk=mine.pk).sms_body == "New text"
    assert Step.objects.get(pk=theirs.pk).sms_body == "Bob's secret text"
