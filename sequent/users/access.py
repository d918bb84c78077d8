"""The one place that decides who may see and change what.

Permission checks and per-user scoping both answer "not found" for what a user
may not see, so that nobody learns an object exists by being refused it.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.http import Http404

M = TypeVar("M", bound=models.Model)

VIEW_SEQUENCES = "view_sales_sequences"
CREATE_SEQUENCES = "create_sales_sequences"
EDIT_SEQUENCES = "edit_sales_sequences"
DELETE_SEQUENCES = "delete_sales_sequences"
IMPORT_RECORDS = "import_records"
EXPORT_RECORDS = "export_records"
MANAGE_USERS = "manage_users"
MANAGE_WORKSPACE = "manage_workspace"


def has_perm(user: Any, codename: str) -> bool:
    """Whether *user* holds the workspace permission *codename*."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.has_perm(f"users.{codename}"))


def require_perm(user: Any, codename: str) -> None:
    """Raise 404 unless *user* holds *codename*: a missing permission hides the feature."""
    if not has_perm(user, codename):
        raise Http404("not found")


def owner_field(model: type[models.Model]) -> str:
    """The lookup from *model* to the user who owns it (``owner`` unless the model
    declares ``owner_lookup``, e.g. ``"sequence__owner"`` for an enrollment)."""
    return getattr(model, "owner_lookup", "owner")


def scope(queryset: models.QuerySet[M], user: Any) -> models.QuerySet[M]:
    """Restrict *queryset* to the rows *user* owns."""
    if user is None or not user.is_authenticated:
        return queryset.none()
    return queryset.filter(**{owner_field(queryset.model): user})


def access_object(queryset: models.QuerySet[M] | type[M], user: Any, **lookup: Any) -> M:
    """Fetch one object *user* owns, or raise 404 (never 403, never data)."""
    qs = queryset if isinstance(queryset, models.QuerySet) else queryset._default_manager.all()
    try:
        return scope(qs, user).get(**lookup)
    except (ObjectDoesNotExist, ValueError, TypeError, OverflowError) as exc:
        raise Http404("not found") from exc
