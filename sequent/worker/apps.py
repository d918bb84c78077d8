from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "sequent.worker"
    label = "worker"
    verbose_name = "Background worker"
