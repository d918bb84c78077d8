"""CSV exports of contact and account lists, streamed a chunk of rows at a time.

Every text cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) gets a leading ``'`` so that opening an export
never runs what somebody typed into a contact (CSV injection).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.db.models import Prefetch, QuerySet

from sequent.crm.models import RECORD_ACCOUNT, RECORD_CONTACT, Account, Contact, CustomField, Tag

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 2000


def neutralise(value: Any) -> Any:
    """*value* safe to open in a spreadsheet: text starting like a formula gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    """A file-like object whose ``write`` returns what it is given (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def stream_csv(records: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV text of *records* (the first being the header), one line at a time, neutralised."""
    writer = csv.writer(_Echo())
    for record in records:
        yield writer.writerow([neutralise(cell) for cell in record])


def _custom_columns(record_type: str) -> list[tuple[str, str]]:
    return list(
        CustomField.objects.filter(record_type=record_type)
        .order_by("label", "key")
        .values_list("key", "label")
    )


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


CONTACT_HEADER = [
    "id",
    "first_name",
    "last_name",
    "email",
    "mobile",
    "job_title",
    "account",
    "country",
    "time_zone",
    "tags",
    "owner",
    "email_status",
    "email_opt_out",
    "sms_opt_out",
    "last_contacted_mode",
    "last_activity_type",
    "last_contacted_at",
    "created_at",
]


def contact_records(queryset: QuerySet[Contact]) -> Iterator[list[Any]]:
    """The header, then one record per contact of *queryset* in its order (tags, account
    and owner fetched a chunk at a time, never per row)."""
    customs = _custom_columns(RECORD_CONTACT)
    yield [*CONTACT_HEADER, *(label for _, label in customs)]
    rows = queryset.select_related("account", "owner").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.only("id", "name").order_by("name"))
    )
    for c in rows.iterator(chunk_size=CHUNK_ROWS):
        custom = c.custom or {}
        yield [
            c.pk,
            c.first_name,
            c.last_name,
            c.email,
            c.mobile,
            c.job_title,
            c.account.name if c.account else "",
            c.country,
            c.time_zone,
            ", ".join(t.name for t in c.tags.all()),
            c.owner.email if c.owner else "",
            c.email_status,
            _text(c.email_opt_out),
            _text(c.sms_opt_out),
            c.get_last_contacted_mode_display(),
            c.last_activity_type,
            c.last_contacted_at.isoformat() if c.last_contacted_at else "",
            c.created_at.isoformat(),
            *(_text(custom.get(key)) for key, _ in customs),
        ]


ACCOUNT_HEADER = ["id", "name", "domain", "industry", "owner", "contacts", "created_at"]


def account_records(queryset: QuerySet[Account]) -> Iterator[list[Any]]:
    """The header, then one record per account of *queryset* (annotated ``contact_count``)."""
    customs = _custom_columns(RECORD_ACCOUNT)
    yield [*ACCOUNT_HEADER, *(label for _, label in customs)]
    for a in queryset.select_related("owner").iterator(chunk_size=CHUNK_ROWS):
        custom = a.custom or {}
        yield [
            a.pk,
            a.name,
            a.domain,
            a.industry,
            a.owner.email if a.owner else "",
            getattr(a, "contact_count", ""),
            a.created_at.isoformat(),
            *(_text(custom.get(key)) for key, _ in customs),
        ]
