"""Secrets (mailbox passwords, the Twilio auth token, API tokens) never leave: not in any
API answer (every GET of the OpenAPI schema, as an administrator), any page, a CSV
export, the logs of a failing SMTP login, or the 500 page; stored encrypted or hashed."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test import Client

from sequent.mail.actions import check_mailbox_connection
from sequent.mail.models import Mailbox
from sequent.mail.tests.servers import RecordingHandler, smtp_server
from sequent.security.routes import api_routes, page_routes
from sequent.security.tests.world import IMAP_PASSWORD, MAILBOX_PASSWORD, build_world, values_for
from sequent.sms.actions import do_save_sms_settings

TWILIO_TOKEN = "twilio-token-zq-77aa31"
PUBLIC = {
    "logout",
    "mail:open",
    "mail:click",
    "mail:unsubscribe",
    "sms:sms-twilio-status",
    "sms:sms-twilio-inbound",
}


@pytest.fixture
def secrets_world(admin_user):
    world = build_world(admin_user, admin_user)
    do_save_sms_settings(
        {
            "provider": "twilio",
            "twilio_account_sid": "AC" + "1" * 32,
            "twilio_auth_token": TWILIO_TOKEN,
            "from_number": "+14155550100",
        }
    )
    return world


def _secrets(world) -> list[str]:
    return [MAILBOX_PASSWORD, IMAP_PASSWORD, TWILIO_TOKEN, world.api_token]


def _assert_clean(text: str, world, where: str) -> None:
    for secret in _secrets(world):
        assert secret not in text, f"a secret in {where}"


def test_it_keeps_secrets_out_of_every_api_get(secrets_world, api_for, admin_user):
    api = api_for(admin_user)
    seen = 0
    for route in api_routes():
        if route.method != "GET":
            continue
        response = api.get(route.url(values_for(route.name, route.params, secrets_world)[0]))
        assert response.status_code < 500, route.name
        body = b"".join(response.streaming_content) if response.streaming else response.content
        _assert_clean(body.decode(errors="replace"), secrets_world, route.name)
        seen += response.status_code == 200
    assert seen >= 30
    _assert_clean(api.get("/api/v1/openapi.json").content.decode(), secrets_world, "the schema")


def test_it_keeps_secrets_out_of_every_page(secrets_world, admin_user):
    client = Client()
    client.force_login(admin_user)
    seen = 0
    for route in page_routes():
        if route.name in PUBLIC:
            continue
        url = route.url(values_for(route.name, route.params, secrets_world)[0])
        response = client.get(url)
        assert response.status_code < 500, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        _assert_clean(body.decode(errors="replace"), secrets_world, url)
        seen += response.status_code == 200
    assert seen >= 30


def test_it_keeps_secrets_out_of_csv_exports(secrets_world, admin_user):
    client = Client()
    client.force_login(admin_user)
    for record_type in ("contact", "account"):
        response = client.get(f"/lists/{record_type}/export.csv")
        assert response.status_code == 200
        _assert_clean(b"".join(response.streaming_content).decode(), secrets_world, "export")


def test_it_keeps_the_password_out_of_the_logs_of_a_refused_login(secrets_world, caplog):
    caplog.set_level(logging.DEBUG)
    with smtp_server(RecordingHandler(), auth=True) as (host, port):
        Mailbox.objects.filter(pk=secrets_world.ids["mailbox_id"]).update(
            smtp_host=host, smtp_port=port, imap_host="127.0.0.1", imap_port=1
        )
        mailbox = Mailbox.objects.get(pk=secrets_world.ids["mailbox_id"])
        problems = check_mailbox_connection(mailbox)
    assert problems  # the login was refused and said so
    _assert_clean(caplog.text + " ".join(problems), secrets_world, "the log")


def test_it_shows_no_secret_on_the_500_page(secrets_world, admin_user, settings, monkeypatch):
    settings.DEBUG = False
    from sequent.mail import pages

    def broken(*args, **kwargs):
        raise RuntimeError(f"boom {MAILBOX_PASSWORD}")

    monkeypatch.setattr(pages, "_last_sync", broken)
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    response = client.get(f"/mailboxes/{secrets_world.ids['mailbox_id']}/")
    assert response.status_code == 500
    _assert_clean(response.content.decode(), secrets_world, "the 500 page")
    assert "Traceback" not in response.content.decode()


def test_it_stores_passwords_encrypted_and_tokens_hashed(secrets_world):
    with connection.cursor() as cursor:
        cursor.execute("SELECT smtp_password, imap_password FROM mail_mailbox")
        mailbox_columns = " ".join(str(value) for row in cursor.fetchall() for value in row)
        cursor.execute("SELECT twilio_auth_token FROM sms_smssettings")
        sms_columns = " ".join(str(value) for row in cursor.fetchall() for value in row)
        cursor.execute("SELECT token_hash, prefix, name FROM users_apitoken")
        token_columns = " ".join(str(value) for row in cursor.fetchall() for value in row)
    assert MAILBOX_PASSWORD not in mailbox_columns and IMAP_PASSWORD not in mailbox_columns
    assert mailbox_columns.strip() and TWILIO_TOKEN not in sms_columns and sms_columns.strip()
    assert secrets_world.api_token not in token_columns
    assert secrets_world.api_token[3:] not in token_columns
    # And they still work: decrypted on read.
    mailbox = Mailbox.objects.get(pk=secrets_world.ids["mailbox_id"])
    assert mailbox.smtp_password == MAILBOX_PASSWORD
