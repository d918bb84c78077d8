"""The import wizard: upload, map columns, start, progress, report and bad rows."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from sequent.crm import imports
from sequent.crm.models import Account, Contact, CustomField, ImportJob, ImportStatus

CONTACTS_CSV = (
    "First Name,Last Name,E-mail,Company,Budget,Favourite colour\n"
    "Ada,Lovelace,ada@acme.io,Acme,5000,blue\n"
    "Grace,Hopper,not-an-email,Navy,10,green\n"
    '=HYPERLINK("http://x"),Evil,@bad,Evil Corp,1,red\n'
    "Alan,Turing,alan@acme.io,Acme,,\n"
)


@pytest.fixture(autouse=True)
def _import_dir(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "imports"


@pytest.fixture
def signed_in(client, rep):
    client.force_login(rep)
    return client


def upload(client, content: str, record_type: str = "contact", name: str = "leads.csv"):
    file = SimpleUploadedFile(name, content.encode(), content_type="text/csv")
    return client.post("/imports/new/", {"file": file, "record_type": record_type})


def selected(body: str, column: str) -> str:
    """The field chosen for *column* on the mapping page."""
    cell = body.split(f">{column}</label>", 1)[1].split("</select>", 1)[0]
    chosen = cell.split(" selected>", 1)
    return chosen[0].rsplit('value="', 1)[1].split('"', 1)[0] if len(chosen) > 1 else ""


def test_it_imports_a_csv_from_upload_to_report(signed_in, rep):
    CustomField.objects.create(record_type="contact", key="budget", label="Budget", field_type="number")

    uploaded = upload(signed_in, CONTACTS_CSV)
    assert uploaded.status_code == 302
    mapping_page = signed_in.get(uploaded["Location"])
    body = mapping_page.content.decode()
    assert "Map columns of leads.csv" in body
    assert selected(body, "E-mail") == "email"
    assert selected(body, "First Name") == "first_name"
    assert selected(body, "Company") == "account"
    assert selected(body, "Budget") == "custom.budget"
    assert selected(body, "Favourite colour") == ""
    assert "ada@acme.io" in body  # first values of each column

    started = signed_in.post(
        uploaded["Location"],
        {
            "col_0": "first_name",
            "col_1": "last_name",
            "col_2": "email",
            "col_3": "account",
            "col_4": "custom.budget",
            "col_5": "",
            "on_duplicate": "skip",
            "tag": "Spring fair",
        },
    )

    job = ImportJob.objects.get(owner=rep)
    assert started.status_code == 302 and started["Location"] == f"/imports/{job.pk}/"
    assert job.status == ImportStatus.PENDING
    progress = signed_in.get(f"/imports/{job.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in progress and f'hx-get="/imports/{job.pk}/progress/"' in progress

    assert imports.run_pending_imports("test-worker")  # what `sequent worker` does

    report = signed_in.get(f"/imports/{job.pk}/").content.decode()
    assert "every 1s" not in report
    assert "4 rows done" in report
    assert "<dt>Created</dt><dd>2</dd>" in report and "<dt>Errors</dt><dd>2</dd>" in report
    assert '<td class="num">3</td>' in report and "not-an-email" in report.replace("&#x27;", "'")
    ada = Contact.objects.get(email="ada@acme.io")
    assert ada.account.name == "Acme" and ada.custom["budget"] == 5000
    assert ada.custom["import_name"] == "Spring fair"
    assert "colour" not in str(ada.custom)

    download = signed_in.get(f"/imports/{job.pk}/bad-rows.csv")
    assert download["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0][:3] == ["line", "reason", "First Name"]
    assert [r[0] for r in rows[1:]] == ["3", "4"]
    assert rows[2][2] == '\'=HYPERLINK("http://x")'  # neutralised
    assert rows[2][4] == "'@bad"


def test_it_asks_the_browser_to_reload_when_the_import_has_finished(signed_in, rep):
    job = ImportJob.objects.create(
        owner=rep, file_name="a.csv", file_path="/none", status=ImportStatus.RUNNING
    )
    running = signed_in.get(f"/imports/{job.pk}/progress/", HTTP_HX_REQUEST="true")
    assert "HX-Refresh" not in running and "every 1s" in running.content.decode()

    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.DONE, rows_seen=7)
    done = signed_in.get(f"/imports/{job.pk}/progress/", HTTP_HX_REQUEST="true")
    assert done["HX-Refresh"] == "true"
    assert "7 rows done" in done.content.decode()


def test_it_imports_accounts_and_refuses_a_mapping_without_a_name(signed_in, rep):
    uploaded = upload(signed_in, "Company,Web site,Sector\nAcme,acme.com,Anvils\n", "account", "accounts.csv")
    url = uploaded["Location"]
    body = signed_in.get(url).content.decode()
    assert selected(body, "Company") == "name" and selected(body, "Web site") == "domain"

    refused = signed_in.post(url, {"col_0": "", "col_1": "", "col_2": "industry", "on_duplicate": "skip"})
    assert refused.status_code == 400
    assert "no column for the account name or domain" in refused.content.decode()

    signed_in.post(url, {"col_0": "name", "col_1": "domain", "col_2": "industry", "on_duplicate": "update"})
    imports.run_pending_imports("test-worker")
    assert Account.objects.filter(name="Acme", domain="acme.com", industry="Anvils").exists()


def test_it_shows_mapping_errors_next_to_the_column(signed_in):
    url = upload(signed_in, CONTACTS_CSV)["Location"]

    response = signed_in.post(url, {"col_0": "email", "col_2": "email", "on_duplicate": "skip"})

    assert response.status_code == 400
    row = response.content.decode().split(">E-mail</label>", 1)[1].split("</tr>", 1)[0]
    assert "“First Name” already goes to this field" in row
    assert not ImportJob.objects.exists()


def test_it_refuses_a_file_it_cannot_read(signed_in):
    empty = upload(signed_in, "")
    blank_lines = upload(signed_in, ",,\n ,\n")

    assert empty.status_code == 400
    assert "The submitted file is empty." in empty.content.decode()
    assert blank_lines.status_code == 400
    assert "cannot be read as CSV: the file is empty: no header line" in blank_lines.content.decode()


def test_it_keeps_the_wizard_to_users_who_may_import(signed_in, client, rep, other_rep):
    url = upload(signed_in, CONTACTS_CSV)["Location"]
    theirs = ImportJob.objects.create(owner=other_rep, file_name="b.csv", file_path="/none")

    assert signed_in.get(f"/imports/{theirs.pk}/").status_code == 404
    assert signed_in.get(f"/imports/{theirs.pk}/progress/").status_code == 404
    assert signed_in.get(f"/imports/{theirs.pk}/bad-rows.csv").status_code == 404
    client.force_login(other_rep)  # another session does not know this upload
    assert client.get(url).status_code == 404

    client.force_login(rep)
    group = Group.objects.create(name="No import")
    group.permissions.set(rep.groups.get().permissions.exclude(codename="import_records"))
    rep.groups.set([group])
    assert client.get("/imports/new/").status_code == 404
    assert client.get(url).status_code == 404
