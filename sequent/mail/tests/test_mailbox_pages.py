"""The mailbox pages: list with status and sync status, create and edit (passwords never
shown), the connection test against real local servers, the workspace default, and
another rep's mailbox answering 404."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.test import Client

from sequent.mail.models import Mailbox, MailboxFolderState, MailboxStatus
from sequent.mail.tests.servers import (
    PASSWORD,
    USERNAME,
    RecordingHandler,
    free_port,
    imap_server,
    smtp_server,
)

SECRET = "s3cret-app-password"


@pytest.fixture
def client_for():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def form(**changes) -> dict:
    values = {
        "email_address": "alice@acme.example",
        "display_name": "Alice Rep",
        "smtp_host": "127.0.0.1",
        "smtp_port": 2525,
        "smtp_security": "none",
        "smtp_username": "",
        "smtp_password": "",
        "imap_host": "",
        "imap_port": 993,
        "imap_security": "ssl",
        "imap_username": "",
        "imap_password": "",
        "imap_folders": "INBOX",
        "imap_sent_folder": "",
        "per_minute_limit": 20,
        "status": "active",
    }
    values.update(changes)
    return values


def text(response) -> str:
    return html.unescape(response.content.decode())


def field_error(body: str, name: str) -> str:
    """The error inside the form field of the control *name*, named by its aria-describedby."""
    field = r'<div class="field has-error">((?:(?!<div class="field).)*?name="{}"(?:(?!<div class="field).)*)'
    block = re.search(field.format(name), body, re.S)
    if not block or not re.search(rf'aria-describedby="[^"]*\bid_{name}_error\b', block[1]):
        return ""
    error = re.search(rf'<p class="field-error" id="id_{name}_error">(.*?)</p>', block[1], re.S)
    return error[1] if error else ""


def test_it_creates_a_mailbox_and_never_shows_its_password(rep, client_for):
    client = client_for(rep)
    created = client.post("/mailboxes/new/", form(smtp_username="alice", smtp_password=SECRET))
    mailbox = Mailbox.objects.get(owner=rep)
    assert created.status_code == 302 and created["Location"] == f"/mailboxes/{mailbox.pk}/"
    assert str(mailbox.smtp_password) == SECRET

    page = client.get(f"/mailboxes/{mailbox.pk}/")

    assert SECRET not in page.content.decode()
    assert "A password is set. Type a new one to replace it" in text(page)


def test_it_keeps_a_password_left_empty_and_replaces_a_typed_one(rep, client_for):
    client = client_for(rep)
    client.post("/mailboxes/new/", form(smtp_username="alice", smtp_password=SECRET))
    mailbox = Mailbox.objects.get(owner=rep)

    client.post(f"/mailboxes/{mailbox.pk}/", form(smtp_username="alice", display_name="Alice R."))
    mailbox.refresh_from_db()
    assert (mailbox.display_name, str(mailbox.smtp_password)) == ("Alice R.", SECRET)

    client.post(f"/mailboxes/{mailbox.pk}/", form(smtp_username="alice", smtp_password="new-one"))
    mailbox.refresh_from_db()
    assert str(mailbox.smtp_password) == "new-one"

    client.post(f"/mailboxes/{mailbox.pk}/", form(clear_smtp_password="on"))
    mailbox.refresh_from_db()
    assert mailbox.smtp_password is None


def test_it_shows_refusals_next_to_the_fields(rep, client_for):
    page = client_for(rep).post(
        "/mailboxes/new/", form(email_address="not an address", smtp_host="bad host", smtp_port=70000)
    )

    assert page.status_code == 422
    body = text(page)
    assert field_error(body, "email_address")
    assert "a host name cannot contain spaces" in field_error(body, "smtp_host")
    assert "from 1 to 65535" in field_error(body, "smtp_port")
    assert not Mailbox.objects.exists()


def test_it_answers_404_for_another_users_mailbox(rep, other_rep, client_for):
    theirs = Mailbox.objects.create(owner=other_rep, email_address="bob@acme.example", smtp_host="127.0.0.1")
    client = client_for(rep)

    assert "bob@acme.example" not in text(client.get("/mailboxes/"))
    assert client.get(f"/mailboxes/{theirs.pk}/").status_code == 404
    assert client.post(f"/mailboxes/{theirs.pk}/", form()).status_code == 404
    assert client.post(f"/mailboxes/{theirs.pk}/test/").status_code == 404
    assert client.post(f"/mailboxes/{theirs.pk}/default/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.email_address == "bob@acme.example"


def test_it_lists_status_and_sync_status(rep, client_for):
    paused = Mailbox.objects.create(
        owner=rep,
        email_address="alice@acme.example",
        smtp_host="127.0.0.1",
        imap_host="127.0.0.1",
        status=MailboxStatus.PAUSED_QUOTA,
        paused_until=dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC),
        last_error="452 4.5.3 daily sending quota exceeded",
    )
    MailboxFolderState.objects.create(
        mailbox=paused,
        folder="INBOX",
        uidvalidity=7,
        last_uid=4242,
        synced_at=dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC),
    )

    body = text(client_for(rep).get("/mailboxes/"))

    assert "paused_quota" in body and "until 2026-03-02 10:00 UTC" in body
    assert "2026-03-02 09:30 UTC" in body  # last sync
    assert "<code>INBOX</code> 4242" in body
    assert "daily sending quota exceeded" in body


def test_it_tests_the_connection_and_shows_the_exact_result(rep, client_for):
    client = client_for(rep)
    with smtp_server(RecordingHandler(), auth=True) as (host, port), imap_server() as (imap_host, imap_port):
        client.post(
            "/mailboxes/new/",
            form(
                smtp_port=port,
                smtp_host=host,
                smtp_username=USERNAME,
                smtp_password=PASSWORD,
                imap_host=imap_host,
                imap_port=imap_port,
                imap_security="none",
                imap_username=USERNAME,
                imap_password=PASSWORD,
            ),
        )
        client.post(
            "/mailboxes/new/",
            form(
                email_address="wrong@acme.example",
                smtp_host=host,
                smtp_port=port,
                smtp_username=USERNAME,
                smtp_password="wrong",
            ),
        )
        good, bad = Mailbox.objects.order_by("pk")

        passed = client.post(f"/mailboxes/{good.pk}/test/", HTTP_HX_REQUEST="true")
        refused = client.post(f"/mailboxes/{bad.pk}/test/", follow=True)
    down_port = free_port()
    client.post(f"/mailboxes/{bad.pk}/", form(email_address="wrong@acme.example", smtp_port=down_port))
    down = client.post(f"/mailboxes/{bad.pk}/test/", HTTP_HX_REQUEST="true")

    assert "Connection test passed" in text(passed) and "SMTP and IMAP logins worked" in text(passed)
    assert "Connection test failed: SMTP: login refused: 535" in text(refused)
    assert f"SMTP: 127.0.0.1:{down_port}: cannot connect" in text(down)


def test_it_lets_only_a_workspace_manager_set_the_default(rep, admin_user, client_for):
    mine = Mailbox.objects.create(owner=rep, email_address="alice@acme.example", smtp_host="127.0.0.1")
    admins = Mailbox.objects.create(owner=admin_user, email_address="ada@acme.example", smtp_host="127.0.0.1")

    refused = client_for(rep).post(f"/mailboxes/{mine.pk}/default/", follow=True)
    assert "Only a user with the Manage workspace settings permission" in text(refused)
    assert "Set as default" not in text(client_for(rep).get("/mailboxes/"))

    client_for(admin_user).post(f"/mailboxes/{admins.pk}/default/")
    admins.refresh_from_db()
    mine.refresh_from_db()
    assert admins.is_workspace_default and not mine.is_workspace_default
