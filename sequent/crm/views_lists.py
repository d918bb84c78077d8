"""What the contact and account lists share: the condition builder (its rows are drawn
by htmx one at a time), saved views, and the CSV export of the filtered list.

A list's whole state (conditions, match, view, search, sort, page) is its query string,
so the export, the pager and "Save as view" all read the same list the user sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from sequent.crm import exports, filters, saved_views
from sequent.crm.conditions import MAX_CLAUSES, ConditionError, field_catalog
from sequent.crm.models import RECORD_ACCOUNT, RECORD_CONTACT, SavedView
from sequent.crm.views import Column, Listing, build_listing, search_and_sort, search_queryset
from sequent.lib import clock
from sequent.sequences.models import Sequence as SalesSequence
from sequent.users import access


@dataclass(frozen=True)
class ListKind:
    """How one record type is listed."""

    record_type: str
    columns: Sequence[Column]
    orderings: Mapping[str, Sequence[str]]
    search_fields: Sequence[str]
    list_url: str
    default_sort: str = "name"


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
KINDS = {
    RECORD_CONTACT: ListKind(
        RECORD_CONTACT,
        CONTACT_COLUMNS,
        CONTACT_ORDERINGS,
        ("first_name", "last_name", "email"),
        "crm:contacts",
    ),
    RECORD_ACCOUNT: ListKind(
        RECORD_ACCOUNT, ACCOUNT_COLUMNS, ACCOUNT_ORDERINGS, ("name", "domain"), "crm:accounts"
    ),
}


def _kind(record_type: str) -> ListKind:
    kind = KINDS.get(record_type)
    if kind is None:
        raise Http404("not found")
    return kind


def _base_queryset(record_type: str, matching: QuerySet[Any]) -> QuerySet[Any]:
    if record_type == RECORD_CONTACT:
        return matching.select_related("account", "owner")
    return matching.annotate(contact_count=Count("contacts"))


def filtered(
    request: HttpRequest, params: QueryDict, record_type: str
) -> tuple[filters.Builder, QuerySet[Any]]:
    """The builder of *params* and the records it selects (not yet searched or sorted)."""
    builder = filters.read_builder(params, record_type, request.user)
    return builder, _base_queryset(record_type, filters.matching(builder, request.user))


def own_sequences(user: Any) -> list[SalesSequence]:
    """The user's sequences by name, for the "Sales sequence" condition (none without the
    permission to see sequences)."""
    if not access.has_perm(user, access.VIEW_SEQUENCES):
        return []
    return list(access.scope(SalesSequence.objects.order_by("name", "id"), user).only("id", "name", "status"))


def list_context(request: HttpRequest, record_type: str) -> tuple[dict[str, Any], Listing]:
    """What a contact or account list page shows: the page of records, the builder and
    the user's saved views of that record type."""
    kind = _kind(record_type)
    builder, queryset = filtered(request, request.GET, record_type)
    listing = build_listing(
        request,
        queryset,
        columns=kind.columns,
        orderings=kind.orderings,
        default_sort=kind.default_sort,
        search_fields=kind.search_fields,
    )
    views = access.scope(SavedView.objects.filter(record_type=record_type), request.user).order_by(
        "name", "id"
    )
    sequences = own_sequences(request.user)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "listing": listing,
        "builder": builder,
        "saved_views": list(views),
        "sequences": sequences,
        "status_choices": filters.STATUS_CHOICES,
        "record_type": record_type,
        "max_clauses": MAX_CLAUSES,
        "query": query.urlencode(),
        "can_export": access.has_perm(request.user, access.EXPORT_RECORDS),
        "can_import": access.has_perm(request.user, access.IMPORT_RECORDS),
        "filtering": builder.active or bool(listing.q),
        "blank_row": filters.Row(field=""),
    }
    return context, listing


@login_required
def condition_row(request: HttpRequest, record_type: str) -> HttpResponse:
    """One builder row for htmx: a new one (``?new=1``) or the row redrawn after its
    field or operator changed, with the operators and value input that fit the field."""
    _kind(record_type)
    catalog = field_catalog(record_type)
    specs = {spec.name: spec for spec in catalog}
    if request.GET.get("new"):
        row = filters.Row(field=catalog[0].name)
    else:
        rows = filters.read_rows(request.GET) or [filters.Row(field=catalog[0].name)]
        row = rows[0]
    filters.describe_rows([row], specs, reset=True)
    return render(
        request,
        "crm/_clause.html",
        {
            "row": row,
            "catalog": catalog,
            "record_type": record_type,
            "sequences": own_sequences(request.user),
            "status_choices": filters.STATUS_CHOICES,
        },
    )


def _back(request: HttpRequest, record_type: str, query: str = "") -> HttpResponse:
    url = reverse(_kind(record_type).list_url)
    return redirect(f"{url}?{query}" if query else url)


@require_POST
@login_required
def view_save(request: HttpRequest, record_type: str) -> HttpResponse:
    """Save the list's current conditions (posted as ``query``) as one of the user's views."""
    query = request.POST.get("query", "")
    params = QueryDict(query)
    builder = filters.read_builder(params, record_type, request.user)
    try:
        view = filters.save_view(request.user, request.POST.get("name", ""), builder)
    except (ValidationError, ConditionError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        messages.error(request, f"The view was not saved: {reason}")
        return _back(request, record_type, query)
    messages.success(request, f"Saved the view “{view.name}”.")
    return _back(request, record_type, urlencode({"view": view.pk}))


@require_POST
@login_required
def view_delete(request: HttpRequest, record_type: str, view_id: int) -> HttpResponse:
    """Delete one of the user's own views (another user's answers 404)."""
    view = filters.own_view(request.user, str(view_id), record_type)
    assert view is not None
    name = view.name
    saved_views.do_delete_view(view)
    messages.success(request, f"Deleted the view “{name}”.")
    return _back(request, record_type)


@login_required
def export_csv(request: HttpRequest, record_type: str) -> StreamingHttpResponse:
    """The list as the user filtered, searched and sorted it, as a streamed CSV file."""
    access.require_perm(request.user, access.EXPORT_RECORDS)
    kind = _kind(record_type)
    builder, queryset = filtered(request, request.GET, record_type)
    if builder.has_errors:
        raise Http404("not found")
    queryset, _, _ = search_and_sort(
        request,
        queryset,
        orderings=kind.orderings,
        default_sort=kind.default_sort,
        search_fields=kind.search_fields,
    )
    records = (
        exports.contact_records(queryset)
        if record_type == RECORD_CONTACT
        else exports.account_records(queryset)
    )
    response = StreamingHttpResponse(exports.stream_csv(records), content_type="text/csv; charset=utf-8")
    name = f"{record_type}s-{clock.now():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def matching_ids(request: HttpRequest, query: str, record_type: str) -> list[int]:
    """The ids of every record of the list *query* describes (its conditions and search)."""
    kind = _kind(record_type)
    params = QueryDict(query)
    builder, queryset = filtered(request, params, record_type)
    if builder.has_errors:
        return []
    q = params.get("q", "").strip()[:200]
    if q:
        queryset = search_queryset(queryset, q, kind.search_fields)
    return list(queryset.order_by().values_list("pk", flat=True))
