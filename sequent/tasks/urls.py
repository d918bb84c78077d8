"""URLs of the activities dashboard pages (tasks, call reminders, email reminders)."""

from django.urls import path

from sequent.tasks import views

app_name = "tasks"

urlpatterns = [
    path("tasks/", views.dashboard, name="dashboard"),
    path("tasks/new/", views.new_task, name="new"),
    path("tasks/bulk/", views.bulk, name="bulk"),
    path("tasks/<int:task_id>/", views.task_detail, name="task"),
    path("tasks/<int:task_id>/complete/", views.complete, name="complete"),
    path("tasks/<int:task_id>/snooze/", views.snooze, name="snooze"),
    path("tasks/<int:task_id>/skip/", views.skip, name="skip"),
    path("tasks/<int:task_id>/reassign/", views.reassign, name="reassign"),
    path("tasks/<int:task_id>/send/", views.send_reminder, name="send"),
]
