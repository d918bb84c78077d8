"""Provider webhooks (signature-checked, no login) and the SMS texts page."""

from django.urls import path

from sequent.sms import views, webhooks

app_name = "sms"

urlpatterns = [
    path("webhooks/twilio/status/", webhooks.status_callback, name="sms-twilio-status"),
    path("webhooks/twilio/inbound/", webhooks.inbound, name="sms-twilio-inbound"),
    path("sms/templates/", views.templates, name="templates"),
    path("sms/templates/preview/", views.preview, name="preview"),
    path("sms/templates/steps/<int:step_id>/", views.save_step, name="save_step"),
]
