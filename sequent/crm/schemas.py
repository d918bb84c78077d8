"""Request and response shapes of the CRM API (see docs/API.md).

Input schemas refuse unknown keys, so a misspelt field is a 422 rather than a
silent no-op. Values are only shape-checked here; their meaning (a valid email,
a phone number in E.164, a custom field of the right type) is checked by the
actions in ``crm.records``, which every caller shares.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

from sequent.crm.models import Account, Activity, Contact

RecordType = Literal["contact", "account"]


class StrictIn(Schema):
    """Base of the input schemas: an unknown key is an error."""

    model_config = ConfigDict(extra="forbid")


# --- contacts and accounts ----------------------------------------------------------------


class AccountRef(Schema):
    id: int
    name: str


class ContactOut(Schema):
    id: int
    first_name: str
    last_name: str
    email: str
    mobile: str = Field(description="E.164, e.g. +14155550123")
    job_title: str
    time_zone: str
    country: str = Field(description="ISO 3166 alpha-2")
    account: AccountRef | None = Field(description="the primary sales account")
    tags: list[str]
    custom: dict[str, Any] = Field(description="custom field values by key")
    email_opt_out: bool
    sms_opt_out: bool
    email_status: str
    last_contacted_mode: str
    last_activity_type: str
    last_contacted_at: dt.datetime | None
    owner: str | None = Field(description="the owner's email")
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_tags(obj: Contact) -> list[str]:
        # Reads the prefetched tags: sorting in Python keeps lists at one query for all rows.
        return sorted((tag.name for tag in obj.tags.all()), key=str.lower)

    @staticmethod
    def resolve_owner(obj: Contact) -> str | None:
        return obj.owner.email if obj.owner is not None else None


class ContactIn(StrictIn):
    """Every field is optional: on PATCH only the fields sent change."""

    first_name: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)
    email: str = Field("", max_length=254, description="normalised to lower case; unique among contacts")
    mobile: str = Field("", max_length=40, description="any written form; stored as E.164 using `country`")
    job_title: str = Field("", max_length=255)
    time_zone: str = Field("", max_length=64, description="IANA name such as Europe/Paris")
    country: str = Field("", max_length=2, description="ISO 3166 alpha-2, e.g. US")
    account_id: int | None = Field(None, description="link to this account (null unlinks)")
    account_name: str | None = Field(None, description="link to the account of this name, created if missing")
    tags: list[str] = Field(default_factory=list, description="replaces the contact's tags")
    custom: dict[str, Any] = Field(
        default_factory=dict, description="custom field values by key; on PATCH merged, null clears a key"
    )
    email_opt_out: bool = False
    sms_opt_out: bool = False
    owner: str | None = Field(None, description="email of the owning user (default: you)")


class AccountOut(Schema):
    id: int
    name: str
    domain: str
    industry: str
    custom: dict[str, Any]
    owner: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @staticmethod
    def resolve_owner(obj: Account) -> str | None:
        return obj.owner.email if obj.owner is not None else None


class AccountIn(StrictIn):
    name: str = Field(max_length=255)
    domain: str = Field("", max_length=255, description="a domain or web address; stored as the bare host")
    industry: str = Field("", max_length=255)
    custom: dict[str, Any] = Field(default_factory=dict)
    owner: str | None = None


class AccountPatch(AccountIn):
    name: str = Field("", max_length=255)


class SearchIn(StrictIn):
    """The body of ``POST /contacts/search`` and ``POST /accounts/search``."""

    conditions: list[dict[str, Any]] = Field(
        default_factory=list,
        description='clauses such as {"field": "email", "op": "contains", "value": "@acme.com"}',
    )
    view: int | None = Field(None, description="id of one of your saved views, ANDed with the conditions")
    sort: str = "id"


# --- custom fields and activity types -----------------------------------------------------


class CustomFieldOut(Schema):
    id: int
    record_type: str
    key: str
    label: str
    field_type: str
    choices: list[str]
    created_at: dt.datetime


class CustomFieldIn(StrictIn):
    record_type: RecordType
    label: str = Field(max_length=100)
    field_type: Literal["text", "number", "date", "boolean", "choice"]
    key: str = Field("", max_length=64, description="derived from the label when empty; never changes")
    choices: list[str] = Field(default_factory=list, description="the allowed values of a choice field")


class CustomFieldPatch(StrictIn):
    label: str | None = Field(None, max_length=100)
    choices: list[str] | None = None


class ActivityTypeOut(Schema):
    id: int
    name: str
    is_active: bool


class ActivityTypeIn(StrictIn):
    name: str = Field(max_length=64)


class ActivityTypePatch(StrictIn):
    name: str | None = Field(None, max_length=64)
    is_active: bool | None = None


# --- activities ---------------------------------------------------------------------------


class ActivityOut(Schema):
    id: int
    contact_id: int
    kind: str
    custom_type: str | None
    occurred_at: dt.datetime
    subject: str
    body: str
    outcome: str
    user: str | None = Field(description="email of the user who logged it; null for the system")

    @staticmethod
    def resolve_custom_type(obj: Activity) -> str | None:
        return obj.custom_type.name if obj.custom_type is not None else None

    @staticmethod
    def resolve_user(obj: Activity) -> str | None:
        return obj.user.email if obj.user is not None else None


class ActivityIn(StrictIn):
    kind: str = Field(
        description="call_incoming, call_outgoing, chat, meeting, note, task or custom (email_* and sms_* are system-only)"
    )
    custom_type: str | None = Field(
        None, description="name of an active custom activity type, for kind custom"
    )
    occurred_at: dt.datetime | None = Field(None, description="default: now")
    subject: str = Field("", max_length=255)
    body: str = ""
    outcome: str = Field("", max_length=64)


# --- saved views and the field catalog ----------------------------------------------------


class ViewOut(Schema):
    id: int
    name: str
    record_type: str
    conditions: list[dict[str, Any]]
    created_at: dt.datetime
    updated_at: dt.datetime


class ViewIn(StrictIn):
    name: str = Field(max_length=100)
    record_type: RecordType = "contact"
    conditions: list[dict[str, Any]] = Field(default_factory=list)


class ViewPatch(StrictIn):
    name: str | None = Field(None, max_length=100)
    conditions: list[dict[str, Any]] | None = None


class PreviewIn(StrictIn):
    record_type: RecordType = "contact"
    conditions: list[dict[str, Any]] = Field(default_factory=list)


class PreviewOut(Schema):
    record_type: str
    count: int = Field(description="how many records match")
    items: list[ContactOut] | list[AccountOut] = Field(description="the first matches, oldest first")


class FieldSpecOut(Schema):
    name: str
    label: str
    type: str
    operators: list[str]
    choices: list[str]
