"""SMS providers behind one interface: the development provider, which records each
message in the database and sends nothing (the default), and Twilio through its
official SDK. ``provider_for(settings)`` picks the workspace's one."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings as django_settings
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from sequent.sms.models import RecordedSms, SmsProviderKind, SmsSettings


@dataclass(frozen=True)
class SendResult:
    """What the provider answered for an accepted message: its id and first status."""

    sid: str
    status: str


class SmsSendError(Exception):
    """A message the provider did not accept; ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class SmsProvider(Protocol):
    """The interface of an SMS provider."""

    def send(self, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Hand one message to the provider; raise SmsSendError when it is refused."""
        ...


class DevelopmentProvider:
    """Records each message as a ``RecordedSms`` row, shown in the app; nothing leaves."""

    def __init__(self, from_number: str = "") -> None:
        self.from_number = from_number

    def send(self, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Record the message and answer as if it were delivered."""
        sid = f"DV{uuid.uuid4().hex}"
        RecordedSms.objects.create(sid=sid, to_number=to, from_number=self.from_number, body=body)
        return SendResult(sid=sid, status="delivered")


class TwilioProvider:
    """Twilio's Messages API through the official SDK.

    ``SEQUENT_TWILIO_API_BASE_URL`` (unset in production) points the SDK at another
    host, e.g. a local stand-in during tests.
    """

    def __init__(
        self, account_sid: str, auth_token: str, from_number: str = "", messaging_service_sid: str = ""
    ):
        if not account_sid or not auth_token:
            raise SmsSendError(
                "Twilio is selected but its account SID or auth token is missing", permanent=False
            )
        if not from_number and not messaging_service_sid:
            raise SmsSendError("Twilio needs a from number or a messaging service SID", permanent=False)
        self.client = Client(account_sid, auth_token)
        base_url = getattr(django_settings, "SEQUENT_TWILIO_API_BASE_URL", "")
        if base_url:
            self.client.api.base_url = base_url
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid

    def send(self, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Create the message; 4xx answers (bad number, unsubscribed recipient ...) are
        permanent, 429, 5xx and connection failures are temporary."""
        kwargs: dict[str, str] = {"to": to, "body": body}
        if self.messaging_service_sid:
            kwargs["messaging_service_sid"] = self.messaging_service_sid
        else:
            kwargs["from_"] = self.from_number
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            permanent = 400 <= exc.status < 500 and exc.status != 429
            code = f" (error {exc.code})" if exc.code else ""
            raise SmsSendError(f"Twilio refused the message: {exc.msg}{code}", permanent=permanent) from exc
        except (TwilioException, OSError) as exc:
            raise SmsSendError(f"Twilio could not be reached: {exc}", permanent=False) from exc
        return SendResult(sid=str(message.sid), status=str(message.status or "queued"))


def load_settings() -> SmsSettings:
    """The workspace's SMS settings (the development provider when none were saved)."""
    return SmsSettings.objects.filter(pk=1).first() or SmsSettings(pk=1)


def provider_for(config: SmsSettings) -> SmsProvider:
    """The provider *config* selects."""
    if config.provider == SmsProviderKind.TWILIO:
        return TwilioProvider(
            config.twilio_account_sid,
            str(config.twilio_auth_token or ""),
            config.from_number,
            config.messaging_service_sid,
        )
    return DevelopmentProvider(config.from_number)
