"""The REST API under /api/v1/. Each app contributes a router from its `api` module.

Every refusal has one shape: 422 ``{"detail": "validation failed", "errors": [{"field", "reason"}]}``
for bad input (schema errors, action ValidationErrors, condition errors), 403
``{"detail": reason}`` for a permission a user can learn they lack, 404
``{"detail": "Not Found"}`` for what a user may not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import ValidationError as NinjaValidationError

from sequent.api.auth import AUTH
from sequent.crm.conditions import ConditionError

api = NinjaAPI(
    title="Sequent API",
    version="1",
    urls_namespace="api-v1",
    auth=AUTH,
    docs_url="/docs",
    openapi_url="/openapi.json",
)

# Ninja's error locations start with where a value came from, then (for a schema
# parameter) the parameter's name; the client only needs the field path after them.
_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}
_CONTAINERS = {"payload", "ninja_pagination"}


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "payload", "custom", "budget")`` -> ``"custom.budget"``."""
    parts = list(loc)
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    if parts and parts[0] in _CONTAINERS:
        parts = parts[1:]
    return ".".join(str(part) for part in parts)


def validation_response(request: HttpRequest, errors: list[dict[str, str]]) -> HttpResponse:
    """The one 422 body: each problem as a field path and a reason."""
    return api.create_response(request, {"detail": "validation failed", "errors": errors}, status=422)


@api.exception_handler(NinjaValidationError)
def validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    """422 for input that does not fit the schema."""
    errors = [
        {"field": field_path(error.get("loc", ())), "reason": error.get("msg", "invalid")}
        for error in exc.errors
    ]
    return validation_response(request, errors)


@api.exception_handler(DjangoValidationError)
def action_validation_error(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    """422 for input an action refused (``ValidationError({field: reason})``)."""
    if hasattr(exc, "error_dict"):
        errors = [
            {"field": "" if field == NON_FIELD_ERRORS else field, "reason": reason}
            for field, reasons in exc.message_dict.items()
            for reason in reasons
        ]
    else:
        errors = [{"field": "", "reason": reason} for reason in exc.messages]
    return validation_response(request, errors)


@api.exception_handler(ConditionError)
def condition_error(request: HttpRequest, exc: ConditionError) -> HttpResponse:
    """422 naming the refused clause as ``conditions[<0-based index>]`` (or ``conditions``)."""
    field = "conditions" if exc.index is None else f"conditions[{exc.index}]"
    return validation_response(request, [{"field": field, "reason": str(exc)}])


@api.exception_handler(OverflowError)
def number_too_large(request: HttpRequest, exc: OverflowError) -> HttpResponse:
    """422 for an id or number beyond what the database stores (SQLite refuses it)."""
    return validation_response(request, [{"field": "", "reason": "a number is too large"}])


@csrf_exempt  # it changes nothing; a token client must get this 404, not a CSRF page
def unknown_path(request: HttpRequest, rest: str = "") -> HttpResponse:
    """The JSON 404 for a path under /api/ that no operation matches (e.g. a negative id)."""
    return JsonResponse({"detail": "Not Found"}, status=404)


@api.exception_handler(PermissionDenied)
def permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    """403 with the reason, for objects the user can see but may not change."""
    return api.create_response(request, {"detail": str(exc) or "Forbidden"}, status=403)


def register_routers() -> None:
    """Attach each app's router; imported lazily so apps can import models freely."""
    from sequent.crm.api import router as crm_router
    from sequent.crm.api_imports import router as imports_router
    from sequent.mail.api import router as mail_router
    from sequent.sequences.api import router as sequences_router
    from sequent.sms.api import router as sms_router
    from sequent.tasks.api import router as tasks_router
    from sequent.users.api import router as users_router

    api.add_router("/", users_router)
    api.add_router("/", crm_router)
    api.add_router("/imports", imports_router)
    api.add_router("/sequences", sequences_router)
    api.add_router("/", mail_router)
    api.add_router("/tasks", tasks_router)
    api.add_router("/sms", sms_router)
