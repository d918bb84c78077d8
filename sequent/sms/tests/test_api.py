"""/api/v1/sms: provider settings, template preview with segments, the user's messages."""

from __future__ import annotations

from sequent.sms.models import SmsMessage


def test_it_lets_an_admin_configure_twilio_without_showing_the_token(admin_user, api_for):
    admin_api = api_for(admin_user)
    response = admin_api.put(
        "sms/settings",
        {
            "provider": "twilio",
            "twilio_account_sid": "AC" + "2" * 32,
            "twilio_auth_token": "secret-token",
            "from_number": "+1 415 555 0000",
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["from_number"] == "+14155550000"
    assert body["twilio_auth_token_set"] is True
    assert "secret-token" not in response.content.decode()
    # Saving again without the token keeps it.
    again = admin_api.put(
        "sms/settings",
        {"provider": "twilio", "twilio_account_sid": "AC" + "2" * 32, "from_number": "+14155550000"},
    )
    assert again.json()["twilio_auth_token_set"] is True


def test_it_refuses_twilio_without_a_sender(admin_user, api_for):
    response = api_for(admin_user).put(
        "sms/settings", {"provider": "twilio", "twilio_account_sid": "AC1", "twilio_auth_token": "t"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "from_number"


def test_it_hides_the_settings_from_a_rep(api):
    assert api.get("sms/settings").status_code == 404


def test_it_previews_a_template_with_its_segment_count(api, make_contact):
    contact = make_contact(first_name="Zoë")
    response = api.post("sms/preview", {"body": "Hi {{ contact.first_name }}", "contact_id": contact.pk})
    assert response.json() == {
        "text": "Hi Zoë",
        "error": None,
        "encoding": "UCS-2",
        "characters": 6,
        "segments": 1,
    }
    bad = api.post("sms/preview", {"body": "Hi {{ contct.first_name }}"}).json()
    assert "contct.first_name" in bad["error"]


def test_it_lists_only_the_users_own_messages(api, rep, other_rep, make_contact):
    contact = make_contact()
    mine = SmsMessage.objects.create(contact=contact, owner=rep, to_number="+14155550123", body="a")
    SmsMessage.objects.create(contact=contact, owner=other_rep, to_number="+14155550123", body="b")
    body = api.get("sms/messages").json()
    assert [item["id"] for item in body["items"]] == [mine.pk]
