"""The CRM endpoints under /api/v1/: contacts, accounts, custom fields, activity types,
activities, saved views and the condition field catalog (docs/API.md).

Thin by design: parse, find the object, call an action from ``crm.records`` or
``crm.saved_views``, render. Contacts and accounts are shared by the workspace;
saved views are per user and another user's view answers 404.
"""

import json
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, Prefetch, QuerySet, prefetch_related_objects
from django.db.models.expressions import OrderBy
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status

from sequent.api.pagination import paginated
from sequent.crm import records, saved_views
from sequent.crm.conditions import (
    ConditionError,
    field_catalog,
    filter_records,
    record_model,
)
from sequent.crm.models import (
    RECORD_ACCOUNT,
    RECORD_CONTACT,
    Account,
    Activity,
    ActivityType,
    Contact,
    CustomField,
    SavedView,
    Tag,
)
from sequent.crm.schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    ActivityIn,
    ActivityOut,
    ActivityTypeIn,
    ActivityTypeOut,
    ActivityTypePatch,
    ContactIn,
    ContactOut,
    CustomFieldIn,
    CustomFieldOut,
    CustomFieldPatch,
    FieldSpecOut,
    PreviewIn,
    PreviewOut,
    RecordType,
    SearchIn,
    ViewIn,
    ViewOut,
    ViewPatch,
)
from sequent.users import access

router = Router()

CONDITIONS_HELP = 'JSON list of clauses, e.g. [{"field": "email", "op": "contains", "value": "@acme.com"}]'
PREVIEW_LIMIT = 10

# Sort keys a client may ask for. Text sorts case-insensitively so both databases agree.
CONTACT_SORTS: dict[str, F | Lower] = {
    "id": F("id"),
    "first_name": Lower("first_name"),
    "last_name": Lower("last_name"),
    "email": F("email"),
    "job_title": Lower("job_title"),
    "country": F("country"),
    "account": Lower("account__name"),
    "last_contacted_at": F("last_contacted_at"),
    "created_at": F("created_at"),
    "updated_at": F("updated_at"),
}
ACCOUNT_SORTS: dict[str, F | Lower] = {
    "id": F("id"),
    "name": Lower("name"),
    "domain": F("domain"),
    "industry": Lower("industry"),
    "created_at": F("created_at"),
    "updated_at": F("updated_at"),
}


# --- helpers ------------------------------------------------------------------------------


def contact_queryset() -> QuerySet[Contact]:
    """Contacts with everything ContactOut reads, in a fixed number of queries for any page."""
    return _with_contact_relations(Contact.objects.all())


def _with_contact_relations(queryset: QuerySet[Contact]) -> QuerySet[Contact]:
    return queryset.select_related("account", "owner").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.only("id", "name"))
    )


def account_queryset() -> QuerySet[Account]:
    """Accounts with everything AccountOut reads."""
    return Account.objects.select_related("owner")


def _ordering(sort: str, allowed: Mapping[str, F | Lower]) -> list[OrderBy]:
    """ORDER BY for ``sort`` ("name" or "-name"); empty values last either way, id breaks ties."""
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    if key not in allowed:
        raise ValidationError(
            {"sort": f"cannot sort by {key!r}; use one of {', '.join(allowed)} (- for descending)"}
        )
    expression = allowed[key]
    if descending:
        return [expression.desc(nulls_last=True), F("id").desc()]
    return [expression.asc(nulls_last=True), F("id").asc()]


def _parse_conditions(raw: str | None) -> list[Any]:
    """The clause list of the ``conditions`` query parameter."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError({"conditions": f"not valid JSON ({exc.msg} at character {exc.pos})"}) from None
    if not isinstance(value, list):
        raise ValidationError({"conditions": "must be a JSON list of clauses"})
    return value


def _matching(
    request: HttpRequest, record_type: str, clauses: list[Any], view_id: int | None
) -> QuerySet[Any]:
    """The records matching *clauses* and, when given, the user's saved view *view_id*."""
    # No clause, no catalog lookup: a plain list costs no more than its page.
    queryset = (
        filter_records(record_type, clauses, user=request.user)
        if clauses
        else record_model(record_type).objects.all()
    )
    if view_id is not None:
        view = access.access_object(SavedView.objects.all(), request.user, pk=view_id)
        if view.record_type != record_type:
            raise ValidationError(
                {"view": f"saved view {view.pk} lists {view.record_type}s, not {record_type}s"}
            )
        try:
            queryset = queryset & saved_views.view_queryset(view)
        except ConditionError as exc:
            # The view was valid when saved; a custom field it names may since have gone.
            raise ValidationError({"view": f"saved view {view.name!r} no longer applies: {exc}"}) from None
    return queryset


