"""API authentication: bearer tokens, or the browser session (which then needs CSRF)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth
from ninja.utils import check_csrf

from sequent.users.actions import check_token


class TokenAuth(HttpBearer):
    """``Authorization: Bearer sq_...``; a revoked token or an inactive user is refused (401)."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = check_token(token)
        if user is not None:
            request.user = user
        return user


class ActiveSessionAuth(SessionAuth):
    """The browser session of an active user; unsafe methods need the CSRF token.

    CSRF is checked only once a session user is found: a request with neither a
    session nor a valid token is simply unauthenticated (401), not a CSRF failure.
    """

    def _get_key(self, request: HttpRequest) -> str | None:
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is None or not getattr(user, "is_active", False):
            return None
        if self.csrf and not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the csrftoken cookie's value in X-CSRFToken")
        return user


AUTH = [TokenAuth(), ActiveSessionAuth()]
