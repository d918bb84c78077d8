"""The REST API under /api/v1/. Each app contributes a router from its `api` module."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationError as NinjaValidationError

from sequent.api.auth import AUTH

api = NinjaAPI(
    title="Sequent API",
    version="1",
    urls_namespace="api-v1",
    auth=AUTH,
    docs_url="/docs",
    openapi_url="/openapi.json",
)


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    """422 with, for each problem, the field path and the reason."""
    errors = []
    for error in exc.errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("body", "payload")]
        errors.append({"field": ".".join(loc), "reason": error.get("msg", "invalid")})
    return api.create_response(request, {"detail": "validation failed", "errors": errors}, status=422)


def register_routers() -> None:
    """Attach each app's router; imported lazily so apps can import models freely."""
    from sequent.crm.api import router as crm_router
    from sequent.crm.api_imports import router as imports_router
    from sequent.sequences.api import router as sequences_router
    from sequent.users.api import router as users_router

    api.add_router("/", users_router)
    api.add_router("/", crm_router)
    api.add_router("/imports", imports_router)
    api.add_router("/sequences", sequences_router)
