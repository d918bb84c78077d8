import datetime as dt

import pytest

from sequent.crm.actions import do_record_activity
from sequent.crm.models import Activity, ActivityKind, ActivityType, Contact, LastContactedMode

T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def contact(db):
    return Contact.objects.create(first_name="Dana", email="dana@acme.test")


def reload(contact):
    return Contact.objects.get(pk=contact.pk)


def test_it_starts_as_not_yet_contacted(contact):
    assert contact.last_contacted_mode == LastContactedMode.NOT_CONTACTED
    assert contact.last_contacted_at is None


def test_it_follows_an_email_from_sent_to_opened_to_replied(contact):
    do_record_activity(contact, ActivityKind.EMAIL_SENT, occurred_at=T0)
    assert reload(contact).last_contacted_mode == LastContactedMode.NO_REPLY
    assert reload(contact).last_contacted_at == T0
    do_record_activity(contact, ActivityKind.EMAIL_OPENED, occurred_at=T0 + dt.timedelta(hours=1))
    assert reload(contact).last_contacted_mode == LastContactedMode.OPENED
    do_record_activity(contact, ActivityKind.EMAIL_REPLIED, occurred_at=T0 + dt.timedelta(hours=2))
    contact = reload(contact)
    assert contact.last_contacted_mode == LastContactedMode.REPLIED
    assert contact.last_contacted_at == T0 + dt.timedelta(hours=2)


def test_it_keeps_replied_when_an_old_email_is_opened_later(contact):
    do_record_activity(contact, ActivityKind.EMAIL_REPLIED, occurred_at=T0)
    do_record_activity(contact, ActivityKind.EMAIL_OPENED, occurred_at=T0 + dt.timedelta(days=1))
    assert reload(contact).last_contacted_mode == LastContactedMode.REPLIED


def test_it_only_moves_to_opened_on_the_first_open(contact):
    do_record_activity(contact, ActivityKind.EMAIL_SENT, occurred_at=T0)
    first = T0 + dt.timedelta(hours=1)
    do_record_activity(contact, ActivityKind.EMAIL_OPENED, occurred_at=first)
    do_record_activity(contact, ActivityKind.EMAIL_CLICKED, occurred_at=first + dt.timedelta(hours=1))
    assert reload(contact).last_contacted_at == first


@pytest.mark.parametrize(
    ("kind", "mode", "activity_type"),
    [
        (ActivityKind.CALL_OUTGOING, LastContactedMode.OUTGOING_CALL, "Call"),
        (ActivityKind.CALL_INCOMING, LastContactedMode.INCOMING_CALL, "Call"),
        (ActivityKind.CHAT, LastContactedMode.CHAT, "Chat"),
        (ActivityKind.MEETING, LastContactedMode.SALES_ACTIVITY, "Meeting"),
    ],
)
def test_it_sets_mode_and_type_for_logged_conversations(contact, kind, mode, activity_type):
    do_record_activity(contact, kind, occurred_at=T0)
    contact = reload(contact)
    assert contact.last_contacted_mode == mode
    assert contact.last_activity_type == activity_type
    assert contact.last_contacted_at == T0


def test_it_names_the_custom_activity_type(contact):
    lunch = ActivityType.objects.create(name="Lunch")
    do_record_activity(contact, ActivityKind.CUSTOM, custom_type=lunch, occurred_at=T0)
    contact = reload(contact)
    assert contact.last_contacted_mode == LastContactedMode.SALES_ACTIVITY
    assert contact.last_activity_type == "Lunch"


def test_it_refuses_a_custom_activity_without_its_type(contact):
    with pytest.raises(ValueError, match="custom_type"):
        do_record_activity(contact, ActivityKind.CUSTOM, occurred_at=T0)
    assert not Activity.objects.exists()


def test_it_does_not_rewind_fields_for_an_older_activity(contact):
    do_record_activity(contact, ActivityKind.CALL_OUTGOING, occurred_at=T0)
    do_record_activity(contact, ActivityKind.CHAT, occurred_at=T0 - dt.timedelta(days=3))
    contact = reload(contact)
    assert contact.last_contacted_mode == LastContactedMode.OUTGOING_CALL
    assert contact.last_contacted_at == T0
    assert Activity.objects.filter(contact=contact).count() == 2


def test_it_records_sms_and_tasks_as_activity_types_without_changing_mode(contact):
    do_record_activity(contact, ActivityKind.EMAIL_SENT, occurred_at=T0)
    do_record_activity(contact, ActivityKind.SMS_SENT, occurred_at=T0 + dt.timedelta(hours=1))
    contact = reload(contact)
    assert contact.last_contacted_mode == LastContactedMode.NO_REPLY
    assert contact.last_activity_type == "SMS"


def test_it_leaves_fields_alone_for_a_note(contact):
    do_record_activity(contact, ActivityKind.NOTE, occurred_at=T0, body="Met at the fair")
    contact = reload(contact)
    assert contact.last_contacted_mode == LastContactedMode.NOT_CONTACTED
    assert contact.last_contacted_at is None


def test_it_does_not_count_a_completed_task_as_contact(contact):
    do_record_activity(contact, ActivityKind.TASK, occurred_at=T0)
    contact = reload(contact)
    assert contact.last_activity_type == "Task"
    assert contact.last_contacted_at is None
