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
import functools
import threading
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q

from sequent.crm.models import ActivityKind
from sequent.lib import clock
from sequent.lib.bulk import insert_rows
from sequent.mail import tokens
from sequent.mail.actions import EmailActivity, do_record_email_activities
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


# The hit path runs a few fixed statements written once from the models' own table and
# column names: the ORM spent about 1 ms compiling each query, 30 times the query itself.
_MESSAGE_FIELDS = ("contact_id", "owner_id", "enrollment_id", "step_id", "subject", "sent_at")
_EVENT_FIELDS = (
    "message_id",
    "contact_id",
    "enrollment_id",
    "step_id",
    "kind",
    "occurred_at",
    "is_automated",
    "dedupe_key",
    "metadata",
)


@functools.cache
def _sql() -> dict[str, str]:
    message, event = OutboundMessage._meta, EmailEvent._meta
    quote = connection.ops.quote_name

    def column(meta: Any, name: str) -> str:
        return quote(meta.get_field(name.removesuffix("_id")).column)

    selected = ", ".join(column(message, name) for name in _MESSAGE_FIELDS)
    by_pk = f"{quote(str(message.pk.column))} = %s"
    kind, of_message = column(event, "kind"), column(event, "message")
    human = f"{column(event, 'is_automated')} = %s AND {kind} IN (%s, %s) AND {of_message} IN "
    link = TrackedLink._meta
    link_where = f"{column(link, 'message')} = %s AND {column(link, 'index')} = %s"
    return {
        "link": f"SELECT {column(link, 'url')} FROM {quote(link.db_table)} WHERE {link_where}",  # noqa: S608
        "message": f"SELECT {selected} FROM {quote(message.db_table)} WHERE {by_pk}",  # noqa: S608 - model names
        "human": f"SELECT DISTINCT {of_message}, {kind} FROM {quote(event.db_table)} WHERE {human}",  # noqa: S608
    }


def _message(pk: int) -> OutboundMessage | None:
    with connection.cursor() as cursor:
        cursor.execute(_sql()["message"], [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = dict(zip(_MESSAGE_FIELDS, row, strict=True))
    sent_at = values["sent_at"]
    if isinstance(sent_at, str):
        sent_at = dt.datetime.fromisoformat(sent_at)
    if sent_at is not None and sent_at.tzinfo is None:
        values["sent_at"] = sent_at.replace(tzinfo=dt.UTC)
    return OutboundMessage(pk=pk, **values)


def _human_before(message_ids: set[int]) -> set[tuple[int, str]]:
    """(message, kind) of the human opens and clicks stored for *message_ids*."""
    sql = _sql()["human"] + "(" + ", ".join(["%s"] * len(message_ids)) + ")"
    with connection.cursor() as cursor:
        cursor.execute(sql, [False, EmailEventKind.OPENED, EmailEventKind.CLICKED, *message_ids])
        return {(int(pk), str(kind)) for pk, kind in cursor.fetchall()}


@dataclass
class _Hit:
    """One pixel or click request waiting to be stored."""

    message: OutboundMessage
    kind: str
    suffix: str  # ":<link index>" for a click
    automated: bool
    metadata: dict[str, Any]
    now: dt.datetime
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


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


def _write(hits: list[_Hit]) -> None:
    """Store *hits* in one transaction, in order: their events, and an activity for each
    first human open or click of a message. A human click on a message without a human
    open implies one. A fixed number of queries, whatever the number of hits."""
    with transaction.atomic():
        people = {hit.message.pk for hit in hits if not hit.automated}
        human_before = _human_before(people) if people else set()
        events: list[EmailEvent] = []
        activities: list[EmailActivity] = []
        for hit in hits:
            message, kind, now = hit.message, hit.kind, hit.now
            minute = now.strftime("%Y%m%d%H%M")
            visitor = "a" if hit.automated else "h"
            key = f"{kind}:{message.pk}{hit.suffix}:{minute}:{visitor}"
            events.append(_event(message, kind, key, hit.automated, hit.metadata, now))
            if hit.automated:
                continue
            firsts: list[str] = []
            if kind == EmailEventKind.CLICKED and (message.pk, EmailEventKind.OPENED) not in human_before:
                implied = {**hit.metadata, "implied_by": "click"}
                key = f"opened:{message.pk}:{minute}:h"
                events.append(_event(message, EmailEventKind.OPENED, key, False, implied, now))
                firsts.append(EmailEventKind.OPENED)
            if (message.pk, kind) not in human_before:
                firsts.append(kind)
            for first in firsts:
                human_before.add((message.pk, first))
                activities.append(
                    EmailActivity(
                        message.contact_id,
                        ActivityKind.EMAIL_OPENED
                        if first == EmailEventKind.OPENED
                        else ActivityKind.EMAIL_CLICKED,
                        now,
                        message.owner_id,
                        message.subject,
                        {"message": message.pk},
                    )
                )
        insert_rows(EmailEvent, _EVENT_FIELDS, [[getattr(e, name) for name in _EVENT_FIELDS] for e in events])
        do_record_email_activities(activities)


class _GroupCommit:
    """Hits arriving together are stored together (group commit), each request still
    answering only once its hit is committed: the first thread to arrive writes every
    waiting hit in one transaction while the others wait, then the next group goes.
    Under load this turns one write transaction per hit into one per group, which is
    what lets SQLite's single writer keep up (docs/EMAIL.md, "Throughput")."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: list[_Hit] = []
        self._writing = False

    def store(self, hit: _Hit) -> None:
        """Store *hit* (in some group); raises what storing its group raised."""
        with self._lock:
            self._waiting.append(hit)
            lead = not self._writing
            if lead:
                self._writing = True
        if not lead:
            hit.done.wait()
            if hit.error is not None:
                raise hit.error
            return
        while True:
            with self._lock:
                group, self._waiting = self._waiting, []
                if not group:
                    self._writing = False
                    break
            try:
                _write(group)
            except BaseException as exc:  # every request of the group answers the error
                for waiting in group:
                    waiting.error = exc
            for waiting in group:
                waiting.done.set()
        if hit.error is not None:
            raise hit.error


_GROUP = _GroupCommit()


def _record(message: OutboundMessage, kind: str, suffix: str, method: str, user_agent: str) -> None:
    """Record one hit of *kind* (see `_write`); returns once it is stored."""
    now = clock.now()
    since = now - message.sent_at if message.sent_at else None
    metadata = {"user_agent": user_agent[:USER_AGENT_MAX], "method": method.upper()}
    automated = looks_automated(method, user_agent, since)
    _GROUP.store(_Hit(message, kind, suffix, automated, metadata, now))


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
    with connection.cursor() as cursor:
        cursor.execute(_sql()["link"], [pk, index])
        found = cursor.fetchone()
    url = str(found[0]) if found else None
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
