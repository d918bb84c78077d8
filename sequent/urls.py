"""URL map: login, logout and home, the API under /api/v1/, then each app's pages."""

from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from sequent.api.root import api, register_routers
from sequent.api.root import unknown_path as api_unknown_path
from sequent.users import views as user_views

register_routers()

urlpatterns = [
    path("login/", user_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", user_views.home, name="home"),
    path("api/v1/", api.urls),
    re_path(r"^api/(?P<rest>.*)$", api_unknown_path),  # JSON 404, not the HTML page
    path("", include("sequent.crm.urls")),
    path("", include("sequent.sequences.urls")),
    path("", include("sequent.mail.urls")),
    path("", include("sequent.sms.urls")),
    path("", include("sequent.tasks.urls")),
    path("settings/", include("sequent.users.urls")),
]
