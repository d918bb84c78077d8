"""The read-only CRM pages: contacts, accounts and imports, with paging, sorting, search
and empty states."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Group

from sequent.crm.actions import do_record_activity
from sequent.crm.models import (
    Account,
    Contact,
    CustomField,
    ImportJob,
    ImportRowError,
    ImportStatus,
    LastContactedMode,
    Tag,
)
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import Enrollment, EnrollmentStatus

# Session, user, permission lookups, the condition catalog, saved views, the user's sequences,
# count, page: a fixed number, whatever the number of rows.
LIST_QUERIES = 12


@pytest.fixture
def signed_in(client, rep):
    client.force_login(rep)
    return client


def names_in(response) -> list[str]:
    """The linked names in the first column of the page's table, in order."""
    body = response.content.decode()
    return re.findall(
        r'<tr>\s*(?:<td><input[^>]*></td>\s*)?<td><a href="/(?:contacts|accounts|imports)/\d+/">([^<]+)</a>',
        body,
    )


def test_it_sends_a_visitor_to_the_login_page(client, db):
    for url in ("/contacts/", "/accounts/", "/imports/", "/contacts/1/", "/accounts/1/", "/imports/1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_it_lists_contacts_with_account_mode_and_owner(signed_in, rep):
    acme = Account.objects.create(name="Acme Corp", domain="acme.test")
    Contact.objects.create(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@acme.test",
        account=acme,
        owner=rep,
        last_contacted_mode=LastContactedMode.OPENED,
        last_contacted_at=dt.datetime(2026, 3, 2, 14, 30, tzinfo=dt.UTC),
    )

    response = signed_in.get("/contacts/")

    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "Ada Lovelace",
        "ada@acme.test",
        "Acme Corp",
        "Opened but no reply",
        "2026-03-02 14:30",
        rep.email,
    ):
        assert text in body


def test_it_pages_contacts_fifty_at_a_time(signed_in):
    Contact.objects.bulk_create(
        Contact(first_name=f"Pat{n:03}", last_name="Lee", email=f"pat{n:03}@example.com") for n in range(51)
    )

    first = signed_in.get("/contacts/", {"sort": "email"})
    second = signed_in.get("/contacts/", {"sort": "email", "page": 2})

    assert len(names_in(first)) == 50
    assert "Page 1 of 2" in first.content.decode()
    assert 'href="?sort=email&amp;page=2"' in first.content.decode()
    assert names_in(second) == ["Pat050 Lee"]


def test_it_searches_contacts_by_name_or_email_ignoring_case(signed_in):
    Contact.objects.create(first_name="Ada", last_name="Lovelace", email="ada@acme.test")
    Contact.objects.create(first_name="Grace", last_name="Hopper", email="grace@navy.test")
    Contact.objects.create(first_name="Alan", last_name="Turing", email="alan@acme.test")

    assert names_in(signed_in.get("/contacts/", {"q": "LOVELACE"})) == ["Ada Lovelace"]
    assert names_in(signed_in.get("/contacts/", {"q": "Acme.Test"})) == ["Ada Lovelace", "Alan Turing"]
    assert names_in(signed_in.get("/contacts/", {"q": "alan acme"})) == ["Alan Turing"]
    nothing = signed_in.get("/contacts/", {"q": "nobody"}).content.decode()
    assert "No contact matches “nobody”" in nothing


def test_it_sorts_contacts_by_a_column_either_way(signed_in):
    for first, email in (("Bea", "b@example.com"), ("Cy", "a@example.com"), ("Al", "c@example.com")):
        Contact.objects.create(first_name=first, last_name="Lee", email=email)

    assert names_in(signed_in.get("/contacts/", {"sort": "email"})) == ["Cy Lee", "Bea Lee", "Al Lee"]
    assert names_in(signed_in.get("/contacts/", {"sort": "-email"})) == ["Al Lee", "Bea Lee", "Cy Lee"]
    # An unknown column falls back to the name order rather than failing.
    assert names_in(signed_in.get("/contacts/", {"sort": "password"})) == ["Al Lee", "Bea Lee", "Cy Lee"]


def test_it_shows_how_to_import_when_there_are_no_contacts(signed_in, rep):
    body = signed_in.get("/contacts/").content.decode()

    assert "No contacts yet" in body
    assert f"sequent import contacts FILE --owner {rep.email}" in body
    assert "POST /api/v1/imports" in body


def test_it_lists_contacts_without_a_query_per_row(signed_in, rep, other_rep, django_assert_max_num_queries):
    for n in range(30):
        account = Account.objects.create(name=f"Account {n}")
        Contact.objects.create(first_name=f"C{n}", email=f"c{n}@example.com", account=account, owner=rep)

    with django_assert_max_num_queries(LIST_QUERIES):
        response = signed_in.get("/contacts/")
    assert len(names_in(response)) == 30


def test_it_shows_a_contact_with_tags_custom_fields_and_latest_activities(signed_in, rep):
    contact = Contact.objects.create(
        first_name="Ada", last_name="Lovelace", email="ada@acme.test", custom={"tier": "Gold", "raw_key": 7}
    )
    contact.tags.add(Tag.objects.create(name="vip"))
    CustomField.objects.create(record_type="contact", key="tier", label="Customer tier", field_type="text")
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for n in range(51):
        do_record_activity(
            contact, "note", user=rep, subject=f"Note {n:02}", occurred_at=start + dt.timedelta(hours=n)
        )

    body = signed_in.get(f"/contacts/{contact.pk}/").content.decode()

    assert "Ada Lovelace" in body
    assert "vip" in body
    assert "Customer tier" in body and "Gold" in body
    assert "raw_key" in body  # a value without a field definition is still shown
    assert "Note 50" in body
    assert "Note 01" in body
    assert "Note 00" not in body  # only the latest 50
    assert body.index("Note 50") < body.index("Note 01")


