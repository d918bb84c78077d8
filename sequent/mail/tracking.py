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
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, Field, Model, Q

from sequent.crm.actions import contact_field_changes
from sequent.crm.models import Activity, ActivityKind, Contact
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


# The hit path runs a few fixed statements written once from the models' own table and
# column names: the ORM spent about 1 ms compiling each query, 30 times the query itself.
_MESSAGE_FIELDS = ("contact_id", "owner_id", "enrollment_id", "step_id", "subject", "sent_at")
# The contact's last-contacted fields, in the model's order (for Contact.from_db).
_CONTACT_READ = ("id", "last_contacted_mode", "last_activity_type", "last_contacted_at")
_CONTACT_WRITE = ("last_contacted_mode", "last_activity_type", "last_contacted_at", "updated_at")
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
# Activity columns given here; the others (custom type, body, outcome) take their defaults.
_ACTIVITY_FIELDS = ("contact_id", "user_id", "kind", "occurred_at", "subject", "metadata")


def _fields(model: type[Model], names: tuple[str, ...]) -> list[Field[Any, Any]]:
    meta = model._meta
    return [meta.pk if name == "id" else meta.get_field(name.removesuffix("_id")) for name in names]  # type: ignore[misc]


class _Statements:
    """The statements of the hit path and the fields of their columns, worked out once
    per process from the models."""

    def __init__(self) -> None:
        quote = connection.ops.quote_name

        def names(fields: list[Field[Any, Any]], alias: str = "") -> str:
            return ", ".join(alias + quote(str(f.column)) for f in fields)

        def table(model: type[Model]) -> str:
            return quote(model._meta.db_table)

        def one(model: type[Model], name: str) -> str:
            return names(_fields(model, (name,)))

        self.events = _fields(EmailEvent, _EVENT_FIELDS)
        given = _fields(Activity, _ACTIVITY_FIELDS)
        self.activity_defaults = [
            f for f in Activity._meta.concrete_fields if not f.primary_key and f not in given
        ]
        self.activities = given + self.activity_defaults
        self.contacts = _fields(Contact, _CONTACT_WRITE)
        pk, contact_pk = f"m.{one(OutboundMessage, 'id')}", f"c.{one(Contact, 'id')}"
        # Whether a person opened / clicked the message before (its firsts): a subquery with
        # LIMIT, looked up by message, where PostgreSQL would hash every such event for EXISTS.
        human = (
            f"(SELECT 1 FROM {table(EmailEvent)} e WHERE e.{one(EmailEvent, 'message_id')} = {pk} "  # noqa: S608
            f"AND e.{one(EmailEvent, 'kind')} = %s AND e.{one(EmailEvent, 'is_automated')} = %s LIMIT 1)"
        )
        # A first open or click updates the contact: lock it, as the ORM's select_for_update
        # would (SQLite's writer holds the whole database already).
        lock = ""
        if connection.features.has_select_for_update_of:
            no_key = connection.features.has_select_for_no_key_update
            lock = " " + connection.ops.for_update_sql(of=("c",), no_key=no_key)
        # {links}: "" or the join of the clicked links (then {link_columns} are theirs);
        # {ids}: the message ids.
        self.read = (
            f"SELECT {pk}, {names(_fields(OutboundMessage, _MESSAGE_FIELDS), 'm.')}, {human}, {human}, "  # noqa: S608
            f"{names(_fields(Contact, _CONTACT_READ[1:]), 'c.')}, {{link_columns}} "
            f"FROM {table(OutboundMessage)} m "
            f"JOIN {table(Contact)} c ON {contact_pk} = m.{one(OutboundMessage, 'contact_id')} "
            f"{{links}}WHERE {pk} IN ({{ids}}) ORDER BY {contact_pk}{lock}"
        )
        self.links = (
            f"LEFT JOIN {table(TrackedLink)} l ON l.{one(TrackedLink, 'message_id')} = {pk} "
            f"AND l.{one(TrackedLink, 'index')} IN "
        )
        self.link_columns = f"l.{one(TrackedLink, 'index')}, l.{one(TrackedLink, 'url')}"
        # A row each, for executemany.
        self.insert_event = (
            f"INSERT INTO {table(EmailEvent)} ({names(self.events)}) "  # noqa: S608 - model names
            f"VALUES ({', '.join(['%s'] * len(self.events))}) ON CONFLICT DO NOTHING"
        )
        self.insert_activity = (
            f"INSERT INTO {table(Activity)} ({names(self.activities)}) "  # noqa: S608 - model names
            f"VALUES ({', '.join(['%s'] * len(self.activities))})"
        )
        self.update_contact = (
            f"UPDATE {table(Contact)} SET {', '.join(f'{names([f])} = %s' for f in self.contacts)} "  # noqa: S608
            f"WHERE {one(Contact, 'id')} = %s"
        )
        self.write = ""
        if connection.vendor == "postgresql":
            self.write = self._one_statement(names, table, one)

    def _one_statement(self, names: Any, table: Any, one: Any) -> str:
        """PostgreSQL: the whole group in one statement, its rows in one JSON document.
        A statement per table, and in the driver a quoted literal per value, cost more
        than the writing itself."""

        def rows(key: str, fields: list[Field[Any, Any]]) -> str:
            shape = ", ".join(f"{names([f])} {f.db_type(connection)}" for f in fields)
            return f"FROM doc, jsonb_to_recordset(doc.d->'{key}') AS r({shape})"

        given = self.activities[: len(_ACTIVITY_FIELDS)]
        defaults = "".join(", %s" for _ in self.activity_defaults)
        updates = ", ".join(f"{names([f])} = r.{names([f])}" for f in self.contacts)
        contact_id, contact_pk = one(Contact, "id"), _fields(Contact, ("id",))
        return (
            "WITH doc(d) AS (SELECT %s::jsonb), "  # noqa: S608 - model names
            f"e AS (INSERT INTO {table(EmailEvent)} ({names(self.events)}) "
            f"SELECT {names(self.events, 'r.')} {rows('events', self.events)} ON CONFLICT DO NOTHING), "
            f"a AS (INSERT INTO {table(Activity)} ({names(self.activities)}) "
            f"SELECT {names(given, 'r.')}{defaults} {rows('activities', given)}), "
            f"c AS (UPDATE {table(Contact)} t SET {updates} {rows('contacts', contact_pk + self.contacts)} "
            f"WHERE t.{contact_id} = r.{contact_id} "
            # The ids again as an array, so the contacts are found by their key: joined to
            # the document alone, the planner scans the whole table.
            f"AND t.{contact_id} = ANY(ARRAY(SELECT (x->>'{contact_pk[0].column}')::bigint "
            "FROM doc, jsonb_array_elements(doc.d->'contacts') x))) SELECT 1"
        )