def _contact_list(
    request: HttpRequest, clauses: list[Any], view_id: int | None, sort: str
) -> QuerySet[Contact]:
    ordering = _ordering(sort, CONTACT_SORTS)
    matching = _matching(request, RECORD_CONTACT, clauses, view_id)
    return _with_contact_relations(matching).order_by(*ordering)


def _account_list(
    request: HttpRequest, clauses: list[Any], view_id: int | None, sort: str
) -> QuerySet[Account]:
    ordering = _ordering(sort, ACCOUNT_SORTS)
    matching = _matching(request, RECORD_ACCOUNT, clauses, view_id)
    return matching.select_related("owner").order_by(*ordering)


def _with_output_relations(record_type: str, items: list[Any]) -> list[Any]:
    """Load what the output schema reads for *items* in one query per relation."""
    if record_type == RECORD_CONTACT:
        prefetch_related_objects(items, "tags", "account", "owner")
    else:
        prefetch_related_objects(items, "owner")
    return items


# --- contacts -----------------------------------------------------------------------------


@router.get("/contacts", response=list[ContactOut], tags=["contacts"])
@paginated
def list_contacts(
    request: HttpRequest,
    sort: str = "id",
    conditions: str | None = Query(None, description=CONDITIONS_HELP),
    view: int | None = Query(None, description="id of one of your saved views"),
) -> QuerySet[Contact]:
    """Contacts of the workspace, filtered by conditions and/or a saved view."""
    return _contact_list(request, _parse_conditions(conditions), view, sort)


@router.post("/contacts/search", response=list[ContactOut], tags=["contacts"])
@paginated
def search_contacts(request: HttpRequest, payload: SearchIn) -> QuerySet[Contact]:
    """Like ``GET /contacts`` with the conditions in the body (no URL length limit)."""
    return _contact_list(request, payload.conditions, payload.view, payload.sort)


@router.post("/contacts", response={201: ContactOut}, tags=["contacts"])
def create_contact(request: HttpRequest, payload: ContactIn) -> Status[Contact]:
    contact = records.do_create_contact(request.user, payload.model_dump(exclude_unset=True))
    return Status(201, contact_queryset().get(pk=contact.pk))


@router.get("/contacts/{contact_id}", response=ContactOut, tags=["contacts"])
def get_contact(request: HttpRequest, contact_id: int) -> Contact:
    return get_object_or_404(contact_queryset(), pk=contact_id)


@router.patch("/contacts/{contact_id}", response=ContactOut, tags=["contacts"])
def update_contact(request: HttpRequest, contact_id: int, payload: ContactIn) -> Contact:
    """Change the fields sent; ``custom`` merges (null clears a key) and ``tags`` replaces."""
    contact = get_object_or_404(Contact, pk=contact_id)
    records.do_update_contact(contact, payload.model_dump(exclude_unset=True), user=request.user)
    return contact_queryset().get(pk=contact.pk)


@router.delete("/contacts/{contact_id}", response={204: None}, tags=["contacts"])
def delete_contact(request: HttpRequest, contact_id: int) -> Status[None]:
    """Only the contact's owner or a user with Manage workspace may delete it (else 403)."""
    records.do_delete_contact(get_object_or_404(Contact, pk=contact_id), user=request.user)
    return Status(204, None)


@router.get("/contacts/{contact_id}/activities", response=list[ActivityOut], tags=["activities"])
@paginated
def list_activities(request: HttpRequest, contact_id: int) -> QuerySet[Activity]:
    """The contact's activities, newest first."""
    contact = get_object_or_404(Contact, pk=contact_id)
    return (
        Activity.objects.filter(contact=contact)
        .select_related("user", "custom_type")
        .order_by("-occurred_at", "-id")
    )


