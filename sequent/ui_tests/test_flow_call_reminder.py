"""Flow: a sequence's call reminder waits on the activities dashboard; the rep completes it
with the call's outcome and the contact's "Last contacted mode" becomes Outgoing call."""

import io
import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from sequent.crm.models import Contact
from sequent.lib import clock
from sequent.sequences import actions
from sequent.sequences.tests.conftest import at
from sequent.ui_tests.conftest import log_in, view_screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("patient_expect"),
]


def test_it_completes_a_call_reminder_and_updates_last_contacted_mode(page, rep):
    contact = Contact.objects.create(
        owner=rep, first_name="Dana", last_name="Cruz", email="dana@client.example", mobile="+14155550123"
    )
    sequence = actions.do_create_sequence(rep, "Pilot follow-up", time_zone="UTC", send_time="09:00")
    actions.do_add_step(sequence, "call_reminder", day=1, task_notes="Ask about the pilot")
    actions.do_add_contacts(sequence, [contact.pk])
    with clock.frozen(at("2026-03-01 12:00")):
        actions.do_activate(sequence)
    # Monday's run puts the call reminder on the rep's dashboard.
    call_command("run_due", now="2026-03-02T09:05:00Z", no_mail=True, stdout=io.StringIO())
    clock.set_now(at("2026-03-02 10:00"))

    log_in(page, "alice@example.com", "pw-alice-123")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Dana Cruz").click()
    expect(page.locator("#last-contacted-mode")).to_have_text("Not yet contacted")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Activities").click()
    row = page.locator("tr.task-row", has_text="Dana Cruz")
    expect(row).to_contain_text("Call reminder")
    expect(row).to_contain_text("Pilot follow-up")
    row.get_by_label("Call outcome", exact=True).select_option(label="Left voicemail")
    view_screenshot(page, "dashboard-call-reminder")
    row.get_by_role("button", name="Complete call").click()

    expect(page.get_by_role("status")).to_contain_text("(Left voicemail)")
    expect(page.locator("tr.task-row", has_text="Dana Cruz")).to_have_count(0)
    expect(page.get_by_text("Nothing due today.")).to_be_visible()

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contacts").click()
    page.get_by_role("link", name="Dana Cruz").click()
    expect(page).to_have_url(re.compile(rf"/contacts/{contact.pk}/$"))
    expect(page.locator("#last-contacted-mode")).to_have_text("Outgoing call")
    expect(page.locator("#last-activity-type")).to_have_text("Call")
    expect(page.locator("#last-contacted-at")).to_have_text("2026-03-02 10:00 UTC")
    view_screenshot(page, "contact-after-call", focus=page.locator("#last-contacted-mode"))
