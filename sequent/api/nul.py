"""Refuse NUL characters in API input with the one 422 shape.

PostgreSQL stores no NUL in text or JSON, so such a value would otherwise fail in
the database with a 500. Ninja wraps any error raised while parsing a body into a
bare 400, hence a middleware in front of the API rather than a parser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from django.http import HttpRequest, HttpResponse, JsonResponse

REASON = "must not contain a NUL character"


def nul_fields(value: Any, path: str = "") -> list[str]:
    """The field paths (``custom.note``, ``tags.1``) of strings holding a NUL character."""
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    items: list[tuple[Any, Any]]
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return []
    return [found for key, item in items for found in nul_fields(item, f"{path}.{key}" if path else str(key))]


class RefuseNulMiddleware:
    """422 ``{detail, errors: [{field, reason}]}`` for a NUL in an API body or query."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            fields = self._fields(request)
            if fields:
                errors = [{"field": field, "reason": REASON} for field in fields]
                return JsonResponse({"detail": "validation failed", "errors": errors}, status=422)
        return self.get_response(request)

    @staticmethod
    def _fields(request: HttpRequest) -> list[str]:
        fields: list[str] = []
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query:
            fields += [key for key, value in parse_qsl(query, keep_blank_values=True) if "\x00" in value]
        # JSON escapes a NUL as \u0000; a raw NUL byte is not JSON and Ninja refuses it.
        if request.content_type == "application/json" and b"\\u0000" in request.body:
            try:
                fields += nul_fields(json.loads(request.body))
            except ValueError:
                pass
        return fields
