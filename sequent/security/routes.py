"""Every route the app answers, read from the URL resolver and the API's OpenAPI schema.

The security suites are generated from these lists, so a page or endpoint added later
is checked without anyone remembering to add it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

API_NAMESPACE = "api-v1"
API_PREFIX = "/api/v1"
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

# `<int:contact_id>` in a Django route, `{contact_id}` in an OpenAPI path.
_DJANGO_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_API_PARAM = re.compile(r"\{(?P<name>[^}]+)\}")


@dataclass(frozen=True)
class PageRoute:
    """One Django page route: its full pattern (``contacts/<int:contact_id>/``) and name."""

    pattern: str
    name: str
    params: tuple[str, ...]

    def url(self, values: dict[str, Any]) -> str:
        """The path with each ``<...>`` replaced by *values*[name]."""
        return "/" + _DJANGO_PARAM.sub(lambda m: str(values[m.group("name")]), self.pattern)


@dataclass(frozen=True)
class ApiRoute:
    """One API operation: method, OpenAPI path (``/api/v1/contacts/{contact_id}``), tags."""

    method: str
    path: str
    operation_id: str
    tags: tuple[str, ...]
    params: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, values: dict[str, Any]) -> str:
        return _API_PARAM.sub(lambda m: str(values[m.group("name")]), self.path)


def _walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[tuple[str, str, str]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name or ""
            yield prefix + str(entry.pattern), name, namespace


def page_routes() -> list[PageRoute]:
    """Every Django route outside the API (the API is listed by `api_routes`)."""
    routes = []
    for pattern, name, namespace in _walk(get_resolver().url_patterns, "", ""):
        if namespace == API_NAMESPACE or pattern.lstrip("^").startswith("api/"):
            continue
        params = tuple(m.group("name") for m in _DJANGO_PARAM.finditer(pattern))
        routes.append(PageRoute(pattern=pattern, name=name or pattern, params=params))
    return routes


def api_schema() -> dict[str, Any]:
    """The API's OpenAPI schema, as served at /api/v1/openapi.json."""
    import sequent.urls  # noqa: F401  (attaches the routers)
    from sequent.api.root import api

    return api.get_openapi_schema(path_prefix=API_PREFIX + "/")


def api_routes() -> list[ApiRoute]:
    """Every operation of the API's OpenAPI schema."""
    routes = []
    for path, operations in api_schema()["paths"].items():
        for method, operation in operations.items():
            routes.append(
                ApiRoute(
                    method=method.upper(),
                    path=path,
                    operation_id=operation.get("operationId", ""),
                    tags=tuple(operation.get("tags", ())),
                    params=tuple(m.group("name") for m in _API_PARAM.finditer(path)),
                )
            )
    return routes
