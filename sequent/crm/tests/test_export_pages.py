"""CSV export of the contact and account lists: the filtered list, streamed, neutralised."""

from __future__ import annotations

import csv
import io
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group

from sequent.crm.exports import neutralise
from sequent.crm.models import Account, Contact, CustomField


@pytest.fixture
def signed_in(client, rep):
    client.force_login(rep)
    return client


def read_csv(response) -> list[list[str]]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ada = 1", "Ada = 1"),
        ("", ""),
        (42, 42),
    ],
)
def test_it_neutralises_only_cells_that_start_like_a_formula(cell, expected):
    assert neutralise(cell) == expected


def test_it_exports_the_filtered_contacts_with_formula_cells_neutralised(signed_in, rep):
    CustomField.objects.create(record_type="contact", key="note", label="Note", field_type="text")
    acme = Account.objects.create(name="=cmd|'/C calc'!A0")
    Contact.objects.create(
        first_name="=1+1",
        last_name="@Lovelace",
        email="ada@acme.test",
        account=acme,
        owner=rep,
        job_title="-Countess",
        mobile="+442079460958",
        custom={"note": "\tsecret"},
    )
    Contact.objects.create(first_name="Grace", last_name="Hopper", email="grace@navy.test")
    query = urlencode({"field": "email", "op": "contains", "value": "acme", "value2": "", "match": "all"})

    response = signed_in.get(f"/lists/contact/export.csv?{query}")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    header, *rows = read_csv(response)
    assert header[:4] == ["id", "first_name", "last_name", "email"] and header[-1] == "Note"
    assert len(rows) == 1  # Grace does not match the conditions
    row = dict(zip(header, rows[0], strict=True))
    assert row["first_name"] == "'=1+1"
    assert row["last_name"] == "'@Lovelace"
    assert row["job_title"] == "'-Countess"
    assert row["mobile"] == "'+442079460958"
    assert row["account"] == "'=cmd|'/C calc'!A0"
    assert row["Note"] == "'\tsecret"
    assert row["email"] == "ada@acme.test"


def test_it_exports_accounts_in_the_lists_order(signed_in):
    for name in ("Globex", "Acme", "Initech"):
        Account.objects.create(name=name)

    header, *rows = read_csv(signed_in.get("/lists/account/export.csv?sort=-name"))

    assert header[:2] == ["id", "name"]
    assert [r[1] for r in rows] == ["Initech", "Globex", "Acme"]


def test_it_needs_the_export_permission(signed_in, rep):
    Contact.objects.create(first_name="Ada")
    assert "Export CSV" in signed_in.get("/contacts/").content.decode()

    group = Group.objects.create(name="No export")
    group.permissions.set(rep.groups.get().permissions.exclude(codename="export_records"))
    rep.groups.set([group])

    assert signed_in.get("/lists/contact/export.csv").status_code == 404
    assert "Export CSV" not in signed_in.get("/contacts/").content.decode()
