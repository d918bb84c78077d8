"""Contact and account forms, the contact page's activity log, and its enrollments."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, reverse

from sequent.crm.models import Account, ActivityType, Contact, CustomField, LastContactedMode
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import Enrollment, SequenceContact


@pytest.fixture
def signed_in(client, rep):
    client.force_login(rep)
    return client


def contact_form(**values) -> dict[str, str]:
    data = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@acme.io",
        "owner": "alice@example.com",
    }
    data.update(values)
    return data


def error_after(body: str, label: str) -> str:
    """The text of the form field labelled *label* up to the next field."""
    return body.split(f">{label}</label>", 1)[1].split('<div class="field', 1)[0]


def test_it_creates_a_contact_from_the_form(signed_in, rep):
    CustomField.objects.create(record_type="contact", key="budget", label="Budget", field_type="number")

    response = signed_in.post(
        "/contacts/new/",
        contact_form(account_name="Acme", tags="vip, Q3", mobile="+44 20 7946 0958", custom_budget="1,500"),
    )

    contact = Contact.objects.get(email="ada@acme.io")
    assert response.status_code == 302 and response["Location"] == f"/contacts/{contact.pk}/"
    assert contact.owner == rep
    assert contact.account.name == "Acme"
    assert contact.mobile == "+442079460958"
    assert contact.custom == {"budget": 1500}
    assert sorted(contact.tags.values_list("name", flat=True)) == ["Q3", "vip"]


def test_it_shows_each_validation_error_next_to_its_field(signed_in):
    CustomField.objects.create(record_type="contact", key="budget", label="Budget", field_type="number")
    Contact.objects.create(email="taken@acme.io")

    response = signed_in.post(
        "/contacts/new/", contact_form(email="taken@acme.io", time_zone="Mars/Base", custom_budget="lots")
    )

    assert response.status_code == 400
    body = response.content.decode().replace("&#x27;", "'")
    assert "already has the email taken@acme.io" in error_after(body, "Email")
    assert "is not an IANA time zone" in error_after(body, "Time zone")
    assert "'lots' is not a number" in error_after(body, "Budget")
    assert Contact.objects.count() == 1


def test_it_edits_a_contact_and_clears_a_custom_value(signed_in, rep):
    CustomField.objects.create(record_type="contact", key="budget", label="Budget", field_type="number")
    contact = Contact.objects.create(first_name="Ada", email="ada@acme.io", owner=rep, custom={"budget": 10})

    page = signed_in.get(f"/contacts/{contact.pk}/edit/").content.decode()
    assert 'value="ada@acme.io"' in page and 'value="10"' in page

    response = signed_in.post(
        f"/contacts/{contact.pk}/edit/", contact_form(job_title="Countess", custom_budget="")
    )

    contact.refresh_from_db()
    assert response.status_code == 302
    assert contact.job_title == "Countess" and contact.last_name == "Lovelace"
    assert contact.custom == {}


def test_it_lets_only_the_owner_delete_a_contact(signed_in, rep, other_rep):
    theirs = Contact.objects.create(first_name="Bob's", email="b@acme.io", owner=other_rep)
    mine = Contact.objects.create(first_name="Mine", email="m@acme.io", owner=rep)

    assert (
        "Delete"
        not in signed_in.get(f"/contacts/{theirs.pk}/").content.decode().split("<h1>")[1].split("</div>")[1]
    )
    refused = signed_in.post(f"/contacts/{theirs.pk}/delete/", follow=True)
    assert "only the contact&#x27;s owner" in refused.content.decode()
    assert Contact.objects.filter(pk=theirs.pk).exists()

    signed_in.post(f"/contacts/{mine.pk}/delete/")
    assert not Contact.objects.filter(pk=mine.pk).exists()
    assert signed_in.get(f"/contacts/{mine.pk}/").status_code == 404


def test_it_logs_a_call_and_shows_the_new_last_contacted_mode(signed_in, rep):
    contact = Contact.objects.create(first_name="Ada", email="ada@acme.io")

    response = signed_in.post(
        f"/contacts/{contact.pk}/",
        {"kind": "call_outgoing", "subject": "Intro call", "outcome": "Connected", "body": "Wants a demo"},
        follow=True,
    )

    body = response.content.decode()
    assert '<dd id="last-contacted-mode">Outgoing call</dd>' in body
    assert '<dd id="last-activity-type">Call</dd>' in body
    assert "Intro call" in body and "Connected" in body and "Wants a demo" in body
    contact.refresh_from_db()
    assert contact.last_contacted_mode == LastContactedMode.OUTGOING_CALL


def test_it_logs_a_custom_activity_by_its_type(signed_in):
    ActivityType.objects.create(name="Coffee")
    contact = Contact.objects.create(first_name="Ada")

    page = signed_in.get(f"/contacts/{contact.pk}/").content.decode()
    assert '<option value="Coffee">Coffee</option>' in page

    signed_in.post(f"/contacts/{contact.pk}/", {"kind": "custom", "custom_type": "Coffee"})

    contact.refresh_from_db()
    assert contact.last_contacted_mode == LastContactedMode.SALES_ACTIVITY
    assert contact.last_activity_type == "Coffee"


def test_it_explains_what_is_wrong_with_a_logged_activity(signed_in):
    contact = Contact.objects.create(first_name="Ada")

    no_type = signed_in.post(f"/contacts/{contact.pk}/", {"kind": "custom"})
    future = signed_in.post(f"/contacts/{contact.pk}/", {"kind": "chat", "occurred_at": "2999-01-01T10:00"})

    assert no_type.status_code == 400
    assert "needs its type" in error_after(no_type.content.decode(), "Type")
    assert "cannot be in the future" in error_after(future.content.decode(), "When (UTC)")
    assert not contact.activities.exists()


def test_it_links_each_current_enrollment_to_its_timeline(signed_in, rep):
    contact = Contact.objects.create(first_name="Ada", email="ada@acme.io")
    sequence = sequence_actions.do_create_sequence(rep, "Q3 outreach")
    enrollment = Enrollment.objects.create(sequence=sequence, contact=contact)

    body = signed_in.get(f"/contacts/{contact.pk}/").content.decode()

    try:
        url = reverse("sequences:enrollment", args=[sequence.pk, enrollment.pk])
    except NoReverseMatch:  # the enrollment page is not built yet: no dead link
        assert "View timeline" not in body
    else:
        assert f'href="{url}"' in body


def test_it_adds_the_contact_to_a_sequence_from_its_page(signed_in, rep, other_rep):
    contact = Contact.objects.create(first_name="Ada", email="ada@acme.io")
    mine = sequence_actions.do_create_sequence(rep, "Q3 outreach")
    theirs = sequence_actions.do_create_sequence(other_rep, "Bob's")

    signed_in.post(f"/contacts/{contact.pk}/add-to-sequence/", {"sequence": mine.pk})
    refused = signed_in.post(f"/contacts/{contact.pk}/add-to-sequence/", {"sequence": theirs.pk})

    assert SequenceContact.objects.filter(sequence=mine, contact=contact).exists()
    assert refused.status_code == 404
    assert not SequenceContact.objects.filter(sequence=theirs).exists()


def test_it_creates_edits_and_deletes_an_account(signed_in, rep):
    invalid = signed_in.post("/accounts/new/", {"name": "", "domain": "not a domain", "owner": rep.email})
    assert invalid.status_code == 400
    body = invalid.content.decode()
    assert "an account needs a name" in error_after(body, "Name")
    assert "is not a domain" in error_after(body, "Domain")

    created = signed_in.post(
        "/accounts/new/", {"name": "Acme", "domain": "https://www.Acme.com/", "owner": rep.email}
    )
    account = Account.objects.get(name="Acme")
    assert created["Location"] == f"/accounts/{account.pk}/" and account.domain == "acme.com"

    signed_in.post(
        f"/accounts/{account.pk}/edit/",
        {"name": "Acme Corp", "domain": "acme.com", "industry": "Anvils", "owner": rep.email},
    )
    account.refresh_from_db()
    assert (account.name, account.industry) == ("Acme Corp", "Anvils")

    signed_in.post(f"/accounts/{account.pk}/delete/")
    assert not Account.objects.filter(pk=account.pk).exists()


def test_it_shows_newcomers_how_to_start(signed_in):
    contacts = signed_in.get("/contacts/").content.decode()
    accounts = signed_in.get("/accounts/").content.decode()

    assert "No contacts yet" in contacts
    assert 'href="/imports/new/">Import a CSV</a>' in contacts
    assert 'href="/contacts/new/">Add a contact</a>' in contacts
    assert "No accounts yet" in accounts and 'href="/accounts/new/">Add an account</a>' in accounts
