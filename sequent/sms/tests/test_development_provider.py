"""The development provider (the default) and the per-second limit."""

from __future__ import annotations

import io

from django.core.management import call_command

from sequent.sequences.tests.conftest import at, run_due
from sequent.sms.actions import do_save_sms_settings
from sequent.sms.models import RecordedSms, SmsMessage, SmsStatus


def send_sms(when: str) -> str:
    out = io.StringIO()
    call_command("send_sms_due", now=at(when).isoformat(), stdout=out)
    return out.getvalue()


def test_it_records_messages_instead_of_sending_them(make_contact, make_sequence):
    contact = make_contact(first_name="Dana", mobile="07911 123456", country="GB")
    make_sequence(
        [{"kind": "sms", "day": 1, "sms_body": "Hi {{ contact.first_name }} 👋"}], contacts=[contact]
    )
    run_due("2026-03-02 09:05")

    send_sms("2026-03-02 09:06")

    recorded = RecordedSms.objects.get()
    assert (recorded.to_number, recorded.body) == ("+447911123456", "Hi Dana 👋")
    message = SmsMessage.objects.get()
    assert (message.status, message.provider_message_id) == (SmsStatus.DELIVERED, recorded.sid)


def test_it_sends_no_more_than_the_workspace_limit_per_second(make_contact, make_sequence):
    do_save_sms_settings({"per_second_limit": 2})
    contacts = [make_contact(mobile=f"+1415555012{n}", country="US") for n in range(5)]
    make_sequence([{"kind": "sms", "day": 1}], contacts=contacts)
    run_due("2026-03-02 09:05")

    assert send_sms("2026-03-02 09:06:00").startswith("2 sent")
    assert send_sms("2026-03-02 09:06:00.500").startswith("0 sent, 0 failed, 3 still due")
    assert send_sms("2026-03-02 09:06:01").startswith("2 sent")
    assert RecordedSms.objects.count() == 4


def test_it_fails_a_message_whose_template_has_an_empty_placeholder(make_contact, make_sequence):
    contact = make_contact(first_name="", mobile="+14155550123", country="US")
    make_sequence([{"kind": "sms", "day": 1, "sms_body": "Hi {{ contact.first_name }}"}], contacts=[contact])
    run_due("2026-03-02 09:05")

    send_sms("2026-03-02 09:06")

    message = SmsMessage.objects.get()
    assert message.status == SmsStatus.FAILED
    assert "contact.first_name" in message.last_error
    assert not RecordedSms.objects.exists()


def test_it_fails_a_message_left_sending_by_a_stopped_worker_without_resending(make_contact, make_sequence):
    make_sequence([{"kind": "sms", "day": 1}], contacts=[make_contact(mobile="+14155550123", country="US")])
    run_due("2026-03-02 09:05")
    SmsMessage.objects.update(
        status=SmsStatus.SENDING, claimed_by="gone", attempted_at=at("2026-03-02 09:06")
    )

    send_sms("2026-03-02 09:10")
    assert SmsMessage.objects.get().status == SmsStatus.SENDING  # within the lease: left alone
    send_sms("2026-03-02 09:30")

    message = SmsMessage.objects.get()
    assert (message.status, message.last_error.startswith("uncertain")) == (SmsStatus.FAILED, True)
    assert not RecordedSms.objects.exists()