@functools.cache
def _statements() -> _Statements:
    return _Statements()


@dataclass
class _Message:
    """What storing a hit needs of its message, and whether a person opened or clicked it
    before (read in the writing transaction, then kept up to date within the group)."""

    pk: int
    contact_id: int
    owner_id: int | None
    enrollment_id: int | None
    step_id: int | None
    subject: str
    sent_at: dt.datetime | None
    opened: bool
    clicked: bool


def _utc(value: Any) -> Any:
    # A raw SQLite cursor gives the stored text; PostgreSQL an aware datetime.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


@dataclass
class _Hit:
    """One pixel or click request waiting to be stored, and then what storing found."""

    message_id: int
    kind: str
    index: int | None  # the link of a click
    method: str
    user_agent: str
    now: dt.datetime
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to write the next group, not because its own was written
    error: BaseException | None = None
    found: bool = False  # the message (and for a click, the link) exists: the hit was stored
    url: str = ""  # a click's recorded URL


def _read_statement(hits: list[_Hit]) -> tuple[str, list[Any]]:
    """The statement reading the messages of *hits*, their contacts (locked) and the URLs
    of the clicked links, and its parameters."""
    ids = sorted({hit.message_id for hit in hits})
    indexes = sorted({hit.index for hit in hits if hit.index is not None})
    sql = _statements()
    params: list[Any] = [EmailEventKind.OPENED, False, EmailEventKind.CLICKED, False]
    if indexes:
        links = sql.links + "(" + ", ".join(["%s"] * len(indexes)) + ") "
        columns = sql.link_columns
        params += indexes
    else:
        links, columns = "", "NULL, NULL"
    statement = sql.read.format(link_columns=columns, links=links, ids=", ".join(["%s"] * len(ids)))
    return statement, params + ids


