"""Pages of the users app: log in, and the home page a user lands on."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sequent.crm.models import Account, Contact
from sequent.users.forms import LoginForm

HOME_CONTACTS = 10


class LoginView(auth_views.LoginView):
    """Django's login view with the email form; a logged-in user goes straight home."""

    template_name = "users/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The workspace at a glance: record counts and the user's own contacts."""
    my_contacts = Contact.objects.filter(owner_id=request.user.pk).select_related("account")
    return render(
        request,
        "users/home.html",
        {
            "contact_count": Contact.objects.count(),
            "account_count": Account.objects.count(),
            "my_contact_count": my_contacts.count(),
            "my_contacts": my_contacts.order_by("last_name", "first_name", "id")[:HOME_CONTACTS],
        },
    )
