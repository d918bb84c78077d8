"""Flow: a sequence's email reminder waits on the activities dashboard as a rendered draft;
the rep personalises the subject and body and sends it, the delivery run sends it from the
rep's mailbox, and the mail catcher shows the email as the rep wrote it."""

import io

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from sequent.crm.models import Account, Contact
from sequent.lib import clock
from sequent.sequences import actions
from sequent.sequences.tests.conftest import at
from sequent.ui_tests.conftest import log_in, open_user_menu, view_screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("patient_expect"),
]


def test_it_sends_the_reps_personalised_email_reminder(page, rep, demo_mail):
    account = Account.objects.create(name="Northwind", domain="northwind.example")
    contact = Contact.objects.create(
        owner=rep, first_name="Dana", last_name="Cruz", email="dana@northwind.example", account=account
    )
    sequence = actions.do_create_sequence(rep, "Warm leads", time_zone="UTC", send_time="09:00")
    actions.do_add_step(
        sequence,
        "email_reminder",
        day=1,
        subject="Idea for {{ account.name | default: 'your team' }}",
        body="<p>Hi {{ contact.first_name }}, a thought about your pipeline.</p>",
    )
    actions.do_add_contacts(sequence, [contact.pk])
    with clock.frozen(at("2026-03-01 12:00")):
        actions.do_activate(sequence)
    call_command("run_due", now="2026-03-02T09:05:00Z", stdout=io.StringIO())
    clock.set_now(at("2026-03-02 10:00"))

    log_in(page, "alice@example.com", "pw-alice-123")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Activities").click()
    row = page.locator("tr.task-row", has_text="Dana Cruz")
    expect(row).to_contain_text("Email reminder")
    row.get_by_role("link", name="Personalise and send", exact=True).click()

    subject = page.get_by_label("Subject")
    body = page.get_by_label("Body")
    expect(subject).to_have_value("Idea for Northwind")
    expect(body).to_have_value("<p>Hi Dana, a thought about your pipeline.</p>")
    subject.fill("Dana, one idea for the Northwind pilot")
    body.fill("<p>Hi Dana,</p><p>I wrote this one myself: shall we talk pilots on Thursday?</p>")
    view_screenshot(page, "email-reminder-editor")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Email to dana@northwind.example queued")
    expect(page.get_by_text("Nothing due today.")).to_be_visible()

    # The worker's next pass delivers the outbox (run-due does what `sequent worker` does).
    call_command("run_due", now="2026-03-02T10:01:00Z", stdout=io.StringIO())

    open_user_menu(page, "Mail catcher")
    expect(page.get_by_role("heading", name="Mail catcher")).to_be_visible()
    page.get_by_role("link", name="Dana, one idea for the Northwind pilot").click()
    expect(page.get_by_role("heading", name="Dana, one idea for the Northwind pilot")).to_be_visible()
    expect(page.locator(".message-summary")).to_contain_text("dana@northwind.example")
    frame = page.frame_locator("iframe.caught-html")
    expect(frame.get_by_text("I wrote this one myself")).to_be_visible()
    view_screenshot(page, "mail-catcher-reminder")
