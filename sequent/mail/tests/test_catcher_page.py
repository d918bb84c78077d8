"""The mail catcher's pages: a demo mailbox sends to the local catcher, and a logged-in
user reads what was caught, headers and rendered HTML with working tracking links."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from sequent.mail import catcher
from sequent.mail.actions import DEMO_TEMPLATE_NAME, do_seed_demo_mail
from sequent.mail.delivery import deliver_due
from sequent.mail.models import EmailTemplate, Mailbox
from sequent.mail.templating import validate_template
from sequent.mail.tests.servers import free_port
from sequent.users.management.commands.serve import child_commands

pytestmark = pytest.mark.usefixtures("delivery_env")


@pytest.fixture
def running_catcher(settings, tmp_path, monkeypatch):
    """The real catcher on a free port, keeping mail under a temporary var directory."""
    settings.VAR_DIR = tmp_path
    port = free_port()
    monkeypatch.setenv("SEQUENT_CATCHER_PORT", str(port))
    controller = catcher.make_controller()
    controller.start()
    yield port
    controller.stop()


@pytest.fixture
def logged_in(rep):
    client = Client()
    client.force_login(rep)
    return client


def test_it_shows_what_the_demo_mailbox_sent_with_headers_and_clickable_tracking_links(
    running_catcher, rep, make_sequence, make_contact, queue, logged_in
):
    created = do_seed_demo_mail(rep)
    mailbox = Mailbox.objects.get(owner=rep)
    assert (mailbox.smtp_host, mailbox.smtp_port, mailbox.smtp_security) == (
        "127.0.0.1",
        running_catcher,
        "none",
    )
    assert mailbox.is_workspace_default
    assert len(created) == 2 and do_seed_demo_mail(rep) == []  # seeding twice adds nothing
    template = EmailTemplate.objects.get(owner=rep, name=DEMO_TEMPLATE_NAME)
    assert validate_template(template.subject) == [] and validate_template(template.body) == []

    sequence, (step,) = make_sequence([{"subject": template.subject, "body": template.body}], mailbox=mailbox)
    contact = make_contact(first_name="Robin")
    queue(sequence, step, contact)
    assert deliver_due("w1")

    inbox = logged_in.get("/mail-catcher/")
    assert inbox.status_code == 200
    subject = f"Quick question for {contact.account.name}"
    assert subject in inbox.content.decode()
    name = re.search(r'href="/mail-catcher/([^/"]+)/"', inbox.content.decode()).group(1)

    page = logged_in.get(f"/mail-catcher/{name}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert (
        '<iframe class="caught-html" title="The email as HTML" sandbox="allow-popups allow-popups-to-escape-sandbox"'
        in text
    )
    assert "allow-scripts" not in text
    assert "List-Unsubscribe-Post" in text and f"&lt;{contact.email}&gt;" in text
    srcdoc = html.unescape(re.search(r'srcdoc="([^"]*)"', text).group(1))
    assert srcdoc.startswith('<base target="_blank">')
    assert "Hi Robin," in srcdoc
    link = re.search(r'href="https://sequent\.example\.com(/t/c/[^"]+)"', srcdoc).group(1)
    click = Client().get(link, HTTP_USER_AGENT="Mozilla/5.0 Firefox/128.0")
    assert (click.status_code, click["Location"]) == (302, "https://www.example.com/demo")


def test_it_keeps_the_catcher_pages_for_logged_in_users(running_catcher, logged_in):
    anonymous = Client().get("/mail-catcher/")
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert "No email caught yet" in logged_in.get("/mail-catcher/").content.decode()
    assert logged_in.get("/mail-catcher/../../secret_key/").status_code == 404
    assert (
        logged_in.get(
            "/mail-catcher/20260302T090000000000Z-0123456789abcdef0123456789abcdef.eml/"
        ).status_code
        == 404
    )


def test_it_starts_the_catcher_beside_the_web_app_when_asked():
    names = [name for name, _ in child_commands(worker=False, catcher=True)]
    assert names == ["mail catcher"]
    assert child_commands(worker=False) == []
