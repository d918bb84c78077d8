"""Every CSV download (found from the route lists: a page or API path ending in .csv)
neutralises cells a spreadsheet would run as a formula: = + - @ tab CR."""

from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from sequent.crm.importer import row_text
from sequent.crm.models import Account, Contact, ImportJob, ImportRowError
from sequent.security.routes import api_routes, page_routes

FORMULAS = ['=HYPERLINK("http://evil.example")', "+1+2", "-2+3", "@SUM(A1:A9)", "\tcmd", "\r=1"]
CSV_PAGES = [route for route in page_routes() if route.pattern.endswith(".csv")]
CSV_APIS = [route for route in api_routes() if route.path.endswith(".csv")]


@pytest.fixture
def data(rep):
    account = Account.objects.create(name=FORMULAS[0], domain="x.example", owner=rep, industry=FORMULAS[3])
    Contact.objects.create(
        owner=rep,
        first_name=FORMULAS[0],
        last_name=FORMULAS[1],
        job_title=FORMULAS[2],
        email="zq@x.example",
        account=account,
    )
    Contact.objects.create(owner=rep, first_name=FORMULAS[4], last_name=FORMULAS[5], email="zq2@x.example")
    job = ImportJob.objects.create(
        owner=rep,
        file_name="leads.csv",
        file_path="/nonexistent",
        report={"header": ["first", "last", "title"]},
    )
    ImportRowError.objects.create(job=job, line=2, reason="email: not an email", raw=row_text(FORMULAS[:3]))
    ImportRowError.objects.create(job=job, line=3, reason="email: not an email", raw=row_text(FORMULAS[3:]))
    return {"record_type": ["contact", "account"], "job_id": [job.pk]}


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


def _assert_neutralised(text: str, where: str) -> None:
    cells = _cells(text)
    assert any("evil.example" in cell or "SUM(" in cell for cell in cells), (
        f"{where}: the test data is missing"
    )
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"{where}: {cell!r}"


def _urls(route, data) -> list[str]:
    urls = [""]
    for name in route.params:
        if name not in data:
            pytest.fail(f"add a factory for {route.name} (parameter {name!r})")
        urls = [url + f"|{name}={value}" for url in urls for value in data[name]]
    return [route.url(dict(part.split("=", 1) for part in url.strip("|").split("|") if part)) for url in urls]


def test_it_finds_the_csv_downloads():
    assert {route.name for route in CSV_PAGES} >= {"crm:export", "crm:import_errors"}
    assert CSV_APIS


@pytest.mark.parametrize("route", CSV_PAGES, ids=lambda r: r.name)
def test_it_neutralises_formulas_in_every_page_export(route, data, rep):
    client = Client()
    client.force_login(rep)
    for url in _urls(route, data):
        response = client.get(url)
        assert response.status_code == 200, url
        _assert_neutralised(b"".join(response.streaming_content).decode(), url)


@pytest.mark.parametrize("route", CSV_APIS, ids=lambda r: r.name)
def test_it_neutralises_formulas_in_every_api_export(route, data, api):
    for url in _urls(route, data):
        response = api.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        _assert_neutralised(body.decode(), url)
