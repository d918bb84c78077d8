"""SMS endpoints under /api/v1/sms: the workspace's provider settings (Manage workspace),
a template preview with its segment count, and the user's own messages."""

import datetime as dt
from typing import Any, Literal

from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Field, Router, Schema

from sequent.api.pagination import paginated
from sequent.crm.models import Contact
from sequent.mail import templating
from sequent.mail.delivery import render_context
from sequent.sms import actions
from sequent.sms.models import SmsMessage, SmsSettings
from sequent.sms.providers import load_settings
from sequent.sms.segments import count_segments
from sequent.users import access

router = Router(tags=["sms"])


class SettingsOut(Schema):
    provider: str
    twilio_account_sid: str
    twilio_auth_token_set: bool
    from_number: str
    messaging_service_sid: str
    per_second_limit: int


class SettingsIn(Schema):
    provider: Literal["development", "twilio"] = "development"
    twilio_account_sid: str = ""
    twilio_auth_token: str = Field("", description="write-only; empty keeps the saved token")
    from_number: str = ""
    messaging_service_sid: str = ""
    per_second_limit: int = Field(1, ge=1, le=100)


class PreviewIn(Schema):
    body: str
    contact_id: int | None = None


class PreviewOut(Schema):
    text: str | None
    error: str | None
    encoding: str
    characters: int
    segments: int


class SmsOut(Schema):
    id: int
    contact_id: int
    to_number: str
    body: str
    status: str
    segments: int
    provider_message_id: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str


def _settings_out(config: SmsSettings) -> dict[str, Any]:
    return {
        "provider": config.provider,
        "twilio_account_sid": config.twilio_account_sid,
        "twilio_auth_token_set": bool(config.twilio_auth_token),
        "from_number": config.from_number,
        "messaging_service_sid": config.messaging_service_sid,
        "per_second_limit": config.per_second_limit,
    }


@router.get("/settings", response=SettingsOut)
def get_settings(request: HttpRequest) -> dict[str, Any]:
    """The workspace's SMS provider (the auth token is never shown)."""
    access.require_perm(request.user, access.MANAGE_WORKSPACE)
    return _settings_out(load_settings())


@router.put("/settings", response=SettingsOut)
def put_settings(request: HttpRequest, payload: SettingsIn) -> dict[str, Any]:
    """Choose the provider and its credentials (the auth token is encrypted at rest)."""
    access.require_perm(request.user, access.MANAGE_WORKSPACE)
    return _settings_out(actions.do_save_sms_settings(payload.model_dump()))


@router.post("/preview", response=PreviewOut)
def preview(request: HttpRequest, payload: PreviewIn) -> dict[str, Any]:
    """Render an SMS template (for a contact of the user's, when given) with its segment count."""
    text: str | None = payload.body
    error = None
    if payload.contact_id is not None:
        # Contacts are shared by the workspace, as in the CRM API.
        contact = get_object_or_404(Contact.objects.select_related("account"), pk=payload.contact_id)
        try:
            text = templating.render_text(
                payload.body, render_context(contact, request.user, None, None, None)
            )
        except templating.TemplateRenderError as exc:
            text, error = None, exc.message
    else:
        problems = templating.validate_template(payload.body)
        error = "; ".join(problems) or None
    counted = count_segments(text if text is not None else payload.body)
    return {
        "text": text,
        "error": error,
        "encoding": counted.encoding,
        "characters": counted.units,
        "segments": counted.segments,
    }


@router.get("/messages", response=list[SmsOut])
@paginated
def list_messages(request: HttpRequest, status: str | None = None, contact_id: int | None = None) -> Any:
    """The user's SMS, newest first."""
    qs = access.scope(SmsMessage.objects.all(), request.user)
    if status:
        qs = qs.filter(status=status)
    if contact_id is not None:
        qs = qs.filter(contact_id=contact_id)
    return qs.order_by("-created_at", "-pk")
