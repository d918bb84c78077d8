"""The imports API: upload, background run, progress, bad rows, per-user access."""

import csv
import io
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from sequent.crm import imports
from sequent.crm.models import Contact, CustomField, ImportJob

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings, tmp_path):
    # The user fixtures hash a password; the default hasher takes about a second.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.IMPORT_DIR = tmp_path / "imports"


def upload(api, name="contacts_mixed.csv", **fields):
    content = (DATA / name).read_bytes()
    data = {"file": SimpleUploadedFile(name, content, content_type="text/csv"), "record_type": "contacts"}
    data.update(fields)
    return api.client.post("/api/v1/imports/", data, HTTP_AUTHORIZATION=f"Bearer {api.token}")


def poll_until_done(api, job_id):
    for _ in range(50):
        imports.join_background_imports(timeout=10)
        job = api.get(f"imports/{job_id}").json()
        if job["status"] in ("done", "failed"):
            return job
    raise AssertionError(f"import {job_id} did not finish")


# serialized_rollback: a flush would also drop the roles seeded by migrations.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_runs_an_uploaded_import_in_the_background_and_reports_the_bad_rows(api, settings):
    CustomField.objects.create(
        record_type="contact", key="renewal_date", label="Renewal Date", field_type="date"
    )

    response = upload(api, tag="Webinar", on_duplicate="update")

    assert response.status_code == 201, response.content
    created = response.json()
    assert created["status"] in ("pending", "running", "done")
    assert created["options"]["tag"] == "Webinar"
    job = poll_until_done(api, created["id"])
    assert job["status"] == "done"
    assert job["percent"] == 100.0
    assert (job["rows_seen"], job["created"], job["updated"], job["skipped"], job["errors"]) == (
        6,
        3,
        0,
        0,
        3,
    )
    assert job["report"]["ignored"] == ["Budget"]
    assert Contact.objects.filter(custom__import_name="Webinar").count() == 3
    assert list(Path(settings.IMPORT_DIR).iterdir()) == []  # the uploaded copy is gone once done

    page = api.get(f"imports/{job['id']}/errors?page_size=2").json()
    assert page["count"] == 3 and page["pages"] == 2
    assert [e["line"] for e in page["items"]] == [3, 5]
    assert page["items"][0]["row"] == ["Bob", "Ray", "bob@acme", "Acme", "2026-04-01", "800"]
    assert "column 'Renewal Date'" in page["items"][1]["reason"]

    download = api.get(f"imports/{job['id']}/errors.csv")
    assert download.status_code == 200
    assert download["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert rows[0] == [
        "line",
        "reason",
        "First Name",
        "Last Name",
        "Email",
        "Company",
        "Renewal Date",
        "Budget",
    ]
    assert [row[0] for row in rows[1:]] == ["3", "5", "6"]
    assert rows[3][2:] == ["Eve", "Short", "eve@delta.net"]

    listing = api.get("imports/").json()
    assert [item["id"] for item in listing["items"]] == [job["id"]]


# serialized_rollback: a flush would also drop the roles seeded by migrations.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_answers_404_for_another_users_import(api, other_api):
    job_id = upload(api).json()["id"]
    poll_until_done(api, job_id)

    for path in (f"imports/{job_id}", f"imports/{job_id}/errors", f"imports/{job_id}/errors.csv"):
        assert other_api.get(path).status_code == 404
    assert other_api.get("imports/").json()["count"] == 0


def test_it_answers_404_without_the_import_permission(api):
    ImportJob.objects.create(owner=api.user, file_name="x.csv", file_path="/nonexistent")
    job = ImportJob.objects.get()
    api.user.groups.set([Group.objects.create(name="Read only")])

    assert upload(api).status_code == 404
    assert api.get("imports/").status_code == 404
    assert api.get(f"imports/{job.pk}").status_code == 404
    assert api.get(f"imports/{job.pk}/errors.csv").status_code == 404


def test_it_refuses_bad_options_naming_the_field(api, settings):
    bad_mode = upload(api, on_duplicate="merge")
    assert bad_mode.status_code == 422
    assert bad_mode.json()["errors"] == [{"field": "on_duplicate", "reason": "'merge' is not skip or update"}]

    bad_mapping = upload(api, mapping='{"Company": "employer_name"}')
    assert bad_mapping.status_code == 422
    [error] = bad_mapping.json()["errors"]
    assert error["field"] == "mapping.Company"
    assert "no field 'employer_name'" in error["reason"]

    assert upload(api, mapping="[1, 2]").status_code == 422
    assert upload(api, record_type="leads").json()["errors"][0]["field"] == "record_type"
    assert ImportJob.objects.count() == 0
    stored = Path(settings.IMPORT_DIR)
    assert not stored.exists() or list(stored.iterdir()) == []  # nothing kept of refused uploads
