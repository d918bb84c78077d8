"""Read-only pages of the CRM: contact, account and import lists with their detail pages.

Every list pages by 50, sorts by ``?sort=`` (``-`` prefix for descending) and searches
by ``?q=``; the helpers ``build_listing`` and ``Column`` are shared with the sequence pages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import Count, F, OrderBy, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from sequent.crm import imports
from sequent.crm.models import (
    RECORD_ACCOUNT,
    RECORD_CONTACT,
    Account,
    Contact,
    CustomField,
    ImportJob,
    ImportStatus,
)
from sequent.sequences.models import IN_FLIGHT, Enrollment
from sequent.users import access

PAGE_SIZE = 50
TIMELINE_SIZE = 50
BAD_ROWS_SHOWN = 100


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


def _search(queryset: QuerySet[Any], q: str, fields: Sequence[str]) -> QuerySet[Any]:
    # Every word must appear in one of the fields, so "ada example.com" finds Ada's address.
    for word in q.split():
        match = Q()
        for name in fields:
            match |= Q(**{f"{name}__icontains": word})
        queryset = queryset.filter(match)
    return queryset


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
    q = request.GET.get("q", "").strip()[:200]
    if q and search_fields:
        queryset = _search(queryset, q, search_fields)
    sort = request.GET.get("sort", default_sort)
    if sort.removeprefix("-") not in orderings:
        sort = default_sort
    key, descending = sort.removeprefix("-"), sort.startswith("-")
    queryset = queryset.order_by(*_order_by([*orderings[key], "pk"], descending))
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


CONTACT_COLUMNS = (
    Column("Name", "name"),
    Column("Email", "email"),
    Column("Account", "account"),
    Column("Last contacted"),
    Column("Last contacted at", "contacted"),
    Column("Owner", "owner"),
)
CONTACT_ORDERINGS = {
    "name": ("last_name", "first_name"),
    "email": ("email",),
    "account": ("account__name",),
    "contacted": ("last_contacted_at",),
    "owner": ("owner__email",),
}


@login_required
def contact_list(request: HttpRequest) -> HttpResponse:
    """All contacts of the workspace, 50 a page."""
    listing = build_listing(
        request,
        Contact.objects.select_related("account", "owner"),
        columns=CONTACT_COLUMNS,
        orderings=CONTACT_ORDERINGS,
        default_sort="name",
        search_fields=("first_name", "last_name", "email"),
    )
    return render(request, "crm/contact_list.html", {"listing": listing})


@login_required
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    """One contact: its fields, tags, custom fields, activity timeline and, for a user who
    may see sequences, its current enrollments in that user's own sequences."""
    contact = get_object_or_404(Contact.objects.select_related("account", "owner"), pk=contact_id)
    activities = contact.activities.select_related("user", "custom_type").order_by("-occurred_at", "-id")
    enrollments: QuerySet[Enrollment] | None = None
    if access.has_perm(request.user, access.VIEW_SEQUENCES):
        enrollments = (
            access.scope(Enrollment.objects.filter(contact=contact, status__in=IN_FLIGHT), request.user)
            .select_related("sequence")
            .order_by("sequence__name", "id")
        )
    return render(
        request,
        "crm/contact_detail.html",
        {
            "contact": contact,
            "tags": list(contact.tags.order_by("name")),
            "custom": custom_values(RECORD_CONTACT, contact.custom),
            "activities": list(activities[:TIMELINE_SIZE]),
            "enrollments": enrollments,
        },
    )


ACCOUNT_COLUMNS = (
    Column("Name", "name"),
    Column("Domain", "domain"),
    Column("Industry", "industry"),
    Column("Contacts", "contacts"),
)
ACCOUNT_ORDERINGS = {
    "name": ("name",),
    "domain": ("domain",),
    "industry": ("industry",),
    "contacts": ("contact_count",),
}


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    """All accounts with their number of contacts, 50 a page."""
    listing = build_listing(
        request,
        Account.objects.annotate(contact_count=Count("contacts")),
        columns=ACCOUNT_COLUMNS,
        orderings=ACCOUNT_ORDERINGS,
        default_sort="name",
        search_fields=("name", "domain"),
    )
    return render(request, "crm/account_list.html", {"listing": listing})


@login_required
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    """One account: its fields and its contacts, 50 a page."""
    account = get_object_or_404(Account.objects.select_related("owner"), pk=account_id)
    listing = build_listing(
        request,
        Contact.objects.filter(account=account).select_related("owner"),
        columns=[c for c in CONTACT_COLUMNS if c.sort != "account"],
        orderings=CONTACT_ORDERINGS,
        default_sort="name",
        search_fields=("first_name", "last_name", "email"),
    )
    return render(
        request,
        "crm/account_detail.html",
        {"account": account, "custom": custom_values(RECORD_ACCOUNT, account.custom), "listing": listing},
    )


IMPORT_COLUMNS = (
    Column("File", "file"),
    Column("Type"),
    Column("Status", "status"),
    Column("Rows", "rows"),
    Column("Created"),
    Column("Updated"),
    Column("Skipped"),
    Column("Errors", "errors"),
    Column("Started", "created"),
)
IMPORT_ORDERINGS = {
    "file": ("file_name",),
    "status": ("status",),
    "rows": ("rows_seen",),
    "errors": ("error_count",),
    "created": ("created_at",),
}


@login_required
def import_list(request: HttpRequest) -> HttpResponse:
    """The user's own CSV imports, newest first."""
    access.require_perm(request.user, access.IMPORT_RECORDS)
    listing = build_listing(
        request,
        access.scope(ImportJob.objects.all(), request.user),
        columns=IMPORT_COLUMNS,
        orderings=IMPORT_ORDERINGS,
        default_sort="-created",
        search_fields=("file_name",),
    )
    return render(request, "crm/import_list.html", {"listing": listing})


@login_required
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    """One import: progress, counts, what was detected, and the first 100 bad rows."""
    access.require_perm(request.user, access.IMPORT_RECORDS)
    job: ImportJob = access.access_object(ImportJob, request.user, pk=job_id)
    return render(
        request,
        "crm/import_detail.html",
        {
            "job": job,
            "percent": imports.percent_done(job),
            "in_progress": job.status in (ImportStatus.PENDING, ImportStatus.RUNNING),
            "bad_rows": list(job.row_errors.order_by("line", "id")[:BAD_ROWS_SHOWN]),
        },
    )
