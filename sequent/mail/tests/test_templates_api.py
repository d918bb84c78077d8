"""The email templates API: CRUD scoped to the owner, Liquid checked on save, and
previews for a chosen contact (saved or unsaved source)."""

from __future__ import annotations

import pytest

from sequent.crm.models import Account, Contact
from sequent.mail.models import EmailTemplate, Mailbox

BODY = (
    '<p>Hi {{ contact.first_name | default: "there" }} at {{ account.name }}</p><p>{{ contact.budget }}</p>'
)


@pytest.fixture
def contact(db):
    account = Account.objects.create(name="Client & Co", domain="client.example", custom={"tier": "gold"})
    return Contact.objects.create(
        first_name="Dana",
        last_name="<b>Bold</b>",
        email="dana@client.example",
        account=account,
        custom={"budget": 50000},
    )


def test_it_creates_lists_updates_and_deletes_templates(api):
    created = api.post(
        "templates", {"name": "Intro", "subject": "Hello {{ contact.first_name }}", "body": BODY}
    )
    assert created.status_code == 201, created.content
    template_id = created.json()["id"]
    assert api.get("templates").json()["items"][0]["name"] == "Intro"
    updated = api.patch(f"templates/{template_id}", {"subject": "Hi {{ contact.first_name }}"})
    assert (updated.status_code, updated.json()["subject"]) == (200, "Hi {{ contact.first_name }}")
    assert api.get(f"templates/{template_id}").json()["body"] == BODY
    assert api.delete(f"templates/{template_id}").status_code == 204
    assert not EmailTemplate.objects.exists()


def test_it_answers_404_for_another_users_template(api, other_api, contact):
    template_id = api.post("templates", {"name": "Intro", "subject": "Hi", "body": BODY}).json()["id"]
    assert other_api.get(f"templates/{template_id}").status_code == 404
    assert other_api.patch(f"templates/{template_id}", {"name": "Stolen"}).status_code == 404
    assert other_api.post(f"templates/{template_id}/preview", {"contact_id": contact.pk}).status_code == 404
    assert other_api.delete(f"templates/{template_id}").status_code == 404
    assert other_api.get("templates").json()["count"] == 0


def test_it_refuses_templates_liquid_cannot_run_naming_the_part_and_line(api):
    response = api.post(
        "templates",
        {
            "name": "Broken",
            "subject": "Hi {{ contct.first_name }}",
            "body": "<p>ok</p>\n<p>{{ contact.first_name | shout }}</p>",
        },
    )
    assert response.status_code == 422
    errors = {(e["field"], e["reason"]) for e in response.json()["errors"]}
    assert (
        "subject",
        "line 1: contct.first_name is not a known placeholder (use contact, account, sender, sequence or unsubscribe_link)",
    ) in errors
    assert ("body", "line 2: unknown filter 'shout'") in errors
    unclosed = api.post(
        "templates", {"name": "Unclosed", "subject": "Hi", "body": "<p>{% if contact.first_name %}</p>"}
    )
    assert unclosed.json()["errors"] == [
        {"field": "body", "reason": "template: syntax error: expected tag endif, found end of expression"}
    ]
    api.post("templates", {"name": "Intro", "subject": "Hi", "body": "<p>x</p>"})
    duplicate = api.post("templates", {"name": "Intro", "subject": "Hi", "body": "<p>x</p>"})
    assert duplicate.json()["errors"] == [
        {"field": "name", "reason": "you already have a template with this name"}
    ]


def test_it_previews_a_saved_template_for_a_contact(api, rep, contact):
    Mailbox.objects.create(
        owner=rep,
        email_address="alice@acme.example",
        display_name="Alice at Acme",
        smtp_host="smtp.acme.example",
    )
    template_id = api.post(
        "templates",
        {
            "name": "Intro",
            "subject": "{{ account.name }} x {{ sender.name }}",
            "body": BODY + "<p>{{ sender.email }}</p>",
        },
    ).json()["id"]
    response = api.post(f"templates/{template_id}/preview", {"contact_id": contact.pk})
    assert response.status_code == 200
    body = response.json()
    assert body["error"] is None
    assert body["subject"] == "Client & Co x Alice at Acme"  # subjects are text, not HTML
    assert "Hi Dana at Client &amp; Co" in body["html"]  # values are escaped in HTML
    assert "50000" in body["html"]  # custom fields by their key
    assert "alice@acme.example" in body["html"]


def test_it_previews_unsaved_source_and_answers_the_error_a_send_would_stop_with(api, contact):
    ok = api.post(
        "templates/preview",
        {"contact_id": contact.pk, "subject": "Hi {{ contact.first_name }}", "body": BODY},
    )
    assert ok.json()["subject"] == "Hi Dana"
    missing = api.post(
        "templates/preview",
        {"contact_id": contact.pk, "subject": "Hi", "body": "<p>Hello</p>\n<p>{{ contact.job_title }}</p>"},
    ).json()
    assert missing == {
        "subject": None,
        "html": None,
        "error": 'body line 2: contact.job_title is empty and has no default (write {{ contact.job_title | default: "..." }})',
    }
    loop = api.post(
        "templates/preview",
        {"contact_id": contact.pk, "subject": "Hi", "body": "{% for i in (1..1000000) %}x{% endfor %}"},
    ).json()
    assert loop["error"] == "body line 1: a loop runs more than 10,000 times"
    assert (
        api.post("templates/preview", {"contact_id": 999999, "subject": "Hi", "body": "x"}).status_code == 404
    )
