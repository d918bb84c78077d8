"""URLs of the CRM pages: contacts, accounts, their saved views and exports, and imports."""

from django.urls import path

from sequent.crm import views_accounts, views_contacts, views_imports, views_lists

app_name = "crm"

urlpatterns = [
    path("contacts/", views_contacts.contact_list, name="contacts"),
    path("contacts/new/", views_contacts.contact_new, name="contact_new"),
    path("contacts/bulk/", views_contacts.contact_bulk, name="contact_bulk"),
    path("contacts/<int:contact_id>/", views_contacts.contact_detail, name="contact"),
    path("contacts/<int:contact_id>/edit/", views_contacts.contact_edit, name="contact_edit"),
    path("contacts/<int:contact_id>/delete/", views_contacts.contact_delete, name="contact_delete"),
    path(
        "contacts/<int:contact_id>/add-to-sequence/",
        views_contacts.contact_add_to_sequence,
        name="contact_add_to_sequence",
    ),
    path("accounts/", views_accounts.account_list, name="accounts"),
    path("accounts/new/", views_accounts.account_new, name="account_new"),
    path("accounts/<int:account_id>/", views_accounts.account_detail, name="account"),
    path("accounts/<int:account_id>/edit/", views_accounts.account_edit, name="account_edit"),
    path("accounts/<int:account_id>/delete/", views_accounts.account_delete, name="account_delete"),
    # What contact and account lists share, by record type ("contact" or "account").
    path("lists/<str:record_type>/condition/", views_lists.condition_row, name="condition_row"),
    path("lists/<str:record_type>/export.csv", views_lists.export_csv, name="export"),
    path("lists/<str:record_type>/views/", views_lists.view_save, name="view_save"),
    path("lists/<str:record_type>/views/<int:view_id>/delete/", views_lists.view_delete, name="view_delete"),
    path("imports/", views_imports.import_list, name="imports"),
    path("imports/new/", views_imports.import_new, name="import_new"),
    path("imports/new/<str:token>/", views_imports.import_map, name="import_map"),
    path("imports/<int:job_id>/", views_imports.import_detail, name="import"),
    path("imports/<int:job_id>/progress/", views_imports.import_progress, name="import_progress"),
    path("imports/<int:job_id>/bad-rows.csv", views_imports.import_errors, name="import_errors"),
]
