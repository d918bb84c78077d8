"""Provider webhooks (signature-checked, no login)."""

from django.urls import path

from sequent.sms import webhooks

urlpatterns = [
    path("webhooks/twilio/status/", webhooks.status_callback, name="sms-twilio-status"),
    path("webhooks/twilio/inbound/", webhooks.inbound, name="sms-twilio-inbound"),
]
