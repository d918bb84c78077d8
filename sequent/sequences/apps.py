from django.apps import AppConfig


class SequencesConfig(AppConfig):
    name = "sequent.sequences"
    label = "sequences"
    verbose_name = "Sales sequences"
