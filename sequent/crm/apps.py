from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "sequent.crm"
    label = "crm"
    verbose_name = "CRM"
