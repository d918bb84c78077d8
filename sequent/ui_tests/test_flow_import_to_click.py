"""Flow: from a CSV file to a tracked click, the way a newcomer tries Sequent.

A rep logs in, imports contacts through the import wizard, builds a classic sequence of
three steps whose audience is that import, activates it; the worker's run sends the first
email to the mail catcher; the rep reads it there, clicks its tracked link, and after the
next run sees the click on the sequence's performance page.

Two things stand in for time passing. The web process here leaves the import to the
worker (its background thread is switched off), so the wizard's progress screen is seen
waiting and `run_due` (the worker until idle) runs the job. Metrics are computed at the
end of each run, so the click shows once the next day's run is over: the test runs it, as
a rep would wait for it.
"""

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from sequent.crm import imports
from sequent.lib import clock
from sequent.sequences.tests.conftest import at
from sequent.ui_tests.conftest import log_in, open_user_menu, view_screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("patient_expect"),
]

CSV = """First Name,Last Name,Email,Company,Job Title
Dana,Cruz,dana@northwind.example,Northwind,Head of Sales
Lee,Park,lee@contoso.example,Contoso,VP Marketing
Sam,Ito,sam@fabrikam.example,Fabrikam,Founder
Kim,Roe,not-an-email,Initech,CTO
"""
LANDING = "https://www.example.com/webinar-recording"


def figure(scope, name: str):
    """The value (``<dd>``) next to the label *name* (``<dt>``) in a list of figures."""
    return scope.locator(f"xpath=.//dt[normalize-space()='{name}']/following-sibling::dd[1]")


def run_worker(when: str) -> None:
    """`sequent run-due --now <when>`: every due run, batch, email and import, then exit."""
    call_command("run_due", now=when, stdout=io.StringIO())


