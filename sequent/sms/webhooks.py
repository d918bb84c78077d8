"""Twilio's webhooks: delivery status callbacks and inbound messages.

Each request must carry a valid ``X-Twilio-Signature`` for the workspace's auth token,
computed over the public URL (``SEQUENT_BASE_URL`` + path) and the posted form; anything
else is refused with 403 before it is read. Processing is idempotent by message id.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from sequent.mail import tracking
from sequent.sms import actions
from sequent.sms.models import SmsProviderKind
from sequent.sms.providers import load_settings

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def signature_is_valid(request: HttpRequest) -> bool:
    """Whether *request* was signed by Twilio with the workspace's auth token."""
    config = load_settings()
    token = str(config.twilio_auth_token or "")
    if config.provider != SmsProviderKind.TWILIO or not token:
        return False
    url = f"{tracking.base_url()}{request.get_full_path()}"
    signature = request.headers.get("X-Twilio-Signature", "")
    return bool(RequestValidator(token).validate(url, request.POST.dict(), signature))


@csrf_exempt
@require_POST
def status_callback(request: HttpRequest) -> HttpResponse:
    """A delivery status for a message we sent (MessageSid, MessageStatus, ErrorCode)."""
    if not signature_is_valid(request):
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    sid = request.POST.get("MessageSid", "")
    status = request.POST.get("MessageStatus", "") or request.POST.get("SmsStatus", "")
    if not sid or not status:
        return HttpResponse(
            "MessageSid and MessageStatus are required", status=400, content_type="text/plain"
        )
    actions.do_apply_status(
        sid, status, request.POST.get("ErrorCode", ""), request.POST.get("ErrorMessage", "")
    )
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def inbound(request: HttpRequest) -> HttpResponse:
    """A message a contact sent to our number (MessageSid, From, To, Body); STOP opts out."""
    if not signature_is_valid(request):
        return HttpResponse("invalid signature", status=403, content_type="text/plain")
    sid = request.POST.get("MessageSid", "")
    sender = request.POST.get("From", "")
    if not sid or not sender:
        return HttpResponse("MessageSid and From are required", status=400, content_type="text/plain")
    actions.do_record_inbound(sid, sender, request.POST.get("To", ""), request.POST.get("Body", ""))
    # An empty TwiML answer: Twilio itself replies to STOP / START on the carrier's behalf.
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")
