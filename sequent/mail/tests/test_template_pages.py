"""The email template pages: list, create and edit with errors next to the fields, the
live preview for a chosen contact (rendered text, or the reason it cannot render), and
another rep's template answering 404."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from sequent.crm.models import Contact
from sequent.mail.models import EmailTemplate


@pytest.fixture
def client_for():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def dana(db):
    return Contact.objects.create(first_name="Dana", last_name="Scully", email="dana@client.example")


def text(response) -> str:
    return html.unescape(response.content.decode())


def field_error(body: str, name: str) -> str:
    """The error inside the form field of the control *name*, named by its aria-describedby."""
    field = r'<div class="field has-error">((?:(?!<div class="field).)*?name="{}"(?:(?!<div class="field).)*)'
    block = re.search(field.format(name), body, re.S)
    if not block or not re.search(rf'aria-describedby="[^"]*\bid_{name}_error\b', block[1]):
        return ""
    error = re.search(rf'<p class="field-error" id="id_{name}_error">(.*?)</p>', block[1], re.S)
    return error[1] if error else ""


def test_it_lists_only_the_users_own_templates(rep, other_rep, client_for):
    EmailTemplate.objects.create(owner=rep, name="Intro mine", subject="Hi", body="<p>x</p>")
    theirs = EmailTemplate.objects.create(owner=other_rep, name="Intro theirs", subject="Hi", body="<p>x</p>")

    page = client_for(rep).get("/templates/")

    assert page.status_code == 200
    assert "Intro mine" in text(page) and "Intro theirs" not in text(page)
    assert client_for(rep).get(f"/templates/{theirs.pk}/").status_code == 404
    assert client_for(rep).post(f"/templates/{theirs.pk}/", {"name": "Mine now"}).status_code == 404
    assert client_for(rep).post(f"/templates/{theirs.pk}/delete/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Intro theirs"


def test_it_creates_a_template_and_edits_it(rep, client_for, dana):
    client = client_for(rep)
    created = client.post(
        "/templates/new/",
        {
            "name": "Intro",
            "subject": "Hi {{ contact.first_name }}",
            "body": "<p>Hello</p>",
            "contact": dana.pk,
        },
    )
    template = EmailTemplate.objects.get(owner=rep)
    assert created.status_code == 302 and created["Location"] == f"/templates/{template.pk}/"

    edited = client.post(
        f"/templates/{template.pk}/",
        {"name": "Intro v2", "subject": "Hey {{ contact.first_name }}", "body": "<p>Hello again</p>"},
        follow=True,
    )

    template.refresh_from_db()
    assert (template.name, template.subject) == ("Intro v2", "Hey {{ contact.first_name }}")
    assert "Template “Intro v2” saved." in text(edited)
    # The edit page previews the saved template for the first contact.
    assert "Hey Dana" in text(edited)


def test_it_shows_each_refusal_next_to_its_field(rep, client_for):
    EmailTemplate.objects.create(owner=rep, name="Taken", subject="Hi", body="<p>x</p>")

    page = client_for(rep).post(
        "/templates/new/",
        {"name": "Taken", "subject": "Hi {{ contact.first_name", "body": "<p>{{ nobody }}</p>"},
    )

    assert page.status_code == 422
    body = text(page)
    assert "you already have a template with this name" in field_error(body, "name")
    assert "syntax error" in field_error(body, "subject")
    assert "nobody is not a known placeholder" in field_error(body, "body")
    assert EmailTemplate.objects.filter(owner=rep).count() == 1


def test_it_previews_the_email_rendered_for_the_chosen_contact(rep, client_for, dana):
    other = Contact.objects.create(first_name="Fox", email="fox@client.example")

    preview = client_for(rep).post(
        "/templates/preview/",
        {
            "subject": "Hi {{ contact.first_name }}",
            "body": "<p>Dear {{ contact.first_name }} {{ contact.last_name | default: 'friend' }}</p>",
            "contact": other.pk,
        },
        HTTP_HX_REQUEST="true",
    )

    assert preview.status_code == 200
    assert "<html" not in preview.content.decode()  # a fragment for htmx, not a page
    assert "Hi Fox" in text(preview) and "Dear Fox friend" in text(preview)
    assert "Dana" not in text(preview)


def test_it_explains_why_the_preview_cannot_render(rep, client_for, dana):
    client = client_for(rep)
    empty = client.post(
        "/templates/preview/",
        {"subject": "Hi", "body": "<p>{{ contact.job_title }}</p>", "contact": dana.pk},
    )
    broken = client.post(
        "/templates/preview/", {"subject": "Hi", "body": "<p>{% if %}</p>", "contact": dana.pk}
    )

    assert 'data-part="render"' in text(empty)
    assert "contact.job_title is empty and has no default" in text(empty)
    assert 'data-part="body"' in text(broken) and "syntax error" in text(broken)


def test_it_previews_without_saving_when_asked(rep, client_for, dana):
    page = client_for(rep).post(
        "/templates/new/",
        {
            "name": "Draft",
            "subject": "For {{ contact.email }}",
            "body": "<p>x</p>",
            "preview": "1",
            "contact": dana.pk,
        },
    )

    assert page.status_code == 200
    assert "For dana@client.example" in text(page)
    assert not EmailTemplate.objects.exists()
