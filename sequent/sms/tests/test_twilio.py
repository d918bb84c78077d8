"""SMS through the official Twilio SDK against a local stand-in of the Messages API."""

from __future__ import annotations

import io

from django.core.management import call_command

from sequent.crm.models import Activity, ActivityKind, Contact
from sequent.sequences.models import StepExecution
from sequent.sequences.tests.conftest import at, run_due
from sequent.sms.models import SmsMessage, SmsSettings, SmsStatus, SmsStatusEvent
from sequent.sms.tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BASE_URL, FROM_NUMBER

STATUS = "/webhooks/twilio/status/"


def send_sms(when: str) -> str:
    out = io.StringIO()
    call_command("send_sms_due", now=at(when).isoformat(), stdout=out)
    return out.getvalue()


def queue_one(make_contact, make_sequence, body="Hi {{ contact.first_name }}, quick one", **contact_fields):
    contact_fields.setdefault("mobile", "(415) 555-0123")
    contact_fields.setdefault("country", "US")
    contact = make_contact(first_name="Dana", **contact_fields)
    make_sequence([{"kind": "sms", "day": 1, "sms_body": body}], contacts=[contact])
    run_due("2026-03-02 09:05")
    return contact, SmsMessage.objects.get(contact=contact)


def test_it_sends_a_rendered_sms_to_the_e164_number(twilio, make_contact, make_sequence, rep):
    contact, _ = queue_one(make_contact, make_sequence)

    assert send_sms("2026-03-02 09:06").startswith("1 sent, 0 failed")

    [form] = twilio.requests
    assert twilio.users == [ACCOUNT_SID]
    assert form["To"] == "+14155550123"
    assert form["From"] == FROM_NUMBER
    assert form["Body"] == "Hi Dana, quick one"
    assert form["StatusCallback"] == f"{BASE_URL}/webhooks/twilio/status/"
    message = SmsMessage.objects.get()
    assert message.status == SmsStatus.SENT
    assert message.provider_message_id.startswith("SM")
    assert (message.to_number, message.body, message.segments) == ("+14155550123", "Hi Dana, quick one", 1)
    contact.refresh_from_db()
    assert contact.last_activity_type == "SMS"
    assert Activity.objects.filter(contact=contact, kind=ActivityKind.SMS_SENT, user=rep).count() == 1


def test_it_marks_a_send_twilio_refuses_failed_with_its_reason(twilio, make_contact, make_sequence):
    twilio.refuse["+14155550123"] = (21211, "The 'To' number +14155550123 is not a valid phone number.")
    contact, _ = queue_one(make_contact, make_sequence)

    assert send_sms("2026-03-02 09:06").startswith("0 sent, 1 failed")

    message = SmsMessage.objects.get()
    assert message.status == SmsStatus.FAILED
    assert "not a valid phone number" in message.last_error and "21211" in message.last_error
    contact.refresh_from_db()
    assert contact.last_activity_type != "SMS"


def test_it_fails_a_message_whose_number_is_not_valid_without_calling_twilio(
    twilio, make_contact, make_sequence
):
    queue_one(make_contact, make_sequence, mobile="12345")

    send_sms("2026-03-02 09:06")

    message = SmsMessage.objects.get()
    assert message.status == SmsStatus.FAILED
    assert message.last_error.startswith("to_number:")
    assert twilio.requests == []


def test_it_keeps_a_message_queued_when_twilio_cannot_be_reached(
    twilio, settings, make_contact, make_sequence
):
    queue_one(make_contact, make_sequence)
    settings.SEQUENT_TWILIO_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens on the discard port

    send_sms("2026-03-02 09:06")

    message = SmsMessage.objects.get()
    assert message.status == SmsStatus.QUEUED
    assert "could not be reached" in message.last_error
    assert message.not_before > at("2026-03-02 09:06")


