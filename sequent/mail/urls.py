"""URLs of the mail app: tracking (/t/), unsubscribe (/u/), the mail catcher's inbox, and
the rep's pages for email templates and mailboxes."""

from django.urls import path

from sequent.mail import pages, views

app_name = "mail"

urlpatterns = [
    path("t/o/<str:token>.gif", views.open_pixel, name="open"),
    path("t/c/<str:token>", views.click, name="click"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("mail-catcher/", views.catcher_inbox, name="catcher"),
    path("mail-catcher/<str:name>/", views.catcher_message, name="catcher_message"),
    path("templates/", pages.template_list, name="templates"),
    path("templates/new/", pages.template_new, name="template_new"),
    path("templates/preview/", pages.template_preview, name="template_preview"),
    path("templates/<int:template_id>/", pages.template_detail, name="template"),
    path("templates/<int:template_id>/delete/", pages.template_delete, name="template_delete"),
    path("mailboxes/", pages.mailbox_list, name="mailboxes"),
    path("mailboxes/new/", pages.mailbox_new, name="mailbox_new"),
    path("mailboxes/<int:mailbox_id>/", pages.mailbox_detail, name="mailbox"),
    path("mailboxes/<int:mailbox_id>/test/", pages.mailbox_test, name="mailbox_test"),
    path("mailboxes/<int:mailbox_id>/default/", pages.mailbox_default, name="mailbox_default"),
]
