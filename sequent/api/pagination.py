"""The one pagination of the API: ``?page=N&page_size=M`` on every list endpoint.

Decorate a Ninja operation whose ``response`` is ``list[SomeSchema]`` with
``@paginated`` and return an ordered queryset (or a list); the client receives::

    {"items": [...], "count": 120, "page": 2, "pages": 3, "next": "https://.../?page=3&page_size=50"}

The handler keeps full control of filtering and ordering; this module only counts,
slices and builds the link to the next page.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Schema
from ninja.pagination import PaginationBase, paginate

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class PagePagination(PaginationBase):
    """Page-number pagination with a total count and a link to the next page."""

    class Input(Schema):
        page: int = Field(1, ge=1, description="1-based page number")
        page_size: int = Field(
            DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description=f"items per page (max {MAX_PAGE_SIZE})"
        )

    class Output(Schema):
        items: list[Any]
        count: int = Field(description="number of items on all pages")
        page: int
        pages: int = Field(description="number of pages (at least 1)")
        next: str | None = Field(description="URL of the next page, or null on the last page")

    def paginate_queryset(
        self,
        queryset: QuerySet[Any] | Sequence[Any],
        pagination: Any,
        request: HttpRequest,
        **params: Any,
    ) -> dict[str, Any]:
        """Slice one page out of *queryset*: one COUNT and one SELECT for a queryset."""
        page: int = pagination.page
        size: int = pagination.page_size
        count = self._items_count(queryset)  # type: ignore[arg-type]
        pages = max(1, math.ceil(count / size))
        offset = (page - 1) * size
        # A page past the end is empty rather than an error: a list can shrink between two calls.
        items = list(queryset[offset : offset + size]) if offset < count else []
        return {
            "items": items,
            "count": count,
            "page": page,
            "pages": pages,
            "next": page_url(request, page + 1, size) if page < pages else None,
        }


def page_url(request: HttpRequest, page: int, page_size: int) -> str:
    """The absolute URL of *request* with its page parameters replaced."""
    query = request.GET.copy()
    query["page"] = str(page)
    query["page_size"] = str(page_size)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def paginated(func: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for list operations: adds ``page`` / ``page_size`` and the page envelope."""
    return paginate(PagePagination)(func)  # type: ignore[no-any-return]
