"""Open and click tracking: the URLs put in emails, recording hits, and raw vs human counts.

Rules (docs/EMAIL.md, "Tracking"):

- A hit with a bad token records nothing: the pixel still answers its GIF, a click
  answers 404 and never redirects.
- A click redirects only to the URL recorded for that message and link index.
- Every hit is kept as an ``EmailEvent``; a hit that looks automated (a HEAD request,
  a known scanner's user agent, or a known image proxy within a minute of sending)
  is flagged ``is_automated``. Metrics and the engine read human events only.
- One event per message (and link) per minute and per kind of visitor, so a reload
  storm stays one row; the first human open or click of a message updates the
  contact's last-contacted fields. Opens and clicks never change an enrollment.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q

from sequent.crm.actions import do_record_activity
from sequent.crm.models import ActivityKind
from sequent.lib import clock
from sequent.mail import tokens
from sequent.mail.models import EmailEvent, EmailEventKind, OutboundMessage, TrackedLink

# A transparent 1x1 GIF.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")

# Substrings (lower case) of user agents that are never a person: link scanners of mail
# security gateways, HTTP libraries, crawlers and previewers.
AUTOMATED_AGENTS = (
    "bot",
    "crawler",
    "spider",
    "preview",
    "scanner",
    "barracuda",
    "proofpoint",
    "mimecast",
    "safelinks",
    "safe links",
    "microsoft defender",
    "messagelabs",
    "symantec",
    "trendmicro",
    "trend micro",
    "forcepoint",
    "ironport",
    "sophos",
    "fortinet",
    "zscaler",
    "headlesschrome",
    "phantomjs",
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "apache-httpclient",
    "node-fetch",
    "axios/",
)
# Image proxies that fetch for a person who opened the email, but may also fetch on
# delivery: a hit from one within PREFETCH_WINDOW of sending is taken as a pre-fetch.
PREFETCH_PROXIES = ("googleimageproxy", "yahoomailproxy", "ymailproxy")
PREFETCH_WINDOW = dt.timedelta(seconds=60)
USER_AGENT_MAX = 500


def base_url() -> str:
    """The public base URL of the app (``SEQUENT_BASE_URL``, no trailing slash)."""
    return str(settings.SEQUENT_BASE_URL).rstrip("/")


def open_url(message_pk: int) -> str:
    """The open pixel URL of an outbound message."""
    return f"{base_url()}/t/o/{tokens.make_open_token(message_pk)}.gif"


def click_url(message_pk: int, index: int) -> str:
    """The click redirect URL of link *index* of an outbound message."""
    return f"{base_url()}/t/c/{tokens.make_click_token(message_pk, index)}"


def unsubscribe_url(message_pk: int) -> str:
    """The unsubscribe page (and RFC 8058 one-click) URL of an outbound message."""
    return f"{base_url()}/u/{tokens.make_unsubscribe_token(message_id=message_pk)}"


def looks_automated(method: str, user_agent: str, since_sent: dt.timedelta | None) -> bool:
    """Whether a hit looks like a machine: HEAD, no user agent, a known scanner or HTTP
    library, or a known image proxy within PREFETCH_WINDOW of sending."""
    if method.upper() == "HEAD":
        return True
    agent = user_agent.lower().strip()
    if not agent:
        return True
    if any(marker in agent for marker in AUTOMATED_AGENTS):
        return True
    if any(proxy in agent for proxy in PREFETCH_PROXIES):
        return since_sent is not None and since_sent < PREFETCH_WINDOW
    return False


def _message(pk: int) -> OutboundMessage | None:
    return (
        OutboundMessage.objects.select_related("contact", "owner")
        .only(
            "pk",
            "contact",
            "owner",
            "enrollment_id",
            "step_id",
            "subject",
            "sent_at",
            "contact__last_contacted_mode",
            "contact__last_activity_type",
            "contact__last_contacted_at",
            "owner__id",
        )
        .filter(pk=pk)
        .first()
    )


def _event(
    message: OutboundMessage, kind: str, key: str, automated: bool, metadata: dict[str, Any], now: dt.datetime
) -> EmailEvent:
    return EmailEvent(
        message_id=message.pk,
        contact_id=message.contact_id,
        enrollment_id=message.enrollment_id,
        step_id=message.step_id,
        kind=kind,
        occurred_at=now,
        is_automated=automated,
        dedupe_key=key,
        metadata=metadata,
    )


def _record(message: OutboundMessage, kind: str, suffix: str, method: str, user_agent: str) -> None:
    """Record one hit of *kind*; the first human open or click of the message also
    becomes an activity. A human click on a message without a human open implies one."""
    now = clock.now()
    since = now - message.sent_at if message.sent_at else None
    automated = looks_automated(method, user_agent, since)
    visitor = "a" if automated else "h"
    minute = now.strftime("%Y%m%d%H%M")
    metadata = {"user_agent": user_agent[:USER_AGENT_MAX], "method": method.upper()}
    with transaction.atomic():
        human_before: set[str] = set()
        if not automated:
            human_before = set(
                EmailEvent.objects.filter(
                    message_id=message.pk, is_automated=False, kind__in=(EmailEventKind.OPENED, kind)
                )
                .values_list("kind", flat=True)
                .distinct()
            )
        events = [
            _event(message, kind, f"{kind}:{message.pk}{suffix}:{minute}:{visitor}", automated, metadata, now)
        ]
        firsts = [] if automated or kind in human_before else [kind]
        if not automated and kind == EmailEventKind.CLICKED and EmailEventKind.OPENED not in human_before:
            implied = {**metadata, "implied_by": "click"}
            events.append(
                _event(message, EmailEventKind.OPENED, f"opened:{message.pk}:{minute}:h", False, implied, now)
            )
            firsts.insert(0, EmailEventKind.OPENED)
        EmailEvent.objects.bulk_create(events, ignore_conflicts=True)
        for first in firsts:
            do_record_activity(
                message.contact,
                ActivityKind.EMAIL_OPENED if first == EmailEventKind.OPENED else ActivityKind.EMAIL_CLICKED,
                user=message.owner,
                occurred_at=now,
                subject=message.subject,
                metadata={"message": message.pk},
            )


def do_record_open(token: str, *, method: str = "GET", user_agent: str = "") -> bool:
    """Record an open pixel hit; False (nothing recorded) for a bad token or unknown message."""
    try:
        pk = tokens.read_open_token(token)
    except tokens.BadToken:
        return False
    message = _message(pk)
    if message is None:
        return False
    _record(message, EmailEventKind.OPENED, "", method, user_agent)
    return True


class UnknownLink(Exception):
    """The click token is valid but names no recorded link."""


def do_record_click(token: str, *, method: str = "GET", user_agent: str = "") -> str:
    """Record a click and return the URL recorded for that link of that message.

    Raises `tokens.BadToken` for a forged or damaged token and `UnknownLink` when no URL
    was recorded for it: the view answers 404, never a redirect. A human click on an
    email with no human open also counts as an open (its images may be blocked).
    """
    pk, index = tokens.read_click_token(token)
    url = TrackedLink.objects.filter(message_id=pk, index=index).values_list("url", flat=True).first()
    message = _message(pk) if url is not None else None
    if url is None or message is None:
        raise UnknownLink(f"no link {index} recorded for message {pk}")
    _record(message, EmailEventKind.CLICKED, f":{index}", method, user_agent)
    return url


@dataclass(frozen=True)
class EmailCounts:
    """Opens and clicks of a step or sequence: messages with any hit (raw) and with a
    hit from a person (human)."""

    opened_raw: int
    opened_human: int
    clicked_raw: int
    clicked_human: int


def email_counts(step_or_sequence: Any) -> EmailCounts:
    """Raw and human open and click counts (distinct messages) of a Step or a Sequence."""
    from sequent.sequences.models import Step

    where = (
        Q(step=step_or_sequence) if isinstance(step_or_sequence, Step) else Q(step__sequence=step_or_sequence)
    )
    opened, clicked = EmailEventKind.OPENED, EmailEventKind.CLICKED
    counts = EmailEvent.objects.filter(where, kind__in=(opened, clicked)).aggregate(
        opened_raw=Count("message", distinct=True, filter=Q(kind=opened)),
        opened_human=Count("message", distinct=True, filter=Q(kind=opened, is_automated=False)),
        clicked_raw=Count("message", distinct=True, filter=Q(kind=clicked)),
        clicked_human=Count("message", distinct=True, filter=Q(kind=clicked, is_automated=False)),
    )
    return EmailCounts(**counts)