@router.post("/contacts/{contact_id}/activities", response={201: ActivityOut}, tags=["activities"])
def log_activity(request: HttpRequest, contact_id: int, payload: ActivityIn) -> Status[Activity]:
    """Log a call, chat, meeting, note, task or custom activity; updates last-contacted fields."""
    contact = get_object_or_404(Contact, pk=contact_id)
    activity = records.do_log_activity(contact, request.user, **payload.model_dump())
    return Status(201, Activity.objects.select_related("user", "custom_type").get(pk=activity.pk))


# --- accounts -----------------------------------------------------------------------------


@router.get("/accounts", response=list[AccountOut], tags=["accounts"])
@paginated
def list_accounts(
    request: HttpRequest,
    sort: str = "id",
    conditions: str | None = Query(None, description=CONDITIONS_HELP),
    view: int | None = Query(None, description="id of one of your saved views"),
) -> QuerySet[Account]:
    """Accounts of the workspace, filtered by conditions and/or a saved view."""
    return _account_list(request, _parse_conditions(conditions), view, sort)


@router.post("/accounts/search", response=list[AccountOut], tags=["accounts"])
@paginated
def search_accounts(request: HttpRequest, payload: SearchIn) -> QuerySet[Account]:
    """Like ``GET /accounts`` with the conditions in the body."""
    return _account_list(request, payload.conditions, payload.view, payload.sort)


@router.post("/accounts", response={201: AccountOut}, tags=["accounts"])
def create_account(request: HttpRequest, payload: AccountIn) -> Status[Account]:
    account = records.do_create_account(request.user, payload.model_dump(exclude_unset=True))
    return Status(201, account_queryset().get(pk=account.pk))


@router.get("/accounts/{account_id}", response=AccountOut, tags=["accounts"])
def get_account(request: HttpRequest, account_id: int) -> Account:
    return get_object_or_404(account_queryset(), pk=account_id)


@router.patch("/accounts/{account_id}", response=AccountOut, tags=["accounts"])
def update_account(request: HttpRequest, account_id: int, payload: AccountPatch) -> Account:
    """Change the fields sent; ``custom`` merges (null clears a key)."""
    account = get_object_or_404(Account, pk=account_id)
    records.do_update_account(account, payload.model_dump(exclude_unset=True), user=request.user)
    return account_queryset().get(pk=account.pk)


@router.delete("/accounts/{account_id}", response={204: None}, tags=["accounts"])
def delete_account(request: HttpRequest, account_id: int) -> Status[None]:
    """Only the account's owner or a user with Manage workspace may delete it (else 403)."""
    records.do_delete_account(get_object_or_404(Account, pk=account_id), user=request.user)
    return Status(204, None)


# --- custom fields ------------------------------------------------------------------------


@router.get("/custom-fields", response=list[CustomFieldOut], tags=["custom fields"])
@paginated
def list_custom_fields(request: HttpRequest, record_type: RecordType | None = None) -> QuerySet[CustomField]:
    """Custom field definitions, for anyone."""
    fields = CustomField.objects.order_by("record_type", "id")
    return fields.filter(record_type=record_type) if record_type else fields


@router.post("/custom-fields", response={201: CustomFieldOut}, tags=["custom fields"])
def create_custom_field(request: HttpRequest, payload: CustomFieldIn) -> Status[CustomField]:
    """Needs the Manage workspace permission (else 403)."""
    return Status(201, records.do_create_custom_field(request.user, **payload.model_dump()))


@router.get("/custom-fields/{field_id}", response=CustomFieldOut, tags=["custom fields"])
def get_custom_field(request: HttpRequest, field_id: int) -> CustomField:
    return get_object_or_404(CustomField, pk=field_id)


@router.patch("/custom-fields/{field_id}", response=CustomFieldOut, tags=["custom fields"])
def update_custom_field(request: HttpRequest, field_id: int, payload: CustomFieldPatch) -> CustomField:
    """Rename or change choices (key and type are fixed); needs Manage workspace."""
    field = get_object_or_404(CustomField, pk=field_id)
    return records.do_update_custom_field(request.user, field, **payload.model_dump(exclude_unset=True))


@router.delete("/custom-fields/{field_id}", response={204: None}, tags=["custom fields"])
def delete_custom_field(request: HttpRequest, field_id: int) -> Status[None]:
    """Delete the field and its values on every record; needs Manage workspace."""
    records.do_delete_custom_field(request.user, get_object_or_404(CustomField, pk=field_id))
    return Status(204, None)


# --- custom activity types ----------------------------------------------------------------


