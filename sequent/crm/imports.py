"""Actions for CSV imports: create a job, claim it, run it in batches.

A job is a row in ImportJob; the database is its queue. Whoever runs it (the daemon
thread the API starts, ``sequent worker``, the CLI) first claims it with a lease, and
every batch renews that lease in the same transaction as its writes, so a job whose
runner died is claimed again once the lease expires and resumes after the last
committed line.

Each batch is set-based: one query for the existing records it names, one for its
accounts, bulk inserts and updates, one UPDATE of the job's progress.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import F, Model, Q, QuerySet
from django.db.models.functions import Coalesce, Lower

from sequent.crm import exports, importer
from sequent.crm.importer import AccountRef, BadRow, RecordRow
from sequent.crm.models import (
    RECORD_ACCOUNT,
    RECORD_CONTACT,
    Account,
    Contact,
    CustomField,
    CustomFieldType,
    ImportJob,
    ImportRowError,
    ImportStatus,
    Tag,
)
from sequent.lib import clock

log = logging.getLogger(__name__)

BATCH_SIZE = 5000
LEASE = dt.timedelta(minutes=5)
ON_DUPLICATE = ("skip", "update")
IMPORT_NAME_KEY = "import_name"
IMPORT_NAME_LABEL = "Import Name"
# Lookup caches across batches are bounded so that memory stays flat on any file.
CACHE_LIMIT = 50_000
RECORD_TYPE_NAMES = {
    "contact": RECORD_CONTACT,
    "contacts": RECORD_CONTACT,
    "account": RECORD_ACCOUNT,
    "accounts": RECORD_ACCOUNT,
}

ProgressCallback = Callable[[ImportJob], None]


class LeaseLost(Exception):
    """Another runner holds the job now; this one stops without writing."""


def default_worker_id() -> str:
    """``host:pid:thread``: who holds a lease."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{threading.get_ident()}"


# -- Creating a job --------------------------------------------------------------------


def custom_field_defs(record_type: str) -> list[importer.CustomFieldDef]:
    """The custom fields of *record_type* as the importer sees them."""
    return [
        importer.CustomFieldDef(f.key, f.label, f.field_type, tuple(f.choices or ()))
        for f in CustomField.objects.filter(record_type=record_type).order_by("id")
    ]


def clean_options(
    record_type: str,
    *,
    tag: str = "",
    on_duplicate: str = "skip",
    mapping: Mapping[str, str] | None = None,
    encoding: str = "",
    delimiter: str = "",
) -> tuple[str, dict[str, Any]]:
    """The record type and the job options, checked; ValidationError names the option."""
    kind = RECORD_TYPE_NAMES.get((record_type or "").strip().lower())
    if kind is None:
        raise ValidationError({"record_type": f"{record_type!r} is not contacts or accounts"})
    if on_duplicate not in ON_DUPLICATE:
        raise ValidationError({"on_duplicate": f"{on_duplicate!r} is not skip or update"})
    tag = (tag or "").strip()
    if len(tag) > 255:
        raise ValidationError({"tag": "longer than 255 characters"})
    options: dict[str, Any] = {"tag": tag, "on_duplicate": on_duplicate, "mapping": dict(mapping or {})}
    customs = custom_field_defs(kind)
    for header, target in options["mapping"].items():
        if not isinstance(header, str) or not isinstance(target, str):
            raise ValidationError({"mapping": "a mapping is {column header: field name}"})
        try:
            importer.resolve_target(kind, target, customs)
        except ValueError as exc:
            raise ValidationError({f"mapping.{header}": str(exc)}) from None
    if encoding:
        try:
            options["encoding"] = importer.check_encoding(encoding)
        except ValueError as exc:
            raise ValidationError({"encoding": str(exc)}) from None
    if delimiter:
        try:
            options["delimiter"] = importer.parse_delimiter(delimiter)
        except ValueError as exc:
            raise ValidationError({"delimiter": str(exc)}) from None
    return kind, options