def test_it_goes_from_a_csv_import_to_a_tracked_click(
    person_page, rep, demo_mail, settings, tmp_path, monkeypatch
):
    page = person_page
    settings.IMPORT_DIR = tmp_path / "imports"
    monkeypatch.setattr(imports, "start_in_background", lambda job_id: None)
    csv_file = tmp_path / "march-webinar.csv"
    csv_file.write_text(CSV, encoding="utf-8")
    # Monday morning, before the 09:00 send time.
    clock.set_now(at("2026-03-02 08:00"))
    main = page.get_by_role("navigation", name="Main")

    # Import the CSV: upload, map, start, progress, report.
    log_in(page, "alice@example.com", "pw-alice-123")
    main.get_by_role("link", name="Imports").click()
    page.get_by_role("link", name="Import a CSV").first.click()
    page.get_by_label("CSV file").set_input_files(csv_file)
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.get_by_role("heading", name="Map columns of march-webinar.csv")).to_be_visible()
    expect(page.get_by_label("Email", exact=True)).to_have_value("email")
    page.get_by_label("Import name").fill("March webinar")
    view_screenshot(page, "import-mapping")
    page.get_by_role("button", name="Start import").click()
    expect(page.get_by_role("heading", name="Import of march-webinar.csv")).to_be_visible()
    expect(page.locator("#import-progress")).to_contain_text("waiting for a worker to start it")
    view_screenshot(page, "import-progress")
    run_worker("2026-03-02T08:00:00Z")
    # The progress block polls every second and reloads the page with the report.
    expect(page.get_by_role("link", name="See your contacts")).to_be_visible()
    report = page.locator("#import-progress")
    expect(figure(report, "Created")).to_have_text("3")
    expect(figure(report, "Errors")).to_have_text("1")
    bad_rows = page.get_by_role("table").filter(has_text="Reason")
    expect(bad_rows).to_contain_text("5")
    expect(bad_rows).to_contain_text("email")
    view_screenshot(page, "import-report")

    # Build a classic sequence for the imported contacts.
    main.get_by_role("link", name="Sequences").click()
    page.get_by_role("link", name="Create Sales Sequence").first.click()
    page.get_by_label("Name").fill("March webinar follow-up")
    audience = page.locator("#audience")
    audience.get_by_label("Condition field").select_option(label="Import Name")
    operator = audience.get_by_label("Condition operator")
    # The row is redrawn with the operators of a text field.
    expect(operator.locator("option", has_text="is greater than")).to_have_count(0)
    operator.select_option(label="is")
    audience.get_by_label("Condition value").fill("March webinar")
    page.get_by_role("button", name="Create sequence").click()
    expect(page.get_by_role("heading", name=re.compile("Edit sequence"))).to_be_visible()
    expect(page.locator("#audience-count")).to_contain_text("3 contacts would enroll now")

    page.get_by_role("link", name="Add Email", exact=True).click()
    page.get_by_label("Day").fill("1")
    page.get_by_label("Subject").fill("The recording of our webinar, {{ contact.first_name }}")
    page.get_by_label("Body").fill(
        "<p>Hi {{ contact.first_name }},</p>"
        f'<p>Thanks for joining. Here is <a href="{LANDING}">the recording</a>.</p>'
    )
    view_screenshot(page, "builder-email-step", focus=page.get_by_label("Body"))
    page.get_by_role("button", name="Add step").click()
    page.get_by_role("link", name="Add Follow-up task", exact=True).click()
    page.get_by_label("Day").fill("2")
    page.get_by_label("Task title").fill("Ask {name} how the recording landed")
    page.get_by_role("button", name="Add step").click()
    page.get_by_role("link", name="Add Call reminder", exact=True).click()
    page.get_by_label("Day").fill("3")
    page.get_by_label("Task notes").fill("Offer a demo for the team")
    page.get_by_role("button", name="Add step").click()
    steps = page.locator("#steps li.step")
    expect(steps).to_have_count(3)
    expect(steps.nth(0)).to_contain_text("Email · day 1")
    expect(steps.nth(1)).to_contain_text("Follow-up task · day 2")
    expect(steps.nth(2)).to_contain_text("Call reminder · day 3")
    view_screenshot(page, "builder-steps", focus=page.locator("#status"))

    page.get_by_role("link", name="Activate", exact=True).click()
    page.get_by_role("button", name="Activate sequence").click()
    expect(page.get_by_role("status")).to_contain_text("is now active")

    # Monday's run enrolls the three contacts and sends the first email.
    run_worker("2026-03-02T09:05:00Z")
    clock.set_now(at("2026-03-02 09:30"))

    # Read the email in the mail catcher and click its tracked link.
    open_user_menu(page, "Mail catcher")
    expect(page.get_by_role("heading", name="Mail catcher")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("The recording of our webinar"))).to_have_count(3)
    page.get_by_role("link", name="The recording of our webinar, Dana").click()
    frame = page.frame_locator("iframe.caught-html")
    expect(frame.get_by_text("Hi Dana,")).to_be_visible()
    view_screenshot(page, "mail-catcher-email")
    tracked = page.locator("a.caught-link", has_text="the recording")
    expect(tracked).to_have_attribute("href", re.compile(r"/t/c/"))
    page.route(
        LANDING, lambda route: route.fulfill(body="<h1>Webinar recording</h1>", content_type="text/html")
    )
    tracked.click()
    expect(page).to_have_url(LANDING)

    # Tuesday's run ends with fresh metrics: one contact of three clicked.
    run_worker("2026-03-03T09:05:00Z")
    clock.set_now(at("2026-03-03 09:30"))
    page.goto("/")
    main.get_by_role("link", name="Sequences").click()
    page.get_by_role("link", name="March webinar follow-up").click()
    page.get_by_role("link", name="Performance").click()
    stats = page.locator("dl.stats")
    expect(figure(stats, "Enrolled")).to_have_text("3")
    expect(figure(stats, "Sent")).to_have_text("3")
    expect(figure(stats, "Click rate")).to_have_text("33%")
    email_row = page.locator("table.step-metrics tbody tr").first
    expect(email_row.locator("td").nth(6)).to_have_text("1")  # Clicked
    view_screenshot(page, "sequence-performance")
