"""Saved views: a user's named conditions on contacts or accounts, and their preview.

Conditions are validated by the one condition compiler (``crm.conditions``) and stored
in its canonical JSON form, so a sequence named by name is stored by id and a choice
typed in any case is stored as the choice itself.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from sequent.crm.conditions import conditions_to_json, filter_records, validate_conditions
from sequent.crm.models import RECORD_TYPES, Account, Contact, SavedView
from sequent.lib import clock

NAME_MAX_LENGTH = SavedView._meta.get_field("name").max_length or 100
PREVIEW_MAX = 100


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": "a view needs a name"})
    name = " ".join(name.split())
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": f"a view name has at most {NAME_MAX_LENGTH} characters"})
    return name


def _check_record_type(record_type: Any) -> str:
    known = [value for value, _ in RECORD_TYPES]
    if record_type not in known:
        raise ValidationError(
            {"record_type": f"unknown record type {record_type!r}; use one of {', '.join(known)}"}
        )
    return str(record_type)


def _save(view: SavedView) -> None:
    """Save *view*, refusing a name its owner already uses (also when a concurrent
    request wins the race on the unique constraint)."""
    duplicate = ValidationError({"name": f"you already have a view named {view.name!r}"})
    try:
        with transaction.atomic():
            if SavedView.objects.filter(owner=view.owner, name=view.name).exclude(pk=view.pk).exists():
                raise duplicate
            view.save()
    except IntegrityError:
        raise duplicate from None


def do_create_view(user: Any, name: str, record_type: str, conditions: list[dict]) -> SavedView:
    """Create *user*'s view named *name* on *record_type* ("contact" or "account").

    Raises ValidationError naming ``name`` or ``record_type``, or ConditionError naming
    the clause at fault."""
    name = _clean_name(name)
    record_type = _check_record_type(record_type)
    clauses = validate_conditions(record_type, conditions, user=user)
    now = clock.now()
    view = SavedView(
        owner=user,
        name=name,
        record_type=record_type,
        conditions=conditions_to_json(clauses),
        created_at=now,
        updated_at=now,
    )
    _save(view)
    return view


def do_update_view(
    view: SavedView, *, name: str | None = None, conditions: list[dict] | None = None
) -> SavedView:
    """Rename *view* and/or replace its conditions (validated for its owner); on error
    *view* is left as it was."""
    before = (view.name, view.conditions, view.updated_at)
    new_name = view.name if name is None else _clean_name(name)
    if conditions is not None:
        view.conditions = conditions_to_json(
            validate_conditions(view.record_type, conditions, user=view.owner)
        )
    view.name, view.updated_at = new_name, clock.now()
    try:
        _save(view)
    except ValidationError:
        view.name, view.conditions, view.updated_at = before
        raise
    return view


def do_delete_view(view: SavedView) -> None:
    """Delete *view*; a sequence whose audience named it stops drawing contacts from it."""
    with transaction.atomic():
        view.delete()


def _with_related(queryset: Any, record_type: str) -> Any:
    # The preview shows each record's owner (and a contact's account): fetch them in one query.
    related = ("account", "owner") if record_type == "contact" else ("owner",)
    return queryset.select_related(*related)


def preview(
    user: Any, record_type: str, conditions: list[dict], limit: int = 10
) -> tuple[int, list[Contact | Account]]:
    """How many records match *conditions*, and the first *limit* of them by id."""
    record_type = _check_record_type(record_type)
    if limit < 0:
        raise ValidationError({"limit": "the preview limit cannot be negative"})
    matches = filter_records(record_type, conditions, user=user)
    first = list(_with_related(matches, record_type).order_by("pk")[: min(limit, PREVIEW_MAX)])
    return matches.count(), first


def view_queryset(view: SavedView) -> QuerySet[Any]:
    """The records *view* selects now, read with its owner's conditions ("me" is the owner).

    Raises ConditionError when the stored conditions no longer fit (e.g. a custom field
    they use was deleted)."""
    return filter_records(view.record_type, view.conditions, user=view.owner)
