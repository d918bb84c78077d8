from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "sequent.mail"
    label = "mail"
    verbose_name = "Email"