@router.get("/activity-types", response=list[ActivityTypeOut], tags=["activity types"])
@paginated
def list_activity_types(request: HttpRequest, active: bool | None = None) -> QuerySet[ActivityType]:
    """Custom sales activity types; ``?active=true`` for the ones reps can log."""
    types = ActivityType.objects.order_by("name", "id")
    return types.filter(is_active=active) if active is not None else types


@router.post("/activity-types", response={201: ActivityTypeOut}, tags=["activity types"])
def create_activity_type(request: HttpRequest, payload: ActivityTypeIn) -> Status[ActivityType]:
    """Needs the Manage workspace permission (else 403)."""
    return Status(201, records.do_create_activity_type(request.user, payload.name))


@router.patch("/activity-types/{type_id}", response=ActivityTypeOut, tags=["activity types"])
def update_activity_type(request: HttpRequest, type_id: int, payload: ActivityTypePatch) -> ActivityType:
    activity_type = get_object_or_404(ActivityType, pk=type_id)
    return records.do_update_activity_type(
        request.user, activity_type, **payload.model_dump(exclude_unset=True)
    )


@router.delete("/activity-types/{type_id}", response={204: None}, tags=["activity types"])
def delete_activity_type(request: HttpRequest, type_id: int) -> Status[None]:
    """Only an unused type can be deleted; retire a used one with ``is_active: false``."""
    records.do_delete_activity_type(request.user, get_object_or_404(ActivityType, pk=type_id))
    return Status(204, None)


# --- saved views --------------------------------------------------------------------------


def _own_view(request: HttpRequest, view_id: int) -> SavedView:
    return access.access_object(SavedView.objects.all(), request.user, pk=view_id)


def _preview(request: HttpRequest, record_type: str, clauses: list[Any]) -> dict[str, Any]:
    count, items = saved_views.preview(request.user, record_type, clauses, limit=PREVIEW_LIMIT)
    return {
        "record_type": record_type,
        "count": count,
        "items": _with_output_relations(record_type, list(items)),
    }


@router.get("/views", response=list[ViewOut], tags=["saved views"])
@paginated
def list_views(request: HttpRequest, record_type: RecordType | None = None) -> QuerySet[SavedView]:
    """Your saved views, by name."""
    views = access.scope(SavedView.objects.order_by("name", "id"), request.user)
    return views.filter(record_type=record_type) if record_type else views


@router.post("/views", response={201: ViewOut}, tags=["saved views"])
def create_view(request: HttpRequest, payload: ViewIn) -> Status[SavedView]:
    return Status(
        201, saved_views.do_create_view(request.user, payload.name, payload.record_type, payload.conditions)
    )


@router.post("/views/preview", response=PreviewOut, tags=["saved views"])
def preview_conditions(request: HttpRequest, payload: PreviewIn) -> dict[str, Any]:
    """Count and first matches of conditions not saved yet."""
    return _preview(request, payload.record_type, payload.conditions)


@router.get("/views/{view_id}", response=ViewOut, tags=["saved views"])
def get_view(request: HttpRequest, view_id: int) -> SavedView:
    return _own_view(request, view_id)


@router.patch("/views/{view_id}", response=ViewOut, tags=["saved views"])
def update_view(request: HttpRequest, view_id: int, payload: ViewPatch) -> SavedView:
    view = _own_view(request, view_id)
    saved_views.do_update_view(view, name=payload.name, conditions=payload.conditions)
    return _own_view(request, view_id)


@router.delete("/views/{view_id}", response={204: None}, tags=["saved views"])
def delete_view(request: HttpRequest, view_id: int) -> Status[None]:
    saved_views.do_delete_view(_own_view(request, view_id))
    return Status(204, None)


@router.get("/views/{view_id}/preview", response=PreviewOut, tags=["saved views"])
def preview_view(request: HttpRequest, view_id: int) -> dict[str, Any]:
    """Count and first matches of a saved view."""
    view = _own_view(request, view_id)
    return _preview(request, view.record_type, view.conditions)


# --- field catalog ------------------------------------------------------------------------


@router.get("/fields/{record_type}", response=list[FieldSpecOut], tags=["saved views"])
def list_fields(request: HttpRequest, record_type: RecordType) -> list[Any]:
    """Every field conditions may name for *record_type*, with its operators and choices.

    Not paginated: it is a description of the schema (bounded by the custom fields), read whole.
    """
    return field_catalog(record_type)