def store_upload(chunks: Iterable[bytes]) -> Path:
    """Write an uploaded file under ``settings.IMPORT_DIR``; returns its path."""
    directory = Path(settings.IMPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.csv"
    with open(path, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return path


def do_create_import(
    owner: Any,
    record_type: str,
    path: str | Path,
    *,
    file_name: str = "",
    run_in_background: bool = False,
    **options: Any,
) -> ImportJob:
    """Create a pending import job of the file at *path* for *owner*.

    With *run_in_background* the job starts in a daemon thread once the transaction
    commits, so an API request answers at once; otherwise a worker or the caller runs it.
    """
    kind, cleaned = clean_options(record_type, **options)
    path = Path(path).resolve()
    if not path.is_file():
        raise ValidationError({"file": f"{path} is not a readable file"})
    with transaction.atomic(durable=True):
        job = ImportJob.objects.create(
            owner=owner,
            record_type=kind,
            file_name=(file_name or path.name)[:255],
            file_path=str(path),
            options=cleaned,
            total_bytes=path.stat().st_size,
        )
        if run_in_background:
            job_id = job.pk
            transaction.on_commit(lambda: start_in_background(job_id))
    return job


# -- Claiming --------------------------------------------------------------------------


def _claimable(now: dt.datetime) -> Q:
    return Q(status=ImportStatus.PENDING) | Q(status=ImportStatus.RUNNING, lease_until__lt=now)


def claim_import(job_id: int, worker_id: str) -> ImportJob | None:
    """Claim one job if it is pending or its lease expired: a conditional UPDATE that
    exactly one runner can win."""
    now = clock.now()
    with transaction.atomic():
        won = ImportJob.objects.filter(_claimable(now), pk=job_id).update(
            status=ImportStatus.RUNNING,
            claimed_by=worker_id[:100],
            lease_until=now + LEASE,
            started_at=Coalesce(F("started_at"), now),
        )
    return ImportJob.objects.get(pk=job_id) if won == 1 else None


def claim_next_import(worker_id: str) -> ImportJob | None:
    """Claim the oldest pending job, or one whose runner's lease expired."""
    candidates = (
        ImportJob.objects.filter(_claimable(clock.now()))
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
    )
    for job_id in list(candidates[:10]):
        job = claim_import(job_id, worker_id)
        if job is not None:
            return job
    return None


def run_pending_imports(worker_id: str | None = None) -> bool:
    """Claim and run one import; whether there was one (the worker's unit of work)."""
    job = claim_next_import(worker_id or default_worker_id())
    if job is None:
        return False
    do_run_import(job)
    return True


_threads: list[threading.Thread] = []
_threads_lock = threading.Lock()


def start_in_background(job_id: int) -> threading.Thread:
    """Run job *job_id* in a daemon thread (if nobody else claimed it first)."""
    thread = threading.Thread(target=_run_in_thread, args=(job_id,), name=f"import-{job_id}", daemon=True)
    with _threads_lock:
        _threads[:] = [t for t in _threads if t.is_alive()]
        _threads.append(thread)
    thread.start()
    return thread


def join_background_imports(timeout: float | None = None) -> None:
    """Wait for the imports this process started in threads (tests, clean shutdown)."""
    with _threads_lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(timeout)


def _run_in_thread(job_id: int) -> None:
    try:
        job = claim_import(job_id, default_worker_id())
        if job is not None:
            do_run_import(job)
    except Exception:
        log.exception("import %s failed in its background thread", job_id)
    finally:
        # Threads outside a request cycle must close their own connections.
        connections.close_all()


# -- Running ---------------------------------------------------------------------------


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    skipped: int = 0


def do_run_import(job: ImportJob, on_progress: ProgressCallback | None = None) -> ImportJob:
    """Run a claimed job to the end, one transaction per batch; returns it refreshed.

    A file-level problem (empty file, unreadable CSV, a mapping naming a missing
    column) fails the job with that message; rows already committed stay.
    """
    if job.status != ImportStatus.RUNNING or not job.claimed_by:
        raise ValueError(f"import {job.pk} is not claimed (status {job.status})")
    try:
        _run(job, on_progress)
    except LeaseLost:
        log.warning("import %s: lease lost to another runner", job.pk)
    except (importer.ImportFileError, OSError, UnicodeError) as exc:
        _finish(job, ImportStatus.FAILED, str(exc))
    except Exception as exc:
        log.exception("import %s failed", job.pk)
        _finish(job, ImportStatus.FAILED, f"unexpected error: {exc}")
    job.refresh_from_db()
    return job


def _run(job: ImportJob, on_progress: ProgressCallback | None) -> None:
    options = job.options
    dialect = importer.sniff(job.file_path, options.get("encoding", ""), options.get("delimiter", ""))
    with importer.CsvSource(job.file_path, dialect) as source:
        customs = custom_field_defs(job.record_type)
        plan = importer.plan_columns(job.record_type, source.header, customs, options.get("mapping"))
        report = {
            "encoding": dialect.encoding,
            "delimiter": importer.DELIMITERS[dialect.delimiter],
            "header": source.header,
            "columns": plan.describe(),
            "ignored": plan.ignored,
        }
        _save(job, report=report)
        writer = _BatchWriter(job)
        parser = importer.RowParser(job.record_type, plan, customs)
        good: list[RecordRow] = []
        bad: list[BadRow] = []
        seen = 0
        last_line = job.last_line
        for row in source.rows():
            if row.line <= job.last_line:
                continue  # committed before this job was claimed again
            last_line = row.line
            parsed = parser.parse(row)
            if parsed is None:
                continue
            seen += 1
            if isinstance(parsed, BadRow):
                bad.append(parsed)
            else:
                good.append(parsed)
            if seen >= BATCH_SIZE:
                writer.write(good, bad, seen, last_line, source.bytes_read)
                good, bad, seen = [], [], 0
                if on_progress is not None:
                    on_progress(job)
        writer.write(good, bad, seen, last_line, job.total_bytes)
    _finish(job, ImportStatus.DONE, _summary(job, plan.ignored))
    if on_progress is not None:
        on_progress(job)


def _summary(job: ImportJob, ignored: list[str]) -> str:
    text = (
        f"{job.rows_seen} rows: {job.created_count} created, {job.updated_count} updated, "
        f"{job.skipped_count} skipped, {job.error_count} bad."
    )
    if ignored:
        text += f" Ignored columns: {', '.join(ignored)}."
    return text


def _save(job: ImportJob, **changes: Any) -> None:
    """Update the job while it is still ours (else LeaseLost), renewing the lease."""
    changes["lease_until"] = clock.now() + LEASE
    won = ImportJob.objects.filter(pk=job.pk, claimed_by=job.claimed_by, status=ImportStatus.RUNNING).update(
        **changes
    )
    if won != 1:
        raise LeaseLost(job.pk)
    for name, value in changes.items():
        if not hasattr(value, "resolve_expression"):
            setattr(job, name, value)


def _finish(job: ImportJob, status: str, message: str) -> None:
    with transaction.atomic():
        won = ImportJob.objects.filter(
            pk=job.pk, claimed_by=job.claimed_by, status=ImportStatus.RUNNING
        ).update(
            status=status,
            message=message,
            finished_at=clock.now(),
            lease_until=None,
            processed_bytes=F("total_bytes") if status == ImportStatus.DONE else F("processed_bytes"),
        )
    job.refresh_from_db()
    upload = Path(job.file_path)
    if won and upload.parent == Path(settings.IMPORT_DIR).resolve():
        # An uploaded copy is not needed once the job ends (bad rows keep their cells);
        # a file the CLI imported in place is the user's and stays.
        upload.unlink(missing_ok=True)


class _BatchWriter:
    """Writes batches of one job: records, tags, row errors and progress together."""

    def __init__(self, job: ImportJob) -> None:
        self.job = job
        self.owner_id = job.owner_id
        self.update = job.options.get("on_duplicate") == "update"
        self.import_name = job.options.get("tag", "")
        self.accounts = _AccountCache(job.owner_id)
        self.tags: dict[str, int] = {}
        if self.import_name:
            _ensure_import_name_field(job.record_type)

    def write(
        self, good: list[RecordRow], bad: list[BadRow], seen: int, last_line: int, bytes_read: int
    ) -> None:
        """Commit one batch and the job's progress in one transaction."""
        if not seen and last_line == self.job.last_line:
            return
        with transaction.atomic(durable=True):
            if self.job.record_type == RECORD_ACCOUNT:
                counts = self._write_accounts(good)
            else:
                counts = self._write_contacts(good)
            ImportRowError.objects.bulk_create(
                [
                    ImportRowError(job=self.job, line=b.line, reason=b.reason, raw=importer.row_text(b.cells))
                    for b in bad
                ]
            )
            _save(
                self.job,
                processed_bytes=min(bytes_read, self.job.total_bytes),
                last_line=last_line,
                rows_seen=F("rows_seen") + seen,
                created_count=F("created_count") + counts.created,
                updated_count=F("updated_count") + counts.updated,
                skipped_count=F("skipped_count") + counts.skipped,
                error_count=F("error_count") + len(bad),
            )
        self.job.refresh_from_db(
            fields=["rows_seen", "created_count", "updated_count", "skipped_count", "error_count"]
        )

    def _values(self, row: RecordRow, account_ids: Mapping[tuple[str, str], int]) -> dict[str, Any]:
        """The row's non-empty values by column attribute name, custom values apart."""
        values = dict(row.values)
        if row.account is not None:
            values["account_id"] = account_ids[(row.account.kind, row.account.key)]
        custom = dict(row.custom)
        if self.import_name:
            custom[IMPORT_NAME_KEY] = self.import_name
        values["custom"] = custom
        return values

    def _fixed(self, now: dt.datetime) -> dict[str, Any]:
        return {"owner_id": self.owner_id, "created_at": now, "updated_at": now}

    @staticmethod
    def _merge(target: dict[str, Any], values: dict[str, Any]) -> None:
        """A later row of the same record in the batch: its non-empty values win."""
        custom = {**target.get("custom", {}), **values["custom"]}
        target.update(values)
        target["custom"] = custom

    @staticmethod
    def _apply(record: Contact | Account, values: dict[str, Any], now: dt.datetime) -> set[str]:
        """Copy non-empty values onto an existing record; the names of the fields set."""
        changed = {"updated_at"}
        for name, value in values.items():
            if name == "custom":
                if value:
                    record.custom = {**(record.custom or {}), **value}
                    changed.add("custom")
            else:
                setattr(record, name, value)
                changed.add(name)
        record.updated_at = now
        return changed

    # Contacts ---------------------------------------------------------------------

    def _write_contacts(self, rows: list[RecordRow]) -> _Counts:
        counts = _Counts()
        if not rows:
            return counts
        now = clock.now()
        account_ids = self.accounts.resolve([r.account for r in rows if r.account is not None])
        emails = {r.values["email"] for r in rows if r.values.get("email")}
        existing: dict[str, Contact] = {}
        known: set[str] = set()
        if emails:
            found = Contact.objects.filter(email__in=emails).order_by("-id")
            # The oldest wins among duplicates; skipping needs only to know they exist.
            if self.update:
                existing = {c.email: c for c in found}
                known = set(existing)
            else:
                known = set(found.values_list("email", flat=True))
        new: list[dict[str, Any]] = []
        new_by_email: dict[str, int] = {}
        updated: dict[int, Contact] = {}
        changed: set[str] = set()
        # Tags go to a contact by its id, or by its position in `new` until it has one.
        tags_of_existing: list[tuple[int, list[str]]] = []
        tags_of_new: dict[int, list[str]] = {}
        for row in rows:
            email = row.values.get("email", "")
            position = new_by_email.get(email) if email else None
            if position is None and not (email and email in known):
                if email:
                    new_by_email[email] = len(new)
                tags_of_new[len(new)] = list(row.tags)
                new.append(self._values(row, account_ids))
                counts.created += 1
            elif not self.update:
                counts.skipped += 1
            elif position is None:
                contact = existing[email]
                changed |= self._apply(contact, self._values(row, account_ids), now)
                updated[contact.pk] = contact
                tags_of_existing.append((contact.pk, row.tags))
                counts.updated += 1
            else:
                self._merge(new[position], self._values(row, account_ids))
                tags_of_new[position] += row.tags
                counts.updated += 1
        # Only tagged contacts need their new ids back, and RETURNING costs SQLite a
        # third more than a plain executemany: insert the two groups apart.
        tagged = {position: tags for position, tags in tags_of_new.items() if tags}
        _insert(Contact, [r for i, r in enumerate(new) if i not in tagged], self._fixed(now), returning=False)
        ids = _insert(Contact, [new[position] for position in tagged], self._fixed(now))
        if updated:
            Contact.objects.bulk_update(list(updated.values()), sorted(changed), batch_size=500)
        self._link_tags(tags_of_existing, list(zip(ids, tagged.values(), strict=True)))
        return counts

    def _link_tags(self, existing: list[tuple[int, list[str]]], new: list[tuple[int, list[str]]]) -> None:
        """Tag contacts by name, creating missing tags; new contacts cannot hold a tag
        already, so only existing ones need the conflict-ignoring insert."""
        names = {name for _, tags in existing + new for name in tags}
        if not names:
            return
        missing = names - self.tags.keys()
        if missing:
            Tag.objects.bulk_create([Tag(name=n) for n in sorted(missing)], ignore_conflicts=True)
            if len(self.tags) > CACHE_LIMIT:
                self.tags.clear()
            self.tags.update(Tag.objects.filter(name__in=names).values_list("name", "id"))
        through = Contact.tags.through
        fresh = [
            {"contact_id": c, "tag_id": self.tags[name]} for c, tags in new for name in dict.fromkeys(tags)
        ]
        _insert(through, fresh, {}, returning=False)
        pairs = {(contact_id, self.tags[name]) for contact_id, tags in existing for name in tags}
        through.objects.bulk_create(
            [through(contact_id=c, tag_id=t) for c, t in sorted(pairs)],
            ignore_conflicts=True,
            batch_size=1000,
        )

    # Accounts ---------------------------------------------------------------------

    def _write_accounts(self, rows: list[RecordRow]) -> _Counts:
        counts = _Counts()
        if not rows:
            return counts
        now = clock.now()
        refs = [_account_key(r) for r in rows]
        found = _find_accounts(refs, full=self.update)
        new: list[dict[str, Any]] = []
        new_by_key: dict[tuple[str, str], int] = {}
        updated: dict[int, Account] = {}
        changed: set[str] = set()
        for row, ref in zip(rows, refs, strict=True):
            position = new_by_key.get((ref.kind, ref.key))
            account = _match(found, ref, row) if position is None else None
            if account is None and position is None:
                values = self._values(row, {})
                values["name"] = values.get("name") or values["domain"]
                new_by_key[(ref.kind, ref.key)] = len(new)
                if values.get("domain"):
                    new_by_key.setdefault(("name", values["name"].lower()), len(new))
                new.append(values)
                counts.created += 1
            elif not self.update:
                counts.skipped += 1
            elif account is not None:
                changed |= self._apply(account, self._values(row, {}), now)
                updated[account.pk] = account
                counts.updated += 1
            else:
                assert position is not None
                self._merge(new[position], self._values(row, {}))
                counts.updated += 1
        _insert(Account, new, self._fixed(now), returning=False)
        if updated:
            Account.objects.bulk_update(list(updated.values()), sorted(changed), batch_size=500)
        return counts


def _insert(
    model: type[Model], records: list[dict[str, Any]], fixed: Mapping[str, Any], *, returning: bool = True
) -> list[int]:
    """Insert *records* (values by attribute name) set-wise; with *returning*, the new
    ids in order (SQLite: multi-row INSERT ... RETURNING, whose order bulk_create
    relies on too; PostgreSQL: COPY).

    This is bulk_create without model instances: preparing every value of every row
    through its field is most of bulk_create's cost, and here only JSON needs it.
    A missing value takes *fixed*, else the field's default.
    """
    if not records:
        return []
    connection = connections[model._default_manager.db]
    meta = model._meta
    fields_ = [f for f in meta.concrete_fields if not f.primary_key]
    base = {
        f.attname: f.get_db_prep_save(fixed[f.attname] if f.attname in fixed else f.get_default(), connection)
        for f in fields_
    }
    names = [f.attname for f in fields_]
    defaults = [base[name] for name in names]
    json_columns = [(i, f) for i, f in enumerate(fields_) if f.get_internal_type() == "JSONField"]

    def params(record: dict[str, Any]) -> list[Any]:
        values = [record.get(name, default) for name, default in zip(names, defaults, strict=True)]
        for i, f in json_columns:
            value = record.get(f.attname)
            # An empty JSON value keeps the default already prepared: most rows have no custom values.
            values[i] = f.get_db_prep_save(value, connection) if value else defaults[i]
        return values

    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        return _copy(
            connection, model, [str(f.column) for f in fields_], map(params, records), len(records), returning
        )
    columns = ", ".join(quote(str(f.column)) for f in fields_)
    insert = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "  # noqa: S608 - names from the model
    one = "(" + ", ".join(["%s"] * len(names)) + ")"
    ids: list[int] = []
    with connection.cursor() as cursor:
        if not returning:
            cursor.executemany(insert + one, [params(record) for record in records])
            return ids
        per_statement = max(1, (connection.features.max_query_params or 30000) // len(names))
        suffix = f" RETURNING {quote(str(meta.pk.column))}"  # type: ignore[union-attr]
        for start in range(0, len(records), per_statement):
            chunk = records[start : start + per_statement]
            flat = [value for record in chunk for value in params(record)]
            cursor.execute(insert + ", ".join([one] * len(chunk)) + suffix, flat)
            ids.extend(found[0] for found in cursor.fetchall())
    return ids


def _copy(
    connection: Any,
    model: type[Model],
    columns: list[str],
    rows: Iterable[list[Any]],
    count: int,
    returning: bool,
) -> list[int]:
    """PostgreSQL: COPY the rows in, several times faster than INSERT; ids, when wanted,
    are drawn from the table's sequence first and written with the rows."""
    meta = model._meta
    pk = str(meta.pk.column)  # type: ignore[union-attr]
    quote = connection.ops.quote_name
    ids: list[int] = []
    with connection.cursor() as cursor:
        if returning:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, pk, count],
            )
            ids = [found[0] for found in cursor.fetchall()]
            columns = [pk, *columns]
            rows = ([pk_value, *row] for pk_value, row in zip(ids, rows, strict=True))
        names = ", ".join(quote(column) for column in columns)
        with cursor.cursor.copy(f"COPY {quote(meta.db_table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    return ids


def _account_key(row: RecordRow) -> AccountRef:
    """How an account row is matched: by its domain when it has one, else by its name."""
    if row.values.get("domain"):
        return AccountRef("domain", row.values["domain"], row.values["domain"])
    name = " ".join(row.values["name"].split())
    return AccountRef("name", name.lower(), name)


@dataclass
class _Found:
    by_domain: dict[str, Account]
    by_name: dict[str, Account]


def _find_accounts(refs: list[AccountRef], *, full: bool) -> _Found:
    """Existing accounts named by *refs*, in one query; the oldest wins on duplicates.

    Names compare case-insensitively: SQL ``lower()`` covers ASCII on every database,
    the exact spelling covers the rest.
    """
    found = _Found({}, {})
    if not refs:
        return found
    domains = {r.key for r in refs if r.kind == "domain"}
    names = {r.value for r in refs if r.kind == "name"}
    # A domain ref may also name an account created earlier from that domain.
    lowered = {r.key for r in refs if r.kind == "name"} | domains
    query: QuerySet[Account] = Account.objects.annotate(lname=Lower("name"), ldomain=Lower("domain")).filter(
        Q(ldomain__in=domains) | Q(name__in=names) | Q(lname__in=lowered)
    )
    if not full:
        query = query.only("id", "name", "domain")
    for account in query.order_by("-id"):
        if account.domain:
            found.by_domain[account.domain.lower()] = account
        found.by_name[account.name.lower()] = account
    return found


def _match(found: _Found, ref: AccountRef, row: RecordRow) -> Account | None:
    """The existing account for an imported account row: same domain; else same name
    when the row or the account has no domain (two domains mean two companies)."""
    if ref.kind == "domain":
        account = found.by_domain.get(ref.key)
        if account is not None:
            return account
        name = (row.values.get("name") or "").lower()
        candidate = found.by_name.get(" ".join(name.split())) if name else None
        return candidate if candidate is not None and not candidate.domain else None
    return found.by_name.get(ref.key)


class _AccountCache:
    """Account ids for the "Account" column of contacts, creating missing accounts."""

    def __init__(self, owner_id: int) -> None:
        self.owner_id = owner_id
        self.ids: dict[tuple[str, str], int] = {}

    def resolve(self, refs: list[AccountRef]) -> dict[tuple[str, str], int]:
        """Ids for every ref; one query for those not seen before, one insert for the new."""
        wanted: dict[tuple[str, str], AccountRef] = {}
        for ref in refs:
            wanted.setdefault((ref.kind, ref.key), ref)  # the first spelling names a new account
        missing = [r for k, r in wanted.items() if k not in self.ids]
        if not missing:
            return self.ids
        if len(self.ids) > CACHE_LIMIT:
            self.ids = {k: v for k, v in self.ids.items() if k in wanted}
        found = _find_accounts(missing, full=False)
        now = clock.now()
        new: dict[tuple[str, str], dict[str, Any]] = {}
        for ref in missing:
            table = found.by_domain if ref.kind == "domain" else found.by_name
            account = table.get(ref.key)
            if account is None and ref.kind == "domain":
                account = found.by_name.get(ref.key)  # an account named after its domain
            if account is not None:
                self.ids[(ref.kind, ref.key)] = account.pk
                continue
            new[(ref.kind, ref.key)] = {
                "name": ref.value[:255],
                "domain": ref.key if ref.kind == "domain" else "",
            }
        fixed = {"owner_id": self.owner_id, "created_at": now, "updated_at": now}
        ids = _insert(Account, list(new.values()), fixed)
        self.ids.update(zip(new, ids, strict=True))
        return self.ids


def _ensure_import_name_field(record_type: str) -> None:
    """The "Import Name" custom field the --tag value is written to."""
    with transaction.atomic():
        CustomField.objects.get_or_create(
            record_type=record_type,
            key=IMPORT_NAME_KEY,
            defaults={"label": IMPORT_NAME_LABEL, "field_type": CustomFieldType.TEXT},
        )


# -- Reading the report -----------------------------------------------------------------


def percent_done(job: ImportJob) -> float:
    """Progress by bytes read, 0-100."""
    if job.status == ImportStatus.DONE:
        return 100.0
    if job.total_bytes <= 0:
        return 0.0
    return round(min(100.0, 100.0 * job.processed_bytes / job.total_bytes), 1)


def error_rows(job: ImportJob) -> Iterator[list[Any]]:
    """The bad rows as CSV records: a header (line, reason, the file's columns), then
    each bad row's line, reason and original cells. Streams from the database."""
    yield ["line", "reason", *job.report.get("header", [])]
    for line, reason, raw in (
        job.row_errors.order_by("line").values_list("line", "reason", "raw").iterator(2000)
    ):
        yield [line, reason, *importer.row_cells(raw)]


def write_error_csv(job: ImportJob, out: IO[str]) -> int:
    """Write every bad row of *job* to *out* as CSV (neutralised, as the download is);
    returns how many."""
    for chunk in iter_error_csv(job):
        out.write(chunk)
    return job.row_errors.count()


def iter_error_csv(job: ImportJob) -> Iterator[str]:
    """The bad rows as CSV text, a chunk at a time (for a streaming download), neutralised
    so a spreadsheet never runs a cell as a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for index, record in enumerate(error_rows(job)):
        writer.writerow([exports.neutralise(cell) for cell in record])
        if index % 500 == 0 or buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
