"""URLs of the mail app: tracking (/t/), unsubscribe (/u/) and the mail catcher's inbox."""

from django.urls import path

from sequent.mail import views

app_name = "mail"

urlpatterns = [
    path("t/o/<str:token>.gif", views.open_pixel, name="open"),
    path("t/c/<str:token>", views.click, name="click"),
    path("u/<str:token>", views.unsubscribe, name="unsubscribe"),
    path("mail-catcher/", views.catcher_inbox, name="catcher"),
    path("mail-catcher/<str:name>/", views.catcher_message, name="catcher_message"),
]
