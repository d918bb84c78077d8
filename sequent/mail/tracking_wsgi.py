"""The tracking endpoints (/t/) served in front of Django's middleware.

An open pixel or a click needs no session, user, CSRF token or messages, yet
Django's middleware stack costs more than the view itself. `with_tracking` wraps
the WSGI application: paths under /t/ go straight to the tracking views (the same
functions, the same responses, the ORM as usual); everything else goes to Django
untouched. Database connections of the tracking path stay open between hits and
are closed only when broken (docs/EMAIL.md, "Throughput").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

from django.core.handlers.wsgi import WSGIRequest
from django.db import connections
from django.http import HttpResponse

from sequent.mail import views

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The same shapes as sequent/mail/urls.py ("t/o/<token>.gif", "t/c/<token>").
_OPEN = re.compile(r"/t/o/([^/]+)\.gif")
_CLICK = re.compile(r"/t/c/([^/]+)")


def _release_broken_connections() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.errors_occurred and not conn.is_usable():
            conn.close()


def _respond(response: HttpResponse, start_response: Callable[..., Any], head: bool) -> list[bytes]:
    # As CommonMiddleware would: a length, so the connection is kept without chunking.
    body = response.content
    response.headers["Content-Length"] = str(len(body))
    start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
    return [] if head else [body]


def with_tracking(app: WSGIApp) -> WSGIApp:
    """*app* with /t/o/ and /t/c/ answered by the tracking views without middleware."""

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/t/"):
            return app(environ, start_response)
        opened = _OPEN.fullmatch(path)
        clicked = None if opened else _CLICK.fullmatch(path)
        if opened is None and clicked is None:
            return app(environ, start_response)
        try:
            request = WSGIRequest(environ)
            if opened is not None:
                response = views.open_pixel(request, opened.group(1))
            else:
                assert clicked is not None
                response = views.click(request, clicked.group(1))
        except Exception:
            log.exception("tracking request failed: %s", path)
            for conn in connections.all(initialized_only=True):
                conn.close()
            response = HttpResponse("Server error", status=500, content_type="text/plain")
        else:
            _release_broken_connections()
        return _respond(response, start_response, environ.get("REQUEST_METHOD") == "HEAD")

    return application
