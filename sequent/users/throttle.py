"""Login throttling against password guessing.

Failed log-ins are counted per typed email and per client IP over a sliding window
(settings ``SEQUENT_LOGIN_WINDOW_SECONDS``, default 15 minutes). Once an email has
``SEQUENT_LOGIN_MAX_FAILURES`` (5) failures in the window, or an IP has
``SEQUENT_LOGIN_MAX_FAILURES_PER_IP`` (20), further attempts are refused without
checking the password until the oldest counted failure leaves the window. The counts
live in the database so every web process sees the same ones.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest

from sequent.lib import clock
from sequent.users.models import LoginFailure


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.SEQUENT_LOGIN_WINDOW_SECONDS)


def client_ip(request: HttpRequest) -> str:
    """The address the request came from (the proxy's, when a proxy stands in front)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def _blocked_until(failures: QuerySet[LoginFailure], limit: int, now: dt.datetime) -> dt.datetime | None:
    # With n >= limit failures in the window, attempts resume when the (n - limit + 1)-th
    # oldest leaves it: that is the limit-th newest.
    edge = failures.filter(at__gt=now - _window()).order_by("-at").values_list("at", flat=True)
    oldest_that_counts = edge[limit - 1 : limit].first()
    return oldest_that_counts + _window() if oldest_that_counts else None


def retry_after(email: str, ip: str) -> int | None:
    """Seconds until *email* may try again from *ip*, or None when an attempt is allowed now."""
    now = clock.now()
    until = [
        moment
        for moment in (
            _blocked_until(LoginFailure.objects.filter(email=email), settings.SEQUENT_LOGIN_MAX_FAILURES, now),
            _blocked_until(LoginFailure.objects.filter(ip=ip), settings.SEQUENT_LOGIN_MAX_FAILURES_PER_IP, now),
        )
        if moment is not None and moment > now
    ]
    if not until:
        return None
    return max(1, math.ceil((max(until) - now).total_seconds()))


def record_failure(email: str, ip: str) -> None:
    """Count one failed log-in, and forget failures that have left the window."""
    now = clock.now()
    LoginFailure.objects.filter(at__lte=now - _window()).delete()
    LoginFailure.objects.create(email=email[:254], ip=ip[:45], at=now)


def clear_failures(email: str, ip: str) -> None:
    """After a successful log-in: forget this account's failures from this address only,
    so the IP keeps counting what it tried against other accounts."""
    LoginFailure.objects.filter(email=email, ip=ip).delete()


def refusal_message(seconds: int) -> str:
    """What the login page says while attempts are refused."""
    minutes = math.ceil(seconds / 60)
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"Too many failed log-in attempts. Try again in {wait}."
