"""CSV import of contacts and accounts: rows kept and refused, dedupe, accounts, tags,
claiming and resuming, and the `sequent import` command."""

import datetime as dt
import io
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from sequent.crm import imports
from sequent.crm.models import Account, Contact, CustomField, ImportJob, ImportStatus, Tag
from sequent.lib import clock

DATA = Path(__file__).parent / "data"
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def run_import(owner, path, record_type="contacts", **options):
    job = imports.do_create_import(owner, record_type, path, **options)
    job = imports.claim_import(job.pk, "test-runner")
    return imports.do_run_import(job)


def write(tmp_path, text, name="file.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def errors(job):
    return list(job.row_errors.order_by("line").values_list("line", "reason"))


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The user fixtures hash a password; the default hasher takes about a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def typed_fields(db):
    CustomField.objects.create(
        record_type="contact", key="renewal_date", label="Renewal Date", field_type="date"
    )
    CustomField.objects.create(record_type="contact", key="budget", label="Budget", field_type="number")


def test_it_imports_every_good_row_and_reports_the_bad_email_date_and_short_row(rep, typed_fields):
    job = run_import(rep, DATA / "contacts_mixed.csv")

    assert job.status == ImportStatus.DONE
    assert sorted(Contact.objects.values_list("email", flat=True)) == [
        "ann@acme.com",
        "cleo@beta.io",
        "finn@delta.net",
    ]
    assert [line for line, _ in errors(job)] == [3, 5, 6]
    reasons = dict(errors(job))
    assert reasons[3].startswith("column 'Email': 'bob@acme' is not a valid email address")
    assert reasons[5] == "column 'Renewal Date': 'someday' is not a date (use YYYY-MM-DD)"
    assert reasons[6] == "the row has 3 values but the header has 6 columns"
    assert (job.rows_seen, job.created_count, job.error_count) == (6, 3, 3)
    ann = Contact.objects.get(email="ann@acme.com")
    assert (ann.first_name, ann.last_name, ann.owner) == ("Ann", "Lee", rep)
    assert ann.custom == {"renewal_date": "2026-03-01", "budget": 1200}
    assert job.processed_bytes == job.total_bytes
    assert "3 created" in job.message and "3 bad" in job.message


def test_it_reads_cp1252_files_with_accented_names(rep):
    job = run_import(rep, DATA / "contacts_cp1252.csv")

    assert job.report["encoding"] == "cp1252"
    people = set(Contact.objects.values_list("first_name", "last_name"))
    assert people == {("José", "Müller"), ("Françoise", "Lefèvre"), ("René", "Dupré")}
    assert set(Account.objects.values_list("name", flat=True)) == {
        "Société Générale",
        "Crédit Agricole",
        "Café €uro",
    }


def test_it_reads_utf8_files_with_a_bom(rep):
    job = run_import(rep, DATA / "contacts_utf8_bom.csv")

    assert job.report["columns"]["First Name"] == "first_name"
    assert set(Contact.objects.values_list("first_name", "last_name")) == {
        ("Zoë", "Ørsted"),
        ("Łukasz", "Żółć"),
    }


def test_it_reads_semicolon_delimited_files(rep):
    job = run_import(rep, DATA / "contacts_semicolon.csv")

    assert job.report["delimiter"] == "semicolon"
    ann = Contact.objects.get(email="ann@acme.com")
    assert ann.job_title == "Head of Sales; EMEA"
    assert sorted(ann.tags.values_list("name", flat=True)) == ["newsletter", "vip"]
    assert Contact.objects.get(email="bob@acme.com").tags.count() == 0


def test_it_reads_tab_delimited_files_and_normalises_mobiles(rep):
    job = run_import(rep, DATA / "contacts_tab.tsv")

    assert job.report["delimiter"] == "tab"
    assert Contact.objects.get(email="ann@acme.com").mobile == "+33612345678"
    assert Contact.objects.get(email="bob@acme.com").mobile == "+14155550123"
    [(line, reason)] = errors(job)
    assert line == 4
    assert reason.startswith("column 'Mobile Phone': '12345' is not a valid phone number")


def test_it_keeps_line_numbers_right_across_embedded_newlines(rep):
    job = run_import(rep, DATA / "contacts_multiline.csv")

    assert [line for line, _ in errors(job)] == [5, 9]
    assert Contact.objects.get(email="cy@acme.com").last_name == 'O\'Neil "Junior"'
    assert job.report["ignored"] == ["Notes"]
    assert job.rows_seen == 4  # the blank line 6 is not a row


def test_it_skips_duplicates_by_email_case_insensitively(rep, tmp_path):
    existing = Contact.objects.create(email="ann@acme.com", first_name="Annie", job_title="Boss")
    path = write(tmp_path, "Email,First Name\nANN@Acme.com,Ann\nbob@acme.com,Bob\nBOB@acme.com,Robert\n")

    job = run_import(rep, path, on_duplicate="skip")

    assert (job.created_count, job.updated_count, job.skipped_count) == (1, 0, 2)
    existing.refresh_from_db()
    assert existing.first_name == "Annie"
    assert Contact.objects.get(email="bob@acme.com").first_name == "Bob"


def test_it_updates_duplicates_with_only_the_non_empty_values(rep, tmp_path):
    existing = Contact.objects.create(
        email="ann@acme.com", first_name="Annie", job_title="Boss", custom={"a": 1}
    )
    path = write(
        tmp_path,
        "Email,First Name,Job Title,Tags,Company\nann@acme.com,Ann,,vip,Acme\nbob@acme.com,Bob,CTO,,\n"
        "Bob@Acme.com,,Chief,,\n",
    )

    job = run_import(rep, path, on_duplicate="update", tag="March")

    assert (job.created_count, job.updated_count, job.skipped_count) == (1, 2, 0)
    existing.refresh_from_db()
    assert (existing.first_name, existing.job_title) == ("Ann", "Boss")
    assert existing.custom == {"a": 1, "import_name": "March"}
    assert list(existing.tags.values_list("name", flat=True)) == ["vip"]
    assert existing.account.name == "Acme"
    bob = Contact.objects.get(email="bob@acme.com")
    assert (bob.first_name, bob.job_title) == ("Bob", "Chief")


def test_it_dedupes_within_the_file_across_batches(rep, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    path = write(tmp_path, "Email,First Name\na@x.com,A\nb@x.com,B\nc@x.com,C\nA@X.com,A2\n")

    job = run_import(rep, path)

    assert (job.created_count, job.skipped_count) == (3, 1)
    assert Contact.objects.get(email="a@x.com").first_name == "A"


def test_it_creates_contacts_without_email_every_time(rep, tmp_path):
    path = write(tmp_path, "First Name,Last Name,Email\nSam,Doe,\nSam,Doe,\n")

    job = run_import(rep, path)

    assert job.created_count == 2
    assert Contact.objects.filter(first_name="Sam").count() == 2


def test_it_links_contacts_to_accounts_by_name_or_domain_and_creates_missing_ones(rep, tmp_path):
    acme = Account.objects.create(name="Acme Corp", domain="acme.com")
    beta = Account.objects.create(name="Beta")
    path = write(
        tmp_path,
        "Email,Account\na@x.com,acme.com\nb@x.com,sam@ACME.com\nc@x.com,BETA\nd@x.com,Gamma\ne@x.com,gamma\n"
        "f@x.com,delta.io\ng@x.com,https://delta.io/\nh@x.com,\n",
    )

    run_import(rep, path)

    account_of = dict(Contact.objects.values_list("email", "account_id"))
    assert account_of["a@x.com"] == account_of["b@x.com"] == acme.pk
    assert account_of["c@x.com"] == beta.pk
    gamma = Account.objects.get(name="Gamma")
    assert account_of["d@x.com"] == account_of["e@x.com"] == gamma.pk
    assert gamma.owner == rep
    delta = Account.objects.get(domain="delta.io")
    assert delta.name == "delta.io"
    assert account_of["f@x.com"] == account_of["g@x.com"] == delta.pk
    assert account_of["h@x.com"] is None
    assert Account.objects.count() == 4


def test_it_writes_the_import_name_for_audience_conditions(rep, tmp_path):
    from sequent.crm.conditions import filter_records

    Contact.objects.create(email="old@x.com")
    path = write(tmp_path, "Email\nnew@x.com\nold@x.com\n")

    run_import(rep, path, tag="Spring fair")

    field = CustomField.objects.get(record_type="contact", key="import_name")
    assert (field.label, field.field_type) == ("Import Name", "text")
    matched = filter_records(
        "contact", [{"field": "custom.import_name", "op": "equals", "value": "Spring fair"}]
    )
    assert list(matched.values_list("email", flat=True)) == ["new@x.com"]  # the skipped row is not tagged


def test_it_maps_unknown_headers_to_custom_fields_and_reports_the_ignored_ones(rep, tmp_path):
    CustomField.objects.create(
        record_type="contact", key="lead_source", label="Lead Source", field_type="text"
    )
    CustomField.objects.create(
        record_type="contact", key="tier", label="Tier", field_type="choice", choices=["Gold", "Silver"]
    )
    path = write(tmp_path, "Email,Lead Source,tier,Shoe Size\na@x.com,Fair,gold,42\nb@x.com,,Bronze,41\n")

    job = run_import(rep, path)

    assert Contact.objects.get(email="a@x.com").custom == {"lead_source": "Fair", "tier": "Gold"}
    assert errors(job) == [(3, "column 'tier': 'Bronze' is not one of: Gold, Silver")]
    assert "Ignored columns: Shoe Size." in job.message


def test_it_follows_an_explicit_mapping_and_refuses_one_naming_no_field(rep, tmp_path):
    path = write(tmp_path, "Mail,Nick,Title\na@x.com,Al,Mr\n")

    job = run_import(rep, path, mapping={"Mail": "email", "Nick": "first_name", "Title": ""})

    contact = Contact.objects.get()
    assert (contact.email, contact.first_name, contact.job_title) == ("a@x.com", "Al", "")
    assert job.report["ignored"] == ["Title"]
    with pytest.raises(ValidationError) as refused:
        imports.do_create_import(rep, "contacts", path, mapping={"Nick": "nickname"})
    assert "mapping.Nick" in refused.value.message_dict


def test_it_imports_accounts_deduped_by_domain_then_name(rep):
    Account.objects.create(name="ACME Inc", domain="acme.com", industry="Old")
    CustomField.objects.create(record_type="account", key="employees", label="Employees", field_type="number")

    job = run_import(rep, DATA / "accounts.csv", "accounts", on_duplicate="update")

    assert job.report["columns"] == {
        "Account Name": "name",
        "Website": "domain",
        "Industry": "industry",
        "Employees": "custom.employees",
    }
    assert (job.created_count, job.updated_count) == (2, 1)
    acme = Account.objects.get(domain="acme.com")
    assert (acme.name, acme.industry, acme.custom) == ("Acme", "Manufacturing", {"employees": 250})
    assert Account.objects.get(name="gamma.io").domain == "gamma.io"
    assert Account.objects.get(name="Beta").owner == rep
    reasons = dict(errors(job))
    assert reasons[5] == "column 'Website': 'not a domain' is not a domain or web address (e.g. acme.com)"
    assert reasons[6] == "the row has neither an account name nor a domain"


def test_it_fails_a_file_without_a_header_and_says_why(rep, tmp_path):
    job = run_import(rep, write(tmp_path, "\n\n"))

    assert job.status == ImportStatus.FAILED
    assert job.message == "the file is empty: no header line"
    assert job.finished_at is not None


def test_it_writes_in_batches_without_a_query_per_row(rep, tmp_path, django_assert_max_num_queries):
    lines = [f"c{i}@x.com,Company {i % 7},t{i % 3};shared" for i in range(300)]
    path = write(tmp_path, "Email,Company,Tags\n" + "\n".join(lines) + "\n")
    job = imports.do_create_import(rep, "contacts", path)
    job = imports.claim_import(job.pk, "test-runner")

    with django_assert_max_num_queries(40):
        job = imports.do_run_import(job)

    assert job.created_count == 300
    assert Account.objects.count() == 7
    assert Contact.tags.through.objects.count() == 600
    assert Tag.objects.count() == 4


def test_it_lets_one_runner_claim_a_job_until_its_lease_expires(rep, tmp_path):
    clock.set_now(T0)
    job = imports.do_create_import(rep, "contacts", write(tmp_path, "Email\na@x.com\n"))

    first = imports.claim_next_import("w1")
    assert first is not None and first.pk == job.pk
    assert imports.claim_next_import("w2") is None

    clock.set_now(T0 + imports.LEASE + dt.timedelta(seconds=1))
    second = imports.claim_next_import("w2")
    assert second is not None and second.claimed_by == "w2"

    stale = imports.do_run_import(first)  # w1 lost its lease: it writes nothing
    assert stale.status == ImportStatus.RUNNING and Contact.objects.count() == 0
    done = imports.do_run_import(second)
    assert done.status == ImportStatus.DONE and Contact.objects.count() == 1


def test_it_resumes_an_abandoned_job_after_its_last_committed_line(rep, tmp_path, monkeypatch):
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    clock.set_now(T0)
    path = write(tmp_path, "First Name\nA\nB\nC\nD\nE\n")  # no emails: a restart from scratch would duplicate
    imports.do_create_import(rep, "contacts", path)
    job = imports.claim_next_import("w1")

    def die(_job):
        raise KeyboardInterrupt  # the process is killed after its first batch

    with pytest.raises(KeyboardInterrupt):
        imports.do_run_import(job, die)
    assert ImportJob.objects.get().last_line == 3

    assert imports.run_pending_imports("w2") is False  # the lease still holds
    clock.set_now(T0 + dt.timedelta(hours=1))
    assert imports.run_pending_imports("w2") is True

    job = ImportJob.objects.get()
    assert (job.status, job.created_count, job.rows_seen) == (ImportStatus.DONE, 5, 5)
    assert sorted(Contact.objects.values_list("first_name", flat=True)) == ["A", "B", "C", "D", "E"]


def test_it_imports_from_the_command_line_with_a_summary_and_the_bad_rows(rep, typed_fields, tmp_path):
    out = io.StringIO()
    report = tmp_path / "bad.csv"

    call_command(
        "import",
        "contacts",
        str(DATA / "contacts_mixed.csv"),
        "--owner",
        "ALICE@example.com",
        "--tag",
        "cli-test",
        "--map",
        "Company=",
        "--errors-csv",
        str(report),
        stdout=out,
    )

    text = out.getvalue()
    job = ImportJob.objects.get()
    assert f"Import job {job.pk}: done" in text
    assert "Bad rows (first 3 of 3)" in text
    assert "'someday' is not a date" in text
    assert f"Wrote 3 bad rows to {report}" in text
    assert Contact.objects.filter(custom__import_name="cli-test").count() == 3
    assert Account.objects.count() == 0  # the Company column was mapped away
    lines = report.read_text().splitlines()
    assert lines[0] == "line,reason,First Name,Last Name,Email,Company,Renewal Date,Budget"
    assert lines[3] == "6,the row has 3 values but the header has 6 columns,Eve,Short,eve@delta.net"


def test_it_refuses_an_unknown_owner_or_option_on_the_command_line(rep, tmp_path):
    path = str(write(tmp_path, "Email\na@x.com\n"))
    with pytest.raises(CommandError, match="--owner: no active user"):
        call_command("import", "contacts", path, "--owner", "nobody@example.com")
    with pytest.raises(CommandError, match=re.escape("delimiter: '|' is not a supported delimiter")):
        call_command("import", "contacts", path, "--owner", rep.email, "--delimiter", "|")
    with pytest.raises(CommandError, match=r"file: .* is not a readable file"):
        call_command("import", "contacts", str(tmp_path / "missing.csv"), "--owner", rep.email)
    assert ImportJob.objects.count() == 0


def test_it_neutralises_formula_cells_in_the_command_line_bad_rows_file(rep, tmp_path):
    path = write(tmp_path, "Email,First Name\nnot-an-email,=HYPERLINK(\"http://x\")\n")
    report = tmp_path / "bad.csv"

    call_command("import", "contacts", str(path), "--owner", rep.email, "--errors-csv", str(report))

    lines = report.read_text().splitlines()
    assert len(lines) == 2
    assert "'=HYPERLINK" in lines[1]
    assert ",=HYPERLINK" not in lines[1]


def test_it_drops_nul_characters_that_postgresql_cannot_store(rep, tmp_path):
    path = write(tmp_path, "Em\x00ail,First Name\nann@acme.com,A\x00nn\nbad-email,B\x00\n")

    job = run_import(rep, path)

    assert job.status == ImportStatus.DONE
    assert list(Contact.objects.values_list("email", "first_name")) == [("ann@acme.com", "Ann")]
    assert [line for line, _ in errors(job)] == [3]
