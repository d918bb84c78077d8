"""URLs of the settings pages: users, roles, custom fields, activity types, SMS provider."""

from django.urls import path

from sequent.users import settings_views as views

app_name = "users"
urlpatterns = [
    path("", views.settings_index, name="settings"),
    path("users/", views.users, name="users"),
    path("users/new/", views.user_new, name="user_new"),
    path("users/<int:user_id>/", views.user_edit, name="user"),
    path("roles/", views.roles, name="roles"),
    path("custom-fields/", views.custom_fields, name="custom_fields"),
    path("custom-fields/<int:field_id>/", views.custom_field_edit, name="custom_field"),
    path("custom-fields/<int:field_id>/delete/", views.custom_field_delete, name="custom_field_delete"),
    path("activity-types/", views.activity_types, name="activity_types"),
    path("activity-types/<int:type_id>/", views.activity_type_edit, name="activity_type"),
    path("activity-types/<int:type_id>/delete/", views.activity_type_delete, name="activity_type_delete"),
    path("sms/", views.sms, name="sms"),
]
