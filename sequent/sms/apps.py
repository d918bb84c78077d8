from django.apps import AppConfig


class SmsConfig(AppConfig):
    name = "sequent.sms"
    label = "sms"
    verbose_name = "SMS"
