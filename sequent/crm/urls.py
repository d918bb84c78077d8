"""URLs of the CRM pages: contacts, accounts and imports (read-only lists and details)."""

from django.urls import path

from sequent.crm import views

app_name = "crm"

urlpatterns = [
    path("contacts/", views.contact_list, name="contacts"),
    path("contacts/<int:contact_id>/", views.contact_detail, name="contact"),
    path("accounts/", views.account_list, name="accounts"),
    path("accounts/<int:account_id>/", views.account_detail, name="account"),
    path("imports/", views.import_list, name="imports"),
    path("imports/<int:job_id>/", views.import_detail, name="import"),
]