def _found(
    db: Any, rows: list[tuple[Any, ...]]
) -> tuple[dict[int, _Message], dict[int, Contact], dict[tuple[int, int], str]]:
    """The messages, contacts and link URLs in the rows of the read statement."""
    messages: dict[int, _Message] = {}
    contacts: dict[int, Contact] = {}
    urls: dict[tuple[int, int], str] = {}
    for pk, contact, owner, enrollment, step, subject, sent_at, opened, clicked, *rest in rows:
        mode, activity_type, contacted_at, index, url = rest
        if pk not in messages:
            sent_at = _utc(sent_at)
            messages[pk] = _Message(
                pk,
                contact,
                owner,
                enrollment,
                step,
                subject,
                sent_at,
                opened is not None,
                clicked is not None,
            )
        if contact not in contacts:
            values = (contact, mode, activity_type, _utc(contacted_at))
            contacts[contact] = Contact.from_db(db.alias, _CONTACT_READ, values)
        if index is not None:
            urls[(pk, index)] = str(url)
    return messages, contacts, urls


def _write(hits: list[_Hit]) -> None:
    """Store *hits* in one transaction, in order: read their messages and links, then
    store an event for each hit whose message (and link) exists, and an activity for
    each first human open or click of a message, updating the contact's last-contacted
    fields by the rules of every activity (``crm.actions.contact_field_changes``, as
    ``mail.actions.do_record_email_activities`` applies them). A human click on a message
    without a human open implies one. A fixed number of statements for the group."""
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    if db.vendor == "postgresql" and db.get_autocommit():
        _write_in_two_round_trips(db, hits)
        return
    with transaction.atomic(using=db.alias):
        statement, params = _read_statement(hits)
        with db.cursor() as cursor:
            cursor.execute(statement, params)
            rows = cursor.fetchall()
        events, activities, contacts = _rows(hits, *_found(db, rows))
        if db.vendor == "postgresql":
            with db.cursor() as cursor:
                cursor.execute(*_one_statement(db, events, activities, contacts))
        else:
            _store(db, events, activities, contacts)


def _write_in_two_round_trips(db: Any, hits: list[_Hit]) -> None:
    """PostgreSQL, outside any transaction: the same transaction in two round trips,
    ``BEGIN; <read>`` then ``<write>; COMMIT`` (a simple query may hold several
    statements), where the driver sends BEGIN and COMMIT on their own: four. Groups are
    written one after another, so their time bounds the throughput; this made it about
    10% shorter on a busy machine, where the server process waits for a CPU at each trip.
    On failure the transaction is rolled back here (Django does not know it was open)."""
    statement, params = _read_statement(hits)
    try:
        with db.cursor() as cursor:
            cursor.execute("BEGIN; " + statement, params)
            cursor.nextset()
            rows = cursor.fetchall()
            events, activities, contacts = _rows(hits, *_found(db, rows))
            write, params = _one_statement(db, events, activities, contacts)
            cursor.execute(write + "; COMMIT", params)
    except BaseException:
        try:
            db.connection.rollback()  # nothing to undo when the COMMIT itself failed
        except Exception:
            db.close()  # a broken connection: the next hit opens a new one
        raise


