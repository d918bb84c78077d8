"""URLs of the activities dashboard pages (tasks, call reminders, email reminders)."""

from django.urls import path  # noqa: F401

app_name = "tasks"
urlpatterns: list = []
