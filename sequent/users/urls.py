"""URLs of the settings pages: users, roles, custom fields, activity types, SMS provider."""

from django.urls import path  # noqa: F401

app_name = "users"
urlpatterns: list = []
