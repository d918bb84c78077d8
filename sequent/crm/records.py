"""Actions on CRM records: contacts, accounts, custom fields, activity types, logged activities.

Every action validates its whole input first and raises one
``django.core.exceptions.ValidationError({field: reason, ...})`` naming every bad
field (``custom.<key>`` for custom fields), then writes in one transaction.
Permission refusals raise ``PermissionDenied`` with the reason: contacts and
accounts are shared by the workspace, so a user who may not change one can
still see it and deserves to know why.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import phonenumbers
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import DomainNameValidator
from django.db import models, transaction
from django.db.models import F, Func, Q
from django.utils.text import slugify

from sequent.crm import fields
from sequent.crm.actions import do_record_activity
from sequent.crm.models import (
    RECORD_ACCOUNT,
    RECORD_CONTACT,
    Account,
    Activity,
    ActivityKind,
    ActivityType,
    Contact,
    CustomField,
    CustomFieldType,
    EmailStatus,
    Tag,
)
from sequent.lib import clock
from sequent.users import access

R = TypeVar("R", Contact, Account)

CONTACT_TEXT_FIELDS = ("first_name", "last_name", "job_title")
CONTACT_WRITABLE = frozenset(
    {
        *CONTACT_TEXT_FIELDS,
        "email",
        "mobile",
        "time_zone",
        "country",
        "account_id",
        "account_name",
        "tags",
        "custom",
        "email_opt_out",
        "sms_opt_out",
        "owner",
    }
)
ACCOUNT_WRITABLE = frozenset({"name", "domain", "industry", "custom", "owner"})

# Email and SMS activities are recorded by the engine from what really happened;
# a rep logging one by hand would fake opens, replies or sends.
SYSTEM_ACTIVITY_KINDS = frozenset(kind for kind in ActivityKind.values if kind.startswith(("email_", "sms_")))
MANUAL_ACTIVITY_KINDS = tuple(kind for kind in ActivityKind.values if kind not in SYSTEM_ACTIVITY_KINDS)
# The activity types the system names itself (crm.actions); a custom type may not reuse them.
BUILT_IN_ACTIVITY_TYPES = frozenset({"call", "phone", "chat", "task", "sms", "meeting"})
# A logged activity may carry a clock a little ahead of ours, not a date in the future.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
CUSTOM_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_TAGS = 50
MAX_CHOICES = 200


# --- permission ---------------------------------------------------------------------------


def ensure_can_delete(user: Any, record: Contact | Account) -> None:
    """Raise PermissionDenied unless *user* owns *record* or manages the workspace."""
    if access.has_perm(user, access.MANAGE_WORKSPACE):
        return
    if record.owner_id is not None and record.owner_id == getattr(user, "pk", None):
        return
    noun = "contact" if isinstance(record, Contact) else "account"
    raise PermissionDenied(
        f"only the {noun}'s owner or a user with the Manage workspace permission may delete it"
    )


def ensure_can_manage_workspace(user: Any, what: str) -> None:
    """Raise PermissionDenied unless *user* holds the Manage workspace permission."""
    if not access.has_perm(user, access.MANAGE_WORKSPACE):
        raise PermissionDenied(f"managing {what} needs the Manage workspace permission")


# --- shared cleaning ----------------------------------------------------------------------


def _unknown_keys(data: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, str]:
    return {key: "unknown field" for key in data if key not in allowed}


def _clean_text(model: type[models.Model], name: str, value: Any, errors: dict[str, str]) -> str:
    """*value* stripped, or '' for None; an error when it is not text or too long."""
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[name] = "must be text"
        return ""
    value = value.strip()
    max_length = model._meta.get_field(name).max_length  # type: ignore[union-attr]
    if max_length and len(value) > max_length:
        errors[name] = f"at most {max_length} characters"
    return value


def _raw_text(name: str, value: Any, errors: dict[str, str]) -> str:
    """*value* stripped, or '' for None; an error when it is not text."""
    if value is None:
        return ""
    if not isinstance(value, str):
        errors[name] = "must be text"
        return ""
    return value.strip()


def _clean_bool(name: str, value: Any, errors: dict[str, str]) -> bool:
    if not isinstance(value, bool):
        errors[name] = "must be true or false"
        return False
    return value


def _clean_owner(value: Any, errors: dict[str, str]) -> Any:
    """The active user with email *value*, or None (with an error) when there is none."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors["owner"] = "must be a user's email address"
        return None
    user = get_user_model().objects.filter(email__iexact=value.strip(), is_active=True).first()
    if user is None:
        errors["owner"] = f"no active user has the email {value.strip()!r}"
    return user


