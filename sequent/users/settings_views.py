"""Settings pages under /settings/: users, roles, custom fields, activity types, SMS provider.

Users and roles need "Manage users and roles"; the rest needs "Manage workspace
settings". Without the permission a page answers 404, like every hidden feature.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from sequent.crm import records
from sequent.crm.models import RECORD_CONTACT, Account, ActivityType, Contact, CustomField, CustomFieldType
from sequent.crm.views import Column, build_listing
from sequent.sms import actions as sms_actions
from sequent.sms.providers import load_settings
from sequent.users import access, actions
from sequent.users.models import ROLES, User, Workspace
from sequent.users.settings_forms import (
    ActivityTypeForm,
    CustomFieldCreateForm,
    CustomFieldEditForm,
    SmsSettingsForm,
    UserCreateForm,
    UserEditForm,
    add_action_errors,
    time_zone_names,
)

View = Callable[..., HttpResponse]

# The settings sections, in menu order: (label, URL name, permission).
SECTIONS = (
    ("Users", "users:users", access.MANAGE_USERS),
    ("Roles", "users:roles", access.MANAGE_USERS),
    ("Custom fields", "users:custom_fields", access.MANAGE_WORKSPACE),
    ("Activity types", "users:activity_types", access.MANAGE_WORKSPACE),
    ("SMS provider", "users:sms", access.MANAGE_WORKSPACE),
)


def needs(codename: str) -> Callable[[View], View]:
    """Log-in required, then 404 unless the user holds *codename*."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            access.require_perm(request.user, codename)
            return view(request, *args, **kwargs)

        return login_required(wrapper)

    return decorate


def _page(request: HttpRequest, template: str, section: str, **context: Any) -> HttpResponse:
    tabs = [(label, name) for label, name, perm in SECTIONS if access.has_perm(request.user, perm)]
    return render(request, template, {"tabs": tabs, "section": section, **context})


@login_required
def settings_index(request: HttpRequest) -> HttpResponse:
    """The sections this user may manage; 404 for a user who may manage none."""
    if not any(access.has_perm(request.user, perm) for _, _, perm in SECTIONS):
        raise Http404("not found")
    counts = {
        "users": User.objects.filter(is_active=True).count(),
        "custom_fields": CustomField.objects.count(),
        "activity_types": ActivityType.objects.filter(is_active=True).count(),
        "sms_provider": load_settings().get_provider_display(),
    }
    return _page(request, "users/settings/index.html", "", counts=counts)


# --- users --------------------------------------------------------------------------------

USER_COLUMNS = (
    Column("Name", "name"),
    Column("Email", "email"),
    Column("Role"),
    Column("Status", "active"),
    Column("Daily email limit", "limit"),
    Column("Time zone", "tz"),
)
USER_ORDERINGS = {
    "name": ["first_name", "last_name"],
    "email": ["email"],
    "active": ["is_active"],
    "limit": ["daily_email_limit"],
    "tz": ["time_zone"],
}


@needs(access.MANAGE_USERS)
def users(request: HttpRequest) -> HttpResponse:
    """Every user with role, status, daily email limit and time zone; searchable and sortable."""
    queryset = User.objects.prefetch_related(Prefetch("groups", queryset=Group.objects.only("name")))
    listing = build_listing(
        request,
        queryset,
        columns=USER_COLUMNS,
        orderings=USER_ORDERINGS,
        default_sort="email",
        search_fields=("email", "first_name", "last_name"),
    )
    return _page(request, "users/settings/users.html", "users:users", listing=listing)


@needs(access.MANAGE_USERS)
def user_new(request: HttpRequest) -> HttpResponse:
    """Create a user with a role and a first password."""
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user, _ = actions.do_create_user(
                data["email"], data["role"], data["password"], data["first_name"], data["last_name"]
            )
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"{user.email} can now log in as {data['role']}.")
            return redirect("users:user", user_id=user.pk)
    return _page(request, "users/settings/user_new.html", "users:users", form=form)


@needs(access.MANAGE_USERS)
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    """Role, active or not, daily email limit, time zone and name of one user."""
    member = get_object_or_404(User.objects.prefetch_related("groups"), pk=user_id)
    form = UserEditForm.for_user(member, request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_user(member, **form.cleaned_data)
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Saved {member.email}.")
            return redirect("users:users")
    return _page(
        request, "users/settings/user_edit.html", "users:users", form=form, member=member,
        time_zones=time_zone_names(),
    )


# --- roles --------------------------------------------------------------------------------


def _workspace_permissions() -> list[Permission]:
    order = [codename for codename, _ in Workspace._meta.permissions]
    found = {p.codename: p for p in Permission.objects.filter(codename__in=order, content_type__app_label="users")}
    return [found[c] for c in order if c in found]


@needs(access.MANAGE_USERS)
def roles(request: HttpRequest) -> HttpResponse:
    """Roles as columns, permissions as rows, a checkbox where a role grants a permission."""
    groups = sorted(
        Group.objects.filter(name__in=ROLES).annotate(members=Count("user")).prefetch_related("permissions"),
        key=lambda g: ROLES.index(g.name),
    )
    error = ""
    if request.method == "POST":
        grants = {g.name: request.POST.getlist(f"role-{g.pk}") for g in groups}
        try:
            actions.do_set_role_permissions(grants)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, "Saved what each role may do.")
            return redirect("users:roles")
    perms = _workspace_permissions()
    granted = {(g.pk, p.codename) for g in groups for p in g.permissions.all()}
    if error:  # show what the admin ticked, not what is saved
        granted = {(g.pk, c) for g in groups for c in request.POST.getlist(f"role-{g.pk}")}
    rows = [(p, [(g, (g.pk, p.codename) in granted) for g in groups]) for p in perms]
    return _page(request, "users/settings/roles.html", "users:roles", groups=groups, rows=rows, error=error)


