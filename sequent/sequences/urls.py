"""URLs of the sequence pages: list, summary, builder, performance and enrollments."""

from django.urls import path

from sequent.sequences import views, views_builder, views_performance

app_name = "sequences"

urlpatterns = [
    path("sequences/", views.sequence_list, name="list"),
    path("sequences/new/", views_builder.sequence_new, name="new"),
    path("sequences/audience-count/", views_builder.audience_count, name="audience_count_new"),
    path("sequences/condition-row/", views_builder.condition_row, name="condition_row"),
    path("sequences/<int:sequence_id>/", views.sequence_detail, name="detail"),
    path("sequences/<int:sequence_id>/edit/", views_builder.sequence_edit, name="edit"),
    path("sequences/<int:sequence_id>/audience-count/", views_builder.audience_count, name="audience_count"),
    path("sequences/<int:sequence_id>/steps/new/<str:kind>/", views_builder.step_new, name="step_new"),
    path("sequences/<int:sequence_id>/steps/<int:step_id>/", views_builder.step_edit, name="step_edit"),
    path(
        "sequences/<int:sequence_id>/steps/<int:step_id>/delete/",
        views_builder.step_delete,
        name="step_delete",
    ),
    path("sequences/<int:sequence_id>/steps/<int:step_id>/move/", views_builder.step_move, name="step_move"),
    *(
        path(f"sequences/<int:sequence_id>/{verb}/", views_builder.change_status, {"verb": verb}, name=verb)
        for verb in views_builder.STATUS_ACTIONS
    ),
    path("sequences/<int:sequence_id>/performance/", views_performance.performance, name="performance"),
    path("sequences/<int:sequence_id>/enrollments/", views_performance.enrollments, name="enrollments"),
    path(
        "sequences/<int:sequence_id>/enrollments/<int:enrollment_id>/",
        views_performance.enrollment,
        name="enrollment",
    ),
]