def _custom_definitions(record_type: str) -> dict[str, CustomField]:
    return {f.key: f for f in CustomField.objects.filter(record_type=record_type)}


def clean_custom_values(
    values: Any, definitions: Mapping[str, CustomField], errors: dict[str, str]
) -> dict[str, Any]:
    """Coerce custom field *values* by their definitions; None means "clear this field".

    Errors go under ``custom.<key>``; an unknown key is refused rather than stored,
    because conditions and imports could never reach it.
    """
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        errors["custom"] = "must be an object of custom field keys to values"
        return {}
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            known = ", ".join(sorted(definitions)) or "none defined"
            errors[f"custom.{key}"] = f"unknown custom field (known: {known})"
            continue
        if isinstance(value, list | dict):
            errors[f"custom.{key}"] = f"expected a single {definition.field_type} value"
            continue
        try:
            cleaned[key] = fields.coerce_custom_value(definition.field_type, value, definition.choices)
        except ValueError as exc:
            errors[f"custom.{key}"] = str(exc)
    return cleaned


def _merge_custom(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _raise_if(errors: Mapping[str, str]) -> None:
    if errors:
        raise ValidationError(dict(errors))


# --- contacts -----------------------------------------------------------------------------


def clean_tag_names(value: Any, errors: dict[str, str]) -> list[str]:
    """Tag names stripped and de-duplicated (case-insensitively, first spelling wins)."""
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        errors["tags"] = "must be a list of tag names"
        return []
    names: dict[str, str] = {}
    for raw in value:
        name = " ".join(raw.split())
        if not name:
            continue
        if len(name) > 100:
            errors["tags"] = f"tag {name[:20]!r}... is longer than 100 characters"
            return []
        names.setdefault(name.lower(), name)
    if len(names) > MAX_TAGS:
        errors["tags"] = f"at most {MAX_TAGS} tags per contact"
    return list(names.values())


def _tags_by_name(names: list[str]) -> list[Tag]:
    """The Tag rows for *names*, creating the missing ones; an existing tag matches in any case."""
    if not names:
        return []
    match = Q()
    for name in names:
        match |= Q(name__iexact=name)
    existing = {tag.name.lower(): tag for tag in Tag.objects.filter(match).order_by("id")}
    missing = [Tag(name=name) for name in names if name.lower() not in existing]
    if missing:
        # Another request may create the same tag meanwhile: let the unique name win, then reread.
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing.update(
            {tag.name.lower(): tag for tag in Tag.objects.filter(name__in=[t.name for t in missing])}
        )
    return [existing[name.lower()] for name in names if name.lower() in existing]


def _clean_country(value: Any, errors: dict[str, str]) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or value.strip().upper() not in phonenumbers.SUPPORTED_REGIONS:
        errors["country"] = f"{value!r} is not a two-letter ISO country code such as US or GB"
        return ""
    return value.strip().upper()


def _clean_contact(
    data: Mapping[str, Any], *, contact: Contact | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The model values to write for *data* (only the keys given), and the errors found."""
    errors = _unknown_keys(data, CONTACT_WRITABLE)
    values: dict[str, Any] = {}
    for name in CONTACT_TEXT_FIELDS:
        if name in data:
            values[name] = _clean_text(Contact, name, data[name], errors)
    for name in ("email_opt_out", "sms_opt_out"):
        if name in data:
            values[name] = _clean_bool(name, data[name], errors)
    if "country" in data:
        values["country"] = _clean_country(data["country"], errors)
    if "email" in data:
        try:
            values["email"] = fields.normalize_email(_clean_text(Contact, "email", data["email"], errors))
        except ValueError as exc:
            errors["email"] = str(exc)
    if "mobile" in data:
        # A national number is read in the contact's country (the new one when it changes too).
        country = values.get("country", contact.country if contact else "")
        try:
            # Checked for length once in E.164: the written form may be longer ("+44 (0)20 ...").
            values["mobile"] = fields.normalize_phone(_raw_text("mobile", data["mobile"], errors), country)
        except ValueError as exc:
            errors["mobile"] = str(exc) + ("" if country else "; give it with +country code or set country")
    if "time_zone" in data:
        try:
            values["time_zone"] = fields.normalize_time_zone(
                _clean_text(Contact, "time_zone", data["time_zone"], errors)
            )
        except ValueError as exc:
            errors["time_zone"] = str(exc)
    if "owner" in data:
        values["owner"] = _clean_owner(data["owner"], errors)
    if "tags" in data:
        values["tags"] = clean_tag_names(data["tags"], errors)
    if "custom" in data:
        values["custom"] = clean_custom_values(data["custom"], _custom_definitions(RECORD_CONTACT), errors)
    values.update(_clean_account_link(data, errors))
    if values.get("email") and not errors.get("email"):
        duplicate = Contact.objects.filter(email=values["email"])
        if contact is not None:
            duplicate = duplicate.exclude(pk=contact.pk)
        other = duplicate.values_list("pk", flat=True).first()
        if other is not None:
            errors["email"] = f"contact {other} already has the email {values['email']}"
    return values, errors


def _clean_account_link(data: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """``account`` (an Account, a name to find or create, or None) from account_id / account_name."""
    has_id, has_name = "account_id" in data, "account_name" in data
    if has_id and has_name and data["account_id"] is not None and data["account_name"]:
        errors["account_id"] = "give account_id or account_name, not both"
        return {}
    if has_id and data["account_id"] is not None:
        account_id = data["account_id"]
        if not isinstance(account_id, int) or isinstance(account_id, bool):
            errors["account_id"] = "must be an account id"
            return {}
        account = Account.objects.filter(pk=account_id).first()
        if account is None:
            errors["account_id"] = f"no account has id {account_id}"
            return {}
        return {"account": account}
    if has_name and data["account_name"]:
        name = data["account_name"]
        if not isinstance(name, str) or len(name.strip()) > 255:
            errors["account_name"] = "must be an account name of at most 255 characters"
            return {}
        return {"account": name.strip() or None}
    if has_id or has_name:
        return {"account": None}
    return {}


def _resolve_account(value: Account | str | None, user: Any) -> Account | None:
    """An account named *value* (case-insensitive, oldest first), created when missing."""
    if not isinstance(value, str):
        return value
    account = Account.objects.filter(name__iexact=value).order_by("id").first()
    if account is None:
        now = clock.now()
        account = Account.objects.create(name=value, owner=user, created_at=now, updated_at=now)
    return account


def do_create_contact(user: Any, data: Mapping[str, Any]) -> Contact:
    """Create a contact owned by *user* (or by ``data["owner"]``) from API-style *data*."""
    values, errors = _clean_contact(data, contact=None)
    _raise_if(errors)
    tag_names = values.pop("tags", [])
    now = clock.now()
    with transaction.atomic():
        if "account" in values:
            values["account"] = _resolve_account(values["account"], user)
        values["owner"] = values.get("owner") or user
        contact = Contact.objects.create(created_at=now, updated_at=now, **values)
        if tag_names:
            contact.tags.set(_tags_by_name(tag_names))
    return contact


def do_update_contact(contact: Contact, data: Mapping[str, Any], *, user: Any) -> Contact:
    """Change the fields given in *data*; ``custom`` merges (null clears a key), ``tags`` replaces."""
    values, errors = _clean_contact(data, contact=contact)
    if "owner" in data and values.get("owner") is None and "owner" not in errors:
        errors["owner"] = "a contact needs an owner"
    _raise_if(errors)
    tag_names = values.pop("tags", None)
    with transaction.atomic():
        if "account" in values:
            values["account"] = _resolve_account(values["account"], user)
        if "custom" in values:
            values["custom"] = _merge_custom(contact.custom or {}, values["custom"])
        if "email" in values and values["email"] != contact.email:
            # A new address has not bounced yet: it gets its own chance.
            values["email_status"] = EmailStatus.OK
        for name, value in values.items():
            setattr(contact, name, value)
        contact.updated_at = clock.now()
        contact.save()
        if tag_names is not None:
            contact.tags.set(_tags_by_name(tag_names))
    return contact


def do_delete_contact(contact: Contact, *, user: Any) -> None:
    """Delete a contact and its activities; only its owner or a workspace manager may."""
    ensure_can_delete(user, contact)
    with transaction.atomic():
        contact.delete()


# --- accounts -----------------------------------------------------------------------------


def normalize_domain(value: str) -> str:
    """The bare host name of a web address or domain ("https://www.Acme.com/x" -> "acme.com")."""
    value = (value or "").strip().lower()
    if not value:
        return ""
    host = urlsplit(value if "//" in value else f"//{value}").hostname or ""
    host = host.removeprefix("www.")
    try:
        DomainNameValidator(accept_idna=True)(host)
    except ValidationError:
        raise ValueError(f"{value!r} is not a domain such as acme.com") from None
    return host


def _clean_account(data: Mapping[str, Any], *, creating: bool) -> tuple[dict[str, Any], dict[str, str]]:
    errors = _unknown_keys(data, ACCOUNT_WRITABLE)
    values: dict[str, Any] = {}
    for name in ("name", "industry"):
        if name in data:
            values[name] = _clean_text(Account, name, data[name], errors)
    if ("name" in data or creating) and not values.get("name") and "name" not in errors:
        errors["name"] = "an account needs a name"
    if "domain" in data:
        try:
            values["domain"] = normalize_domain(_clean_text(Account, "domain", data["domain"], errors))
        except ValueError as exc:
            errors["domain"] = str(exc)
    if "owner" in data:
        values["owner"] = _clean_owner(data["owner"], errors)
    if "custom" in data:
        values["custom"] = clean_custom_values(data["custom"], _custom_definitions(RECORD_ACCOUNT), errors)
    return values, errors


def do_create_account(user: Any, data: Mapping[str, Any]) -> Account:
    """Create an account owned by *user* (or by ``data["owner"]``)."""
    values, errors = _clean_account(data, creating=True)
    _raise_if(errors)
    now = clock.now()
    values["owner"] = values.get("owner") or user
    with transaction.atomic():
        return Account.objects.create(created_at=now, updated_at=now, **values)


def do_update_account(account: Account, data: Mapping[str, Any], *, user: Any) -> Account:
    """Change the fields given in *data*; ``custom`` merges (null clears a key)."""
    values, errors = _clean_account(data, creating=False)
    if "owner" in data and values.get("owner") is None and "owner" not in errors:
        errors["owner"] = "an account needs an owner"
    _raise_if(errors)
    if "custom" in values:
        values["custom"] = _merge_custom(account.custom or {}, values["custom"])
    with transaction.atomic():
        for name, value in values.items():
            setattr(account, name, value)
        account.updated_at = clock.now()
        account.save()
    return account


def do_delete_account(account: Account, *, user: Any) -> None:
    """Delete an account; its contacts stay, without a primary sales account."""
    ensure_can_delete(user, account)
    with transaction.atomic():
        account.delete()


# --- custom fields ------------------------------------------------------------------------


def _clean_choices(field_type: str, value: Any, errors: dict[str, str]) -> list[str]:
    if field_type != CustomFieldType.CHOICE:
        if value:
            errors["choices"] = "only choice fields have choices"
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        errors["choices"] = "must be a list of texts"
        return []
    choices: dict[str, str] = {}
    for raw in value:
        choice = raw.strip()
        if choice:
            choices.setdefault(choice.lower(), choice)
    if not choices:
        errors["choices"] = "a choice field needs at least one choice"
    elif len(choices) > MAX_CHOICES:
        errors["choices"] = f"at most {MAX_CHOICES} choices"
    elif any(len(c) > 100 for c in choices.values()):
        errors["choices"] = "each choice is at most 100 characters"
    return list(choices.values())


def do_create_custom_field(
    user: Any,
    *,
    record_type: str,
    label: str,
    field_type: str,
    key: str = "",
    choices: Iterable[str] | None = None,
) -> CustomField:
    """Define a typed custom field; its key (derived from the label when not given) is fixed for life."""
    ensure_can_manage_workspace(user, "custom fields")
    errors: dict[str, str] = {}
    if record_type not in (RECORD_CONTACT, RECORD_ACCOUNT):
        errors["record_type"] = "must be contact or account"
    label = _clean_text(CustomField, "label", label, errors)
    if not label and "label" not in errors:
        errors["label"] = "a custom field needs a label"
    if field_type not in CustomFieldType.values:
        errors["field_type"] = f"must be one of {', '.join(CustomFieldType.values)}"
    key = (key or "").strip() or slugify(label).replace("-", "_")
    if not CUSTOM_KEY_RE.match(key):
        errors["key"] = (
            f"{key!r} is not a key: lower-case letters, digits and _, starting with a letter, at most 64"
        )
    elif CustomField.objects.filter(record_type=record_type, key=key).exists():
        errors["key"] = f"a {record_type} custom field with key {key!r} already exists"
    cleaned_choices = _clean_choices(field_type, list(choices or []), errors)
    _raise_if(errors)
    with transaction.atomic():
        return CustomField.objects.create(
            record_type=record_type,
            key=key,
            label=label,
            field_type=field_type,
            choices=cleaned_choices,
            created_at=clock.now(),
        )


def do_update_custom_field(
    user: Any, field: CustomField, *, label: str | None = None, choices: Iterable[str] | None = None
) -> CustomField:
    """Rename a custom field or change its choices; key and type never change (stored values depend on them)."""
    ensure_can_manage_workspace(user, "custom fields")
    errors: dict[str, str] = {}
    if label is not None:
        label = _clean_text(CustomField, "label", label, errors)
        if not label and "label" not in errors:
            errors["label"] = "a custom field needs a label"
    new_choices = _clean_choices(field.field_type, list(choices), errors) if choices is not None else None
    _raise_if(errors)
    with transaction.atomic():
        if label is not None:
            field.label = label
        if new_choices is not None:
            field.choices = new_choices
        field.save()
    return field


class _RemoveJSONKey(Func):
    """``custom`` without one key, computed by the database so one UPDATE serves every row."""

    output_field = models.JSONField()

    def __init__(self, field: str, key: str) -> None:
        super().__init__(F(field))
        self.key = key

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        raise NotImplementedError(f"removing a JSON key is not written for {connection.vendor}")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        # Keys match CUSTOM_KEY_RE (letters, digits, _), so the quoted JSON path is plain.
        return f"JSON_REMOVE({sql}, %s)", (*params, f'$."{self.key}"')

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"({sql} - %s)", (*params, self.key)


def do_delete_custom_field(user: Any, field: CustomField) -> None:
    """Delete a custom field and erase its values from every record (one UPDATE per table)."""
    ensure_can_manage_workspace(user, "custom fields")
    model: type[Contact] | type[Account] = Contact if field.record_type == RECORD_CONTACT else Account
    with transaction.atomic():
        model.objects.filter(custom__has_key=field.key).update(custom=_RemoveJSONKey("custom", field.key))
        field.delete()


# --- custom activity types ----------------------------------------------------------------


def _clean_activity_type_name(value: Any, errors: dict[str, str], *, exclude_pk: int | None = None) -> str:
    name = " ".join(_clean_text(ActivityType, "name", value, errors).split())
    if "name" in errors:
        return name
    if not name:
        errors["name"] = "an activity type needs a name"
    elif name.lower() in BUILT_IN_ACTIVITY_TYPES:
        errors["name"] = f"{name!r} is a built-in activity type"
    elif ActivityType.objects.filter(name__iexact=name).exclude(pk=exclude_pk or 0).exists():
        errors["name"] = f"an activity type named {name!r} already exists"
    return name


def do_create_activity_type(user: Any, name: str) -> ActivityType:
    """Add a custom sales activity type (Lunch, Coffee, InMail ...)."""
    ensure_can_manage_workspace(user, "activity types")
    errors: dict[str, str] = {}
    name = _clean_activity_type_name(name, errors)
    _raise_if(errors)
    with transaction.atomic():
        return ActivityType.objects.create(name=name)


def do_update_activity_type(
    user: Any, activity_type: ActivityType, *, name: str | None = None, is_active: bool | None = None
) -> ActivityType:
    """Rename a custom activity type, or retire it (``is_active=False``) so reps can no longer log it."""
    ensure_can_manage_workspace(user, "activity types")
    errors: dict[str, str] = {}
    if name is not None:
        name = _clean_activity_type_name(name, errors, exclude_pk=activity_type.pk)
    _raise_if(errors)
    with transaction.atomic():
        if name is not None:
            activity_type.name = name
        if is_active is not None:
            activity_type.is_active = is_active
        activity_type.save()
    return activity_type


def do_delete_activity_type(user: Any, activity_type: ActivityType) -> None:
    """Delete an unused custom activity type; a used one can only be retired."""
    ensure_can_manage_workspace(user, "activity types")
    used = Activity.objects.filter(custom_type=activity_type).count()
    if used:
        raise ValidationError(
            {"id": f"{used} logged activities use {activity_type.name!r}; set is_active to false instead"}
        )
    with transaction.atomic():
        activity_type.delete()


# --- logged activities --------------------------------------------------------------------


def do_log_activity(
    contact: Contact,
    user: Any,
    *,
    kind: str,
    custom_type: str | None = None,
    occurred_at: dt.datetime | None = None,
    subject: str = "",
    body: str = "",
    outcome: str = "",
) -> Activity:
    """Log a call, chat, meeting, note, task or custom sales activity a rep had with *contact*.

    Email and SMS activities are refused: only the system records those. The contact's
    last-contacted fields follow through ``crm.actions.do_record_activity``.
    """
    errors: dict[str, str] = {}
    if kind in SYSTEM_ACTIVITY_KINDS:
        errors["kind"] = f"{kind!r} is recorded by the system and cannot be logged by hand"
    elif kind not in MANUAL_ACTIVITY_KINDS:
        errors["kind"] = f"must be one of {', '.join(MANUAL_ACTIVITY_KINDS)}"
    activity_type: ActivityType | None = None
    if kind == ActivityKind.CUSTOM:
        if not custom_type:
            errors["custom_type"] = "a custom sales activity needs its type (Lunch, Coffee ...)"
        else:
            activity_type = ActivityType.objects.filter(
                name__iexact=custom_type.strip(), is_active=True
            ).first()
            if activity_type is None:
                errors["custom_type"] = f"no active activity type is named {custom_type.strip()!r}"
    elif custom_type:
        errors["custom_type"] = "only a custom activity (kind 'custom') has a type"
    if occurred_at is not None:
        if occurred_at.tzinfo is None:
            errors["occurred_at"] = "needs a time zone offset, e.g. 2026-03-02T15:00:00Z"
        elif occurred_at > clock.now() + FUTURE_TOLERANCE:
            errors["occurred_at"] = "cannot be in the future"
        else:
            occurred_at = occurred_at.astimezone(dt.UTC)
    subject = _clean_text(Activity, "subject", subject, errors)
    outcome = _clean_text(Activity, "outcome", outcome, errors)
    _raise_if(errors)
    with transaction.atomic():
        return do_record_activity(
            contact,
            kind,
            user=user,
            custom_type=activity_type,
            occurred_at=occurred_at,
            subject=subject,
            body=body or "",
            outcome=outcome,
        )


# --- bulk changes -------------------------------------------------------------------------


def do_tag_contacts(contact_ids: Iterable[int], name: str) -> int:
    """Add the tag *name* (created when missing, matched in any case) to the contacts
    *contact_ids*; returns how many contacts did not have it yet. Set-based: one insert."""
    errors: dict[str, str] = {}
    names = clean_tag_names([name], errors)
    if not names and "tags" not in errors:
        errors["tag"] = "a tag needs a name"
    elif "tags" in errors:
        errors["tag"] = errors.pop("tags")
    _raise_if(errors)
    ids = list(dict.fromkeys(contact_ids))
    with transaction.atomic():
        tag = _tags_by_name(names)[0]
        through = Contact.tags.through
        ids = list(Contact.objects.filter(pk__in=ids).values_list("pk", flat=True))
        before = through.objects.filter(tag=tag, contact_id__in=ids).count()
        through.objects.bulk_create(
            [through(contact_id=pk, tag_id=tag.pk) for pk in ids], ignore_conflicts=True
        )
        Contact.objects.filter(pk__in=ids).update(updated_at=clock.now())
        return len(ids) - before
