"""The mailboxes API: CRUD scoped to the owner, write-only passwords encrypted at rest,
the workspace default, and the connection test against real servers."""

from __future__ import annotations

import json

from django.db import connection

from sequent.mail.models import Mailbox
from sequent.mail.tests.servers import (
    PASSWORD,
    USERNAME,
    RecordingHandler,
    free_port,
    imap_server,
    smtp_server,
)

SECRET = "app-password-Secret-42"


def payload(**overrides):
    values = {
        "email_address": "Alice@Acme.example",
        "display_name": "Alice Rep",
        "smtp_host": "smtp.acme.example",
        "smtp_port": 587,
        "smtp_security": "starttls",
        "smtp_username": "alice@acme.example",
        "smtp_password": SECRET,
    }
    values.update(overrides)
    return values


def test_it_creates_a_mailbox_and_never_answers_its_password(api):
    response = api.post("mailboxes", payload())
    assert response.status_code == 201, response.content
    body = response.json()
    assert SECRET not in response.content.decode()
    assert "smtp_password" not in body
    assert body["has_smtp_password"] is True
    assert body["has_imap_password"] is False
    assert body["email_address"] == "alice@acme.example"
    assert (body["status"], body["per_minute_limit"], body["is_workspace_default"]) == ("active", 20, False)
    assert body["imap_folders"] == ["INBOX"]

    for response in (api.get(f"mailboxes/{body['id']}"), api.get("mailboxes")):
        assert response.status_code == 200
        assert SECRET not in response.content.decode()

    with connection.cursor() as cursor:
        cursor.execute("SELECT smtp_password FROM mail_mailbox WHERE id = %s", [body["id"]])
        stored = cursor.fetchone()[0]
    assert stored and SECRET not in stored  # a Fernet token, not the password
    assert Mailbox.objects.get(pk=body["id"]).smtp_password == SECRET


def test_it_refuses_bad_settings_naming_each_field(api):
    response = api.post(
        "mailboxes",
        payload(
            email_address="not an address",
            smtp_port=70000,
            display_name="Alice\r\nBcc: x@evil.example",
            smtp_host="smtp acme",
        ),
    )
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"email_address", "smtp_port", "display_name", "smtp_host"}
    for bad, field in (
        (dict(per_minute_limit=0), "per_minute_limit"),
        (dict(smtp_security="tls"), "smtp_security"),
    ):
        response = api.post("mailboxes", payload(**bad))
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not Mailbox.objects.exists()


def test_it_answers_404_for_another_users_mailbox(api, other_api):
    mailbox_id = api.post("mailboxes", payload()).json()["id"]
    assert other_api.get(f"mailboxes/{mailbox_id}").status_code == 404
    assert other_api.patch(f"mailboxes/{mailbox_id}", {"display_name": "Mine now"}).status_code == 404
    assert other_api.post(f"mailboxes/{mailbox_id}/test").status_code == 404
    assert other_api.delete(f"mailboxes/{mailbox_id}").status_code == 404
    assert other_api.get("mailboxes").json()["count"] == 0
    assert Mailbox.objects.get(pk=mailbox_id).display_name == "Alice Rep"


def test_it_updates_and_deletes_a_mailbox(api):
    mailbox_id = api.post("mailboxes", payload()).json()["id"]
    response = api.patch(
        f"mailboxes/{mailbox_id}",
        {"display_name": "Alice from Acme", "smtp_password": None, "status": "disabled"},
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Alice from Acme"
    assert response.json()["has_smtp_password"] is False
    assert response.json()["status"] == "disabled"
    assert api.patch(f"mailboxes/{mailbox_id}", {"status": "paused_auth"}).status_code == 422
    assert api.delete(f"mailboxes/{mailbox_id}").status_code == 204
    assert not Mailbox.objects.exists()


def test_it_lets_only_a_workspace_manager_set_the_one_default_mailbox(api, api_for, admin_user):
    response = api.post("mailboxes", payload(is_workspace_default=True))
    assert response.status_code == 403
    assert "Manage workspace" in response.json()["detail"]
    admin = api_for(admin_user)
    first = admin.post(
        "mailboxes", payload(email_address="team@acme.example", is_workspace_default=True)
    ).json()
    second = admin.post(
        "mailboxes", payload(email_address="sales@acme.example", is_workspace_default=True)
    ).json()
    assert second["is_workspace_default"] is True
    assert admin.get(f"mailboxes/{first['id']}").json()["is_workspace_default"] is False
    assert Mailbox.objects.filter(is_workspace_default=True).count() == 1


def test_it_tests_the_connection_and_reports_the_exact_failure(api):
    handler = RecordingHandler()
    with smtp_server(handler, auth=True) as (host, port), imap_server() as (imap_host, imap_port):
        good = api.post(
            "mailboxes",
            payload(
                smtp_host=host,
                smtp_port=port,
                smtp_security="none",
                smtp_username=USERNAME,
                smtp_password=PASSWORD,
                imap_host=imap_host,
                imap_port=imap_port,
                imap_security="none",
                imap_username=USERNAME,
                imap_password=PASSWORD,
            ),
        ).json()
        bad = api.post(
            "mailboxes",
            payload(
                smtp_host=host,
                smtp_port=port,
                smtp_security="none",
                smtp_username=USERNAME,
                smtp_password="wrong",
            ),
        ).json()
        unreachable = api.post(
            "mailboxes", payload(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none")
        ).json()

        assert api.post(f"mailboxes/{good['id']}/test").json() == {
            "ok": True,
            "problems": [],
            "status": "active",
        }
        refused = api.post(f"mailboxes/{bad['id']}/test").json()
        assert refused["ok"] is False
        assert refused["problems"][0].startswith("SMTP: login refused: 535")
        down = api.post(f"mailboxes/{unreachable['id']}/test").json()
        assert down["problems"][0].startswith(f"SMTP: 127.0.0.1:{unreachable['smtp_port']}: cannot connect")
    assert handler.received == []


def test_it_resumes_a_mailbox_paused_for_its_login_once_a_working_password_is_saved(api):
    with smtp_server(RecordingHandler(), auth=True) as (host, port):
        mailbox_id = api.post(
            "mailboxes",
            payload(
                smtp_host=host,
                smtp_port=port,
                smtp_security="none",
                smtp_username=USERNAME,
                smtp_password="old",
            ),
        ).json()["id"]
        Mailbox.objects.filter(pk=mailbox_id).update(status="paused_auth", last_error="login refused: 535")

        still_wrong = api.patch(f"mailboxes/{mailbox_id}", {"smtp_password": "also-wrong"}).json()
        assert still_wrong["status"] == "paused_auth"
        fixed = api.patch(f"mailboxes/{mailbox_id}", {"smtp_password": PASSWORD}).json()
    assert fixed["status"] == "active"
    assert fixed["last_error"] == ""
    assert fixed["last_checked_at"] is not None
    assert SECRET not in json.dumps(fixed)