def test_it_applies_a_signed_delivery_callback_once(twilio, webhook, make_contact, make_sequence):
    queue_one(make_contact, make_sequence)
    send_sms("2026-03-02 09:06")
    sid = SmsMessage.objects.get().provider_message_id

    assert webhook(STATUS, {"MessageSid": sid, "MessageStatus": "delivered"}).status_code == 204
    assert webhook(STATUS, {"MessageSid": sid, "MessageStatus": "delivered"}).status_code == 204
    # A late "sent" arriving after "delivered" does not move the message backwards.
    assert webhook(STATUS, {"MessageSid": sid, "MessageStatus": "sent"}).status_code == 204

    assert SmsMessage.objects.get().status == SmsStatus.DELIVERED
    assert SmsStatusEvent.objects.filter(sid=sid, status="delivered").count() == 1


def test_it_records_an_undelivered_callback_as_failed_with_the_code(
    twilio, webhook, make_contact, make_sequence
):
    queue_one(make_contact, make_sequence)
    send_sms("2026-03-02 09:06")
    sid = SmsMessage.objects.get().provider_message_id

    webhook(STATUS, {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"})

    message = SmsMessage.objects.get()
    assert message.status == SmsStatus.FAILED
    assert "30003" in message.last_error


def test_it_refuses_a_callback_with_an_invalid_signature(
    twilio, webhook, make_contact, make_sequence, client
):
    queue_one(make_contact, make_sequence)
    send_sms("2026-03-02 09:06")
    sid = SmsMessage.objects.get().provider_message_id

    forged = webhook(STATUS, {"MessageSid": sid, "MessageStatus": "failed"}, token="not-the-token")
    unsigned = client.post(STATUS, {"MessageSid": sid, "MessageStatus": "failed"})

    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert SmsMessage.objects.get().status == SmsStatus.SENT
    assert not SmsStatusEvent.objects.exists()


def test_it_keeps_the_auth_token_encrypted_at_rest(twilio):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT twilio_auth_token FROM sms_smssettings")
        [(stored,)] = cursor.fetchall()
    assert AUTH_TOKEN not in stored
    assert str(SmsSettings.objects.get().twilio_auth_token) == AUTH_TOKEN


def test_it_opts_a_contact_out_on_stop_and_skips_the_next_sms_step(
    twilio, webhook, make_contact, make_sequence
):
    contact = make_contact(first_name="Dana", mobile="+14155550123", country="US")
    make_sequence(
        [{"kind": "sms", "day": 1, "sms_body": "First"}, {"kind": "sms", "day": 2, "sms_body": "Second"}],
        contacts=[contact],
    )
    run_due("2026-03-02 09:05")
    send_sms("2026-03-02 09:06")

    reply = webhook(
        "/webhooks/twilio/inbound/",
        {"MessageSid": "SMinbound1", "From": "+14155550123", "To": FROM_NUMBER, "Body": " stop "},
    )
    assert reply.status_code == 200
    contact.refresh_from_db()
    assert contact.sms_opt_out is True

    run_due("2026-03-03 09:05")

    second = StepExecution.objects.get(enrollment__contact=contact, step__position=2)
    assert (second.status, second.reason) == ("skipped", "contact opted out of SMS")
    assert SmsMessage.objects.count() == 1


def test_it_opts_back_in_on_start_and_processes_each_inbound_message_once(twilio, webhook, make_contact):
    contact = make_contact(mobile="+14155550123", country="US")
    inbound = "/webhooks/twilio/inbound/"
    for sid, body in [("SM1", "UNSUBSCRIBE"), ("SM2", "Start"), ("SM1", "UNSUBSCRIBE")]:
        assert webhook(inbound, {"MessageSid": sid, "From": "+14155550123", "Body": body}).status_code == 200

    contact.refresh_from_db()
    assert contact.sms_opt_out is False  # the replayed SM1 changed nothing
    assert Activity.objects.filter(contact=contact, kind=ActivityKind.SMS_RECEIVED).count() == 2
    assert Contact.objects.get().inbound_sms.count() == 2
