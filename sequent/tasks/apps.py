from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "sequent.tasks"
    label = "tasks"
    verbose_name = "Tasks and reminders"