def test_it_shows_only_the_viewers_own_current_enrollments(signed_in, rep, other_rep):
    contact = Contact.objects.create(first_name="Ada", email="ada@acme.test")
    mine = sequence_actions.do_create_sequence(rep, "Alice's outreach")
    done = sequence_actions.do_create_sequence(rep, "Alice's finished run")
    theirs = sequence_actions.do_create_sequence(other_rep, "Bob's outreach")
    Enrollment.objects.create(sequence=mine, contact=contact, run_count=3)
    Enrollment.objects.create(sequence=done, contact=contact, status=EnrollmentStatus.COMPLETED)
    Enrollment.objects.create(sequence=theirs, contact=contact)

    body = signed_in.get(f"/contacts/{contact.pk}/").content.decode()

    assert "Alice&#x27;s outreach" in body
    assert f'href="/sequences/{mine.pk}/"' in body
    enrollments = body.split("Current enrollments")[1].split("</table>")[0]
    assert "Bob&#x27;s outreach" not in body
    assert "finished run" not in enrollments


def test_it_answers_404_for_a_missing_contact_or_account(signed_in):
    assert signed_in.get("/contacts/999/").status_code == 404
    assert signed_in.get("/accounts/999/").status_code == 404


def test_it_lists_accounts_with_their_contact_counts(signed_in, django_assert_max_num_queries):
    for n in range(20):
        account = Account.objects.create(name=f"Account {n:02}", domain=f"a{n}.test", industry="Retail")
        Contact.objects.bulk_create(Contact(first_name=f"P{k}", account=account) for k in range(n % 3))

    with django_assert_max_num_queries(LIST_QUERIES):
        response = signed_in.get("/accounts/", {"sort": "-contacts"})

    body = response.content.decode()
    assert "Retail" in body and "a5.test" in body
    counts = [int(c) for c in re.findall(r'<td class="num">(\d+)</td>', body)]
    assert counts == sorted(counts, reverse=True) and counts[0] == 2 and len(counts) == 20


def test_it_searches_accounts_by_name_or_domain(signed_in):
    Account.objects.create(name="Acme Corp", domain="acme.test")
    Account.objects.create(name="Globex", domain="globex.test")

    assert names_in(signed_in.get("/accounts/", {"q": "ACME"})) == ["Acme Corp"]
    assert names_in(signed_in.get("/accounts/", {"q": "globex.TEST"})) == ["Globex"]


def test_it_shows_how_to_import_when_there_are_no_accounts(signed_in):
    body = signed_in.get("/accounts/").content.decode()
    assert "No accounts yet" in body and "sequent import accounts FILE" in body


def test_it_shows_an_account_with_its_contacts(signed_in):
    acme = Account.objects.create(name="Acme Corp", domain="acme.test", industry="Anvils")
    Contact.objects.create(first_name="Ada", last_name="Lovelace", email="ada@acme.test", account=acme)
    Contact.objects.create(first_name="Grace", last_name="Hopper", email="grace@navy.test")

    body = signed_in.get(f"/accounts/{acme.pk}/").content.decode()

    assert "Anvils" in body
    assert "Ada Lovelace" in body
    assert "Grace Hopper" not in body


def make_job(owner, name="leads.csv", **fields) -> ImportJob:
    return ImportJob.objects.create(owner=owner, file_name=name, file_path="/nonexistent", **fields)


def test_it_lists_only_the_users_own_imports(signed_in, rep, other_rep, django_assert_max_num_queries):
    for n in range(12):
        make_job(
            rep, f"mine-{n:02}.csv", status=ImportStatus.DONE, rows_seen=10, created_count=7, error_count=3
        )
    make_job(other_rep, "theirs.csv")

    with django_assert_max_num_queries(LIST_QUERIES):
        response = signed_in.get("/imports/", {"sort": "file"})

    names = names_in(response)
    assert names[0] == "mine-00.csv" and len(names) == 12
    assert "theirs.csv" not in response.content.decode()


def test_it_shows_how_to_import_when_the_user_has_no_imports(signed_in, other_rep):
    make_job(other_rep, "theirs.csv")

    body = signed_in.get("/imports/").content.decode()

    assert "No imports yet" in body and "POST /api/v1/imports" in body


def test_it_shows_an_imports_progress_and_first_hundred_bad_rows(signed_in, rep):
    job = make_job(
        rep,
        status=ImportStatus.RUNNING,
        total_bytes=1000,
        processed_bytes=250,
        rows_seen=130,
        error_count=120,
    )
    ImportRowError.objects.bulk_create(
        ImportRowError(job=job, line=n + 2, reason=f"email: 'bad{n}' is not a valid email address")
        for n in range(120)
    )

    body = signed_in.get(f"/imports/{job.pk}/").content.decode()

    assert 'value="25.0"' in body  # the progress bar
    assert "'bad0' is not a valid email address" in body.replace("&#x27;", "'")
    assert '<td class="num">101</td>' in body  # line of the 100th bad row
    assert '<td class="num">102</td>' not in body
    assert "The first 100 of 120" in body
    assert f"/imports/{job.pk}/bad-rows.csv" in body


def test_it_hides_imports_from_another_user_or_without_permission(signed_in, rep, other_rep):
    theirs = make_job(other_rep)
    mine = make_job(rep)

    assert signed_in.get(f"/imports/{theirs.pk}/").status_code == 404

    rep.groups.set([Group.objects.create(name="Contacts only")])
    assert signed_in.get("/imports/").status_code == 404
    assert signed_in.get(f"/imports/{mine.pk}/").status_code == 404
    assert signed_in.get("/contacts/").status_code == 200