def _rows(
    hits: list[_Hit],
    messages: dict[int, _Message],
    contacts: dict[int, Contact],
    urls: dict[tuple[int, int], str],
) -> tuple[list[list[Any]], list[list[Any]], list[Contact]]:
    """The events and activities to store for *hits* and the contacts they change;
    marks each hit found (and a click with its URL) when its message and link exist."""
    events: list[list[Any]] = []
    activities: list[list[Any]] = []
    for hit in hits:
        message = messages.get(hit.message_id)
        if message is None:
            continue
        kind, now, suffix = hit.kind, hit.now, ""
        if hit.index is not None:
            url = urls.get((message.pk, hit.index))
            if url is None:
                continue
            hit.url, suffix = url, f":{hit.index}"
        hit.found = True
        since = now - message.sent_at if message.sent_at else None
        automated = looks_automated(hit.method, hit.user_agent, since)
        metadata = {"user_agent": hit.user_agent[:USER_AGENT_MAX], "method": hit.method.upper()}
        minute = now.strftime("%Y%m%d%H%M")
        key = f"{kind}:{message.pk}{suffix}:{minute}:{'a' if automated else 'h'}"
        events.append(_event(message, kind, now, automated, key, metadata))
        if automated:
            continue
        firsts: list[str] = []
        if kind == EmailEventKind.CLICKED and not message.opened:
            implied = {**metadata, "implied_by": "click"}
            key = f"opened:{message.pk}:{minute}:h"
            events.append(_event(message, EmailEventKind.OPENED, now, False, key, implied))
            firsts.append(EmailEventKind.OPENED)
        if not (message.opened if kind == EmailEventKind.OPENED else message.clicked):
            firsts.append(kind)
        for first in firsts:
            opened = first == EmailEventKind.OPENED
            if opened:
                message.opened = True
            else:
                message.clicked = True
            activity = ActivityKind.EMAIL_OPENED if opened else ActivityKind.EMAIL_CLICKED
            # In the order of _ACTIVITY_FIELDS.
            row = [message.contact_id, message.owner_id, activity, now, message.subject[:255]]
            activities.append([*row, {"message": message.pk}])
    return events, activities, _contact_changes(contacts, activities)


def _event(
    message: _Message, kind: str, now: dt.datetime, automated: bool, key: str, metadata: dict[str, Any]
) -> list[Any]:
    # In the order of _EVENT_FIELDS.
    ids = [message.pk, message.contact_id, message.enrollment_id, message.step_id]
    return [*ids, kind, now, automated, key, metadata]


def _contact_changes(contacts: dict[int, Contact], activities: list[list[Any]]) -> list[Contact]:
    """The contacts whose last-contacted fields *activities* change, changed, taking the
    activities in the order of their times (an older one never rewinds them)."""
    changed: dict[int, Contact] = {}
    now = clock.now()
    for contact_id, _, kind, occurred_at, *_ in sorted(activities, key=lambda row: row[3]):
        contact = contacts[contact_id]
        changes = contact_field_changes(contact, kind, occurred_at)
        for name, value in changes.items():
            setattr(contact, name, value)
        if changes:
            contact.updated_at = now
            changed[contact.pk] = contact
    return list(changed.values())


def _prepared(db: Any, fields: list[Field[Any, Any]], rows: list[list[Any]]) -> list[list[Any]]:
    """*rows* with their datetimes and JSON values as the database takes them (the other
    types pass as they are)."""
    converted = [
        (i, f) for i, f in enumerate(fields) if f.get_internal_type() in ("DateTimeField", "JSONField")
    ]
    for row in rows:
        for i, f in converted:
            row[i] = f.get_db_prep_save(row[i], db)
    return rows


def _store(db: Any, events: list[list[Any]], activities: list[list[Any]], contacts: list[Contact]) -> None:
    """Write the group with a statement per table (SQLite runs each in process)."""
    sql = _statements()
    with db.cursor() as cursor:
        if events:
            cursor.executemany(sql.insert_event, _prepared(db, sql.events, events))
        if activities:
            defaults = [f.get_default() for f in sql.activity_defaults]
            rows = _prepared(db, sql.activities, [row + defaults for row in activities])
            cursor.executemany(sql.insert_activity, rows)
        if contacts:
            rows = _prepared(
                db, sql.contacts, [[getattr(c, f.attname) for f in sql.contacts] for c in contacts]
            )
            cursor.executemany(
                sql.update_contact, [[*row, c.pk] for row, c in zip(rows, contacts, strict=True)]
            )