# --- custom fields ------------------------------------------------------------------------


@needs(access.MANAGE_WORKSPACE)
def custom_fields(request: HttpRequest) -> HttpResponse:
    """The custom fields of contacts and accounts, and the form that adds one."""
    form = CustomFieldCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            field = records.do_create_custom_field(
                request.user,
                record_type=data["record_type"],
                label=data["label"],
                field_type=data["field_type"],
                key=data["key"],
                choices=form.choice_list(),
            )
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Added the {field.get_record_type_display().lower()} field {field.label}.")
            return redirect("users:custom_fields")
    fields = CustomField.objects.order_by("record_type", "label")
    return _page(request, "users/settings/custom_fields.html", "users:custom_fields", form=form, fields=fields)


def _records_with_value(field: CustomField) -> int:
    model: type[Contact] | type[Account] = Contact if field.record_type == RECORD_CONTACT else Account
    return model.objects.filter(custom__has_key=field.key).count()


@needs(access.MANAGE_WORKSPACE)
def custom_field_edit(request: HttpRequest, field_id: int) -> HttpResponse:
    """Rename a custom field or change its choices; its key and type are fixed."""
    field = get_object_or_404(CustomField, pk=field_id)
    is_choice = field.field_type == CustomFieldType.CHOICE
    initial = {"label": field.label, "choices": "\n".join(field.choices)}
    form = CustomFieldEditForm(request.POST or None, initial=initial)
    if not is_choice:
        del form.fields["choices"]
    if request.method == "POST" and form.is_valid():
        try:
            records.do_update_custom_field(
                request.user, field, label=form.cleaned_data["label"],
                choices=form.choice_list() if is_choice else None,
            )
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Saved the field {field.label}.")
            return redirect("users:custom_fields")
    return _page(
        request, "users/settings/custom_field_edit.html", "users:custom_fields",
        form=form, field=field, in_use=_records_with_value(field),
    )


@require_POST
@needs(access.MANAGE_WORKSPACE)
def custom_field_delete(request: HttpRequest, field_id: int) -> HttpResponse:
    """Delete a custom field and erase its values from every record."""
    field = get_object_or_404(CustomField, pk=field_id)
    records.do_delete_custom_field(request.user, field)
    messages.success(request, f"Deleted the field {field.label} and its values.")
    return redirect("users:custom_fields")


# --- activity types -----------------------------------------------------------------------


def _activity_types() -> Any:
    return ActivityType.objects.annotate(uses=Count("activity")).order_by("-is_active", "name")


@needs(access.MANAGE_WORKSPACE)
def activity_types(request: HttpRequest) -> HttpResponse:
    """Custom sales activity types reps can log, and the form that adds one."""
    form = ActivityTypeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = records.do_create_activity_type(request.user, form.cleaned_data["name"])
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Reps can now log {created.name}.")
            return redirect("users:activity_types")
    return _page(
        request, "users/settings/activity_types.html", "users:activity_types",
        form=form, types=_activity_types(), editing=None,
    )


@needs(access.MANAGE_WORKSPACE)
def activity_type_edit(request: HttpRequest, type_id: int) -> HttpResponse:
    """Rename a custom activity type, or retire it / bring it back (``?active=0|1`` by POST)."""
    activity_type = get_object_or_404(ActivityType, pk=type_id)
    if request.method == "POST" and "active" in request.POST:
        active = request.POST["active"] == "1"
        records.do_update_activity_type(request.user, activity_type, is_active=active)
        messages.success(request, f"{activity_type.name} is {'back' if active else 'retired'}.")
        return redirect("users:activity_types")
    form = ActivityTypeForm(request.POST or None, initial={"name": activity_type.name})
    if request.method == "POST" and form.is_valid():
        try:
            records.do_update_activity_type(request.user, activity_type, name=form.cleaned_data["name"])
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Renamed to {activity_type.name}.")
            return redirect("users:activity_types")
    return _page(
        request, "users/settings/activity_type_edit.html", "users:activity_types",
        form=form, activity_type=activity_type,
    )


@require_POST
@needs(access.MANAGE_WORKSPACE)
def activity_type_delete(request: HttpRequest, type_id: int) -> HttpResponse:
    """Delete an unused activity type; a used one can only be retired."""
    activity_type = get_object_or_404(ActivityType, pk=type_id)
    try:
        records.do_delete_activity_type(request.user, activity_type)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages).capitalize())
    else:
        messages.success(request, f"Deleted {activity_type.name}.")
    return redirect("users:activity_types")


# --- SMS provider ---------------------------------------------------------------------------


@needs(access.MANAGE_WORKSPACE)
def sms(request: HttpRequest) -> HttpResponse:
    """The workspace's SMS provider: development (records, sends nothing) or Twilio.

    The auth token is never sent back to the browser; the page says whether one is saved,
    and an empty box keeps it.
    """
    config = load_settings()
    initial = {
        "provider": config.provider,
        "twilio_account_sid": config.twilio_account_sid,
        "from_number": config.from_number,
        "messaging_service_sid": config.messaging_service_sid,
        "per_second_limit": config.per_second_limit,
    }
    form = SmsSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            sms_actions.do_save_sms_settings(dict(form.cleaned_data))
        except ValidationError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Saved the SMS provider settings.")
            return redirect("users:sms")
    return _page(
        request, "users/settings/sms.html", "users:sms", form=form, token_saved=bool(config.twilio_auth_token),
    )
