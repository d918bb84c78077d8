"""What every list page shares: paging by 50, sorting by ``?sort=`` (``-`` prefix for
descending) and searching by ``?q=``. ``build_listing`` and ``Column`` serve the CRM and
sequence pages alike; the CRM pages themselves are in ``views_contacts``,
``views_accounts``, ``views_imports`` and ``views_lists`` (what contacts and accounts share).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.db.models import F, OrderBy, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sequent.crm.models import (
    CustomField,
)

PAGE_SIZE = 50


@dataclass(frozen=True)
class Column:
    """A list column: its heading and the ``?sort=`` key that orders by it ('' = not sortable)."""

    label: str
    sort: str = ""


@dataclass(frozen=True)
class Heading:
    """A column heading as rendered: the link's next ``sort`` value and the current direction."""

    label: str
    sort: str
    next_sort: str
    direction: str


@dataclass(frozen=True)
class Listing:
    """One page of a list with what the template needs to draw headings, search and pager."""

    page: Page[Any]
    headings: list[Heading]
    sort: str
    q: str


def _order_by(fields: Sequence[str], descending: bool) -> list[OrderBy]:
    # Rows with no value (never contacted, no reply rate yet) go last either way, on
    # SQLite and PostgreSQL alike.
    return [F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_last=True) for name in fields]


def search_queryset(queryset: QuerySet[Any], q: str, fields: Sequence[str]) -> QuerySet[Any]:
    # Every word must appear in one of the fields, so "ada example.com" finds Ada's address.
    for word in q.split():
        match = Q()
        for name in fields:
            match |= Q(**{f"{name}__icontains": word})
        queryset = queryset.filter(match)
    return queryset


def search_and_sort(
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    orderings: Mapping[str, Sequence[str]],
    default_sort: str,
    search_fields: Sequence[str] = (),
) -> tuple[QuerySet[Any], str, str]:
    """*queryset* searched by ``?q=`` and ordered by ``?sort=``, with the q and sort applied."""
    q = request.GET.get("q", "").strip()[:200]
    if q and search_fields:
        queryset = search_queryset(queryset, q, search_fields)
    sort = request.GET.get("sort", default_sort)
    if sort.removeprefix("-") not in orderings:
        sort = default_sort
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    return queryset.order_by(*_order_by([*orderings[key], "pk"], descending)), q, sort


def build_listing(
    request: HttpRequest,
    queryset: QuerySet[Any],
    *,
    columns: Sequence[Column],
    orderings: Mapping[str, Sequence[str]],
    default_sort: str,
    search_fields: Sequence[str] = (),
) -> Listing:
    """Search, sort and page *queryset* from ``?q=``, ``?sort=`` and ``?page=``.

    *orderings* maps each sort key to the fields it orders by (the primary key is
    appended so pages are stable); an unknown key falls back to *default_sort*.
    """
    queryset, q, sort = search_and_sort(
        request, queryset, orderings=orderings, default_sort=default_sort, search_fields=search_fields
    )
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    headings = []
    for column in columns:
        active = column.sort and column.sort == key
        headings.append(
            Heading(
                label=column.label,
                sort=column.sort,
                next_sort=("" if descending else "-") + column.sort if active else column.sort,
                direction=("desc" if descending else "asc") if active else "",
            )
        )
    return Listing(page=page, headings=headings, sort=sort, q=q)


def custom_values(record_type: str, custom: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, value) of each custom field a record carries, defined fields first by label."""
    labels = dict(
        CustomField.objects.filter(record_type=record_type, key__in=list(custom)).values_list("key", "label")
    )
    known = sorted((label, custom[key]) for key, label in labels.items())
    unknown = sorted((key, value) for key, value in custom.items() if key not in labels)
    return known + unknown


Record = TypeVar("Record")


def save_record(form: Any, action: Callable[[dict[str, Any]], Record]) -> Record | None:
    """Run a contact or account form's data through its action; the record, or None with
    the form's own or the action's errors attached to their fields."""
    if not form.is_valid():
        return None
    try:
        return action(form.action_data())
    except ValidationError as exc:
        form.add_action_errors(exc)
        return None


def render_record_form(request: HttpRequest, form: Any, title: str, cancel_url: str) -> HttpResponse:
    """The create/edit page of a contact or account; 400 while the form holds errors."""
    return render(
        request,
        "crm/record_form.html",
        {"form": form, "title": title, "cancel_url": cancel_url},
        status=400 if form.errors else 200,
    )