def _one_statement(
    db: Any, events: list[list[Any]], activities: list[list[Any]], contacts: list[Contact]
) -> tuple[str, list[Any]]:
    """PostgreSQL: the statement writing the whole group, every row in one JSON document,
    and its parameters."""
    sql = _statements()

    def objects(fields: list[Field[Any, Any]], rows: list[list[Any]]) -> list[dict[str, Any]]:
        columns = [str(f.column) for f in fields]
        return [
            {c: v.isoformat() if isinstance(v, dt.datetime) else v for c, v in zip(columns, row, strict=True)}
            for row in rows
        ]

    contact_fields = [Contact._meta.pk, *sql.contacts]
    document = {
        "events": objects(sql.events, events),
        "activities": objects(sql.activities[: len(_ACTIVITY_FIELDS)], activities),
        "contacts": objects(
            contact_fields, [[getattr(c, f.attname) for f in contact_fields] for c in contacts]
        ),
    }
    defaults = [f.get_db_prep_save(f.get_default(), db) for f in sql.activity_defaults]
    return sql.write, [json.dumps(document), *defaults]


class _GroupCommit:
    """Hits arriving together are stored together (group commit), each request still
    answering only once its hit is committed: the first thread to arrive writes every
    waiting hit in one transaction while the others wait; then, if more hits came in
    meanwhile, it hands the writing of the next group to one of their threads and
    answers. Under load this turns one write transaction per hit into one per group,
    which is what lets SQLite's single writer keep up (docs/EMAIL.md, "Throughput"), and
    no request waits for more than the group before it and its own."""

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
            if not hit.lead:
                if hit.error is not None:
                    raise hit.error
                return
            hit.done.clear()
        with self._lock:
            group, self._waiting = self._waiting, []
        try:
            _write(group)
        except BaseException as exc:  # every request of the group answers the error
            for waiting in group:
                waiting.error = exc
        with self._lock:
            following = self._waiting[0] if self._waiting else None
            if following is None:
                self._writing = False
            else:
                following.lead = True
        for waiting in group:
            if waiting is not hit:
                waiting.done.set()
        if following is not None:
            following.done.set()
        if hit.error is not None:
            raise hit.error


_GROUP = _GroupCommit()


def _record(message_id: int, kind: str, index: int | None, method: str, user_agent: str) -> _Hit:
    """Store one hit of *kind* (see `_write`); returns it once stored, saying what was found."""
    # No database stores a NUL in text: one in a user agent would fail its whole group.
    hit = _Hit(message_id, kind, index, method, user_agent.replace("\x00", ""), clock.now())
    _GROUP.store(hit)
    return hit


def do_record_open(token: str, *, method: str = "GET", user_agent: str = "") -> bool:
    """Record an open pixel hit; False (nothing recorded) for a bad token or unknown message."""
    try:
        pk = tokens.read_open_token(token)
    except tokens.BadToken:
        return False
    return _record(pk, EmailEventKind.OPENED, None, method, user_agent).found


class UnknownLink(Exception):
    """The click token is valid but names no recorded link."""


def do_record_click(token: str, *, method: str = "GET", user_agent: str = "") -> str:
    """Record a click and return the URL recorded for that link of that message.

    Raises `tokens.BadToken` for a forged or damaged token and `UnknownLink` when no URL
    was recorded for it: the view answers 404, never a redirect. A human click on an
    email with no human open also counts as an open (its images may be blocked).
    """
    pk, index = tokens.read_click_token(token)
    hit = _record(pk, EmailEventKind.CLICKED, index, method, user_agent)
    if not hit.found:
        raise UnknownLink(f"no link {index} recorded for message {pk}")
    return hit.url


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
