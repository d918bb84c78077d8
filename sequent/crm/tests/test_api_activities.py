"""/api/v1/contacts/{id}/activities: logging activities updates the contact's last-contacted fields."""

import datetime as dt

import pytest

from sequent.crm import records
from sequent.crm.models import ActivityType
from sequent.lib import clock

T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def contact(rep):
    return records.do_create_contact(rep, {"first_name": "Dana"})


def test_it_logs_an_outgoing_call_as_the_last_contact(api, contact):
    clock.set_now(T0)
    response = api.post(
        f"contacts/{contact.pk}/activities", {"kind": "call_outgoing", "outcome": "Connected"}
    )
    assert response.status_code == 201
    assert response.json()["user"] == "alice@example.com"
    after = api.get(f"contacts/{contact.pk}").json()
    assert (after["last_contacted_mode"], after["last_activity_type"]) == ("outgoing_call", "Call")
    assert after["last_contacted_at"].startswith("2026-03-02T15:00:00")


def test_it_logs_a_custom_sales_activity_by_type_name(api, contact):
    ActivityType.objects.create(name="Lunch")
    response = api.post(
        f"contacts/{contact.pk}/activities", {"kind": "custom", "custom_type": "lunch", "subject": "Catch-up"}
    )
    assert response.json()["custom_type"] == "Lunch"
    after = api.get(f"contacts/{contact.pk}").json()
    assert (after["last_contacted_mode"], after["last_activity_type"]) == ("sales_activity", "Lunch")


def test_it_refuses_to_log_an_email_reply_by_hand(api, contact):
    response = api.post(f"contacts/{contact.pk}/activities", {"kind": "email_replied"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "kind"
    assert api.get(f"contacts/{contact.pk}").json()["last_contacted_mode"] == "not_contacted"


def test_it_lists_a_contacts_activities_newest_first(api, contact):
    for hour, kind in ((1, "note"), (3, "meeting"), (2, "chat")):
        api.post(
            f"contacts/{contact.pk}/activities",
            {"kind": kind, "occurred_at": (T0 + dt.timedelta(hours=hour)).isoformat()},
        )
    page = api.get(f"contacts/{contact.pk}/activities").json()
    assert [a["kind"] for a in page["items"]] == ["meeting", "chat", "note"]
    assert page["count"] == 3


def test_it_answers_404_for_the_activities_of_a_missing_contact(api):
    assert api.get("contacts/999/activities").status_code == 404
    assert api.post("contacts/999/activities", {"kind": "note"}).status_code == 404


def test_it_names_a_field_called_body_in_a_schema_error(api, contact):
    response = api.post(f"contacts/{contact.pk}/activities", {"kind": "note", "body": 5})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body"
