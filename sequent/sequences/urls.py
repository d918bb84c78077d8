"""URLs of the sequence pages (read-only for now)."""

from django.urls import path

from sequent.sequences import views

app_name = "sequences"

urlpatterns = [
    path("sequences/", views.sequence_list, name="list"),
    path("sequences/<int:sequence_id>/", views.sequence_detail, name="detail"),
]
