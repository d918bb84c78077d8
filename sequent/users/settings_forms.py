"""Forms of the settings pages. They parse and show errors; the actions validate and save."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from functools import cache
from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from sequent.crm.models import RECORD_TYPES, CustomFieldType
from sequent.sms.models import SmsProviderKind
from sequent.users.models import ROLES, User

ROLE_CHOICES = [(role, role) for role in ROLES]


@cache
def time_zone_names() -> list[str]:
    """Every IANA time zone name, sorted, for the time zone picker."""
    return sorted(zoneinfo.available_timezones())


def add_action_errors(form: forms.Form, exc: ValidationError) -> None:
    """Put an action's ``{field: reason}`` errors next to the matching fields; the rest on top."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for name, errors in exc.message_dict.items():
        form.add_error(name if name in form.fields else None, errors)


class TimeZoneInput(forms.TextInput):
    """A text box with the IANA names as suggestions (a <datalist> the template renders)."""

    def __init__(self) -> None:
        super().__init__(attrs={"list": "time-zones", "autocomplete": "off", "spellcheck": "false"})


class UserCreateForm(forms.Form):
    email = forms.EmailField(max_length=254)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=ROLE_CHOICES, initial="Sales Rep")
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Give it to the new user; they can change it with sequent changepassword.",
    )

    def clean_email(self) -> str:
        return self.cleaned_data["email"].strip().lower()

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


class UserEditForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=ROLE_CHOICES)
    is_active = forms.BooleanField(
        required=False, label="Active", help_text="An inactive user cannot log in; their records stay."
    )
    daily_email_limit = forms.IntegerField(
        min_value=0, label="Daily email limit", help_text="Sequence emails this user may send per day."
    )
    time_zone = forms.CharField(max_length=64, widget=TimeZoneInput())

    @classmethod
    def for_user(cls, user: User, data: Mapping[str, Any] | None = None) -> UserEditForm:
        role = next((g.name for g in user.groups.all() if g.name in ROLES), "")
        initial = {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "role": role,
            "is_active": user.is_active,
            "daily_email_limit": user.daily_email_limit,
            "time_zone": user.time_zone,
        }
        return cls(data, initial=initial)


class CustomFieldCreateForm(forms.Form):
    record_type = forms.ChoiceField(choices=RECORD_TYPES, label="Record type")
    label = forms.CharField(max_length=100)
    field_type = forms.ChoiceField(choices=CustomFieldType.choices, label="Type")
    key = forms.CharField(
        max_length=64,
        required=False,
        help_text="Used in imports, conditions and the API. Left empty, it is made from the label. It never changes.",
    )
    choices = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Choice fields only: one choice per line.",
    )

    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("choices", "").splitlines() if line.strip()]


class CustomFieldEditForm(forms.Form):
    label = forms.CharField(max_length=100)
    choices = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="One choice per line. Values already stored are kept.",
    )

    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("choices", "").splitlines() if line.strip()]


class ActivityTypeForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="For example Lunch, Coffee or InMail.")


class SmsSettingsForm(forms.Form):
    provider = forms.ChoiceField(choices=SmsProviderKind.choices, widget=forms.RadioSelect)
    twilio_account_sid = forms.CharField(max_length=64, required=False, label="Twilio account SID")
    # Never rendered with its value: the template says whether one is saved.
    twilio_auth_token = forms.CharField(
        max_length=256,
        required=False,
        label="Twilio auth token",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )
    from_number = forms.CharField(max_length=32, required=False, label="From number", help_text="E.164, e.g. +14155550100.")
    messaging_service_sid = forms.CharField(
        max_length=64, required=False, label="Messaging service SID", help_text="Instead of a from number."
    )
    per_second_limit = forms.IntegerField(
        min_value=1, max_value=1000, label="Messages per second", help_text="Twilio queues beyond about 1 per second per long code."
    )
