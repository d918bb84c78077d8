"""Pages of the users app: log in, and the home page a user lands on."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sequent.crm.models import Account, Contact
from sequent.lib import clock
from sequent.sequences.models import Sequence, SequenceStatus
from sequent.tasks.models import Task, TaskStatus
from sequent.users import access, throttle
from sequent.users.forms import LoginForm

HOME_CONTACTS = 10
HOME_TASKS = 8


class LoginView(auth_views.LoginView):
    """Django's login view with the email form; a logged-in user goes straight home.

    Attempts are throttled per email and per client IP (``users.throttle``): while
    refused, the password is not even checked, and the page answers 429.
    """

    template_name = "users/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        email = LoginForm.normalize_email(request.POST.get("username", ""))
        wait = throttle.retry_after(email, throttle.client_ip(request))
        if wait is not None:
            # An unbound form: binding it would check the password.
            form = self.get_form_class()(request, initial={"username": email})
            context = self.get_context_data(form=form, refusal=throttle.refusal_message(wait))
            response = self.render_to_response(context)
            response.status_code = 429
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        throttle.clear_failures(form.cleaned_data["username"], throttle.client_ip(self.request))
        return super().form_valid(form)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        if form.has_error(NON_FIELD_ERRORS, "invalid_login"):
            throttle.record_failure(form.cleaned_data.get("username", ""), throttle.client_ip(self.request))
        return super().form_invalid(form)


def _end_of_today(user: Any) -> dt.datetime:
    # "Today" is the user's own day, so a rep in Sydney sees Sydney's tasks.
    try:
        zone = zoneinfo.ZoneInfo(user.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    local = clock.now().astimezone(zone)
    return dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tzinfo=zone)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The workspace at a glance: counts, the user's tasks due today, their contacts,
    and for a newcomer with nothing yet, what to do first."""
    user = request.user
    my_contacts = access.scope(Contact.objects.all(), user).select_related("account")
    open_tasks = access.scope(Task.objects.filter(status=TaskStatus.OPEN), user)
    due = open_tasks.filter(due_at__lt=_end_of_today(user))
    counts = {
        "contacts": Contact.objects.count(),
        "accounts": Account.objects.count(),
        "my_contacts": my_contacts.count(),
        "due_tasks": due.count(),
    }
    if access.has_perm(user, access.VIEW_SEQUENCES):
        counts["active_sequences"] = access.scope(
            Sequence.objects.filter(status=SequenceStatus.ACTIVE), user
        ).count()
    return render(
        request,
        "users/home.html",
        {
            "counts": counts,
            "due_tasks": due.select_related("contact").order_by("due_at", "pk")[:HOME_TASKS],
            "my_contacts": my_contacts.order_by("last_name", "first_name", "id")[:HOME_CONTACTS],
            "newcomer": counts["my_contacts"] == 0 and counts["contacts"] == 0,
        },
    )
