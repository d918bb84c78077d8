"""SMS fixtures: the Twilio stand-in wired to the workspace's settings, signed webhook
posts, and the engine's contact and sequence helpers."""

from __future__ import annotations

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from sequent.sequences.tests.conftest import make_contact, make_sequence  # noqa: F401
from sequent.sms.actions import do_save_sms_settings
from sequent.sms.tests.twilio_server import fake_twilio

BASE_URL = "https://sequent.example.com"
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "twilio-test-auth-token-0123456789"
FROM_NUMBER = "+14155550000"


@pytest.fixture
def twilio(settings, db):
    """The stand-in server, with the workspace set to Twilio and the SDK pointed at it."""
    settings.SEQUENT_BASE_URL = BASE_URL
    with fake_twilio() as server:
        settings.SEQUENT_TWILIO_API_BASE_URL = server.base_url
        do_save_sms_settings(
            {
                "provider": "twilio",
                "twilio_account_sid": ACCOUNT_SID,
                "twilio_auth_token": AUTH_TOKEN,
                "from_number": FROM_NUMBER,
                "per_second_limit": 10,
            }
        )
        yield server


@pytest.fixture
def webhook():
    """``webhook(path, params, token=AUTH_TOKEN)``: POST a form signed as Twilio signs it."""
    client = Client()

    def post(path: str, params: dict[str, str], token: str = AUTH_TOKEN):
        signature = RequestValidator(token).compute_signature(f"{BASE_URL}{path}", params)
        return client.post(path, params, HTTP_X_TWILIO_SIGNATURE=signature)

    return post
