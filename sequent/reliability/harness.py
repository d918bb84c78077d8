"""Fault harness: real `sequent worker` processes on a database of their own, a real
SMTP server in another process that writes down every Message-ID it receives, and a
loop that kills workers with SIGKILL at seeded random moments and restarts them.

The test process only starts and kills processes and reads figures. Seeding and the
final accounting run in subprocesses with the same ``DATABASE_URL`` as the workers
(``python -m sequent.reliability.harness seed|report``), so they work the same on a
SQLite file and on a PostgreSQL database.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SEND_TIME = "00:00"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def python_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


# --- the SMTP server in its own process ---------------------------------------------------


def _serve_sink(port: int, path: Path) -> None:
    """Accept every message and append its Message-ID to *path* before answering 250."""
    import email
    import email.policy

    from aiosmtpd.controller import Controller

    out = path.open("a", encoding="utf-8")

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.SMTP)
            out.write(f"{parsed['Message-ID']}\n")
            out.flush()
            return "250 2.0.0 Ok"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    out.close()


@contextlib.contextmanager
def smtp_sink(directory: Path) -> Iterator[tuple[int, Path]]:
    """A recording SMTP server in a subprocess: yields (port, file of received Message-IDs)."""
    port, path = free_port(), directory / "received.txt"
    path.touch()
    process = subprocess.Popen(
        [sys.executable, "-m", "sequent.reliability.harness", "sink", str(port), str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")
        yield port, path
    finally:
        process.terminate()
        process.wait(10)


def received_ids(path: Path) -> Counter[str]:
    """Message-ID -> how many times the SMTP server received it."""
    return Counter(line.strip() for line in path.read_text().splitlines() if line.strip())


# --- a database of the workers' own ---------------------------------------------------------


@contextlib.contextmanager
def worker_database(directory: Path) -> Iterator[str]:
    """A migrated, empty database the worker subprocesses share; yields its URL.

    Copies the test database pytest-django made (already migrated, roles seeded): on
    SQLite with the backup API into a file, on PostgreSQL with ``CREATE DATABASE ...
    TEMPLATE``. The copy is dropped afterwards."""
    from django.db import connection, connections

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        path = directory / "workers.sqlite3"
        connection.ensure_connection()
        target = sqlite3.connect(path)
        connection.connection.backup(target)
        target.execute("PRAGMA journal_mode=WAL")
        target.close()
        yield f"sqlite:///{path}"
        return
    import psycopg

    name = f"h_faults_kill_{os.getpid()}_{int(time.time() * 1000) % 10**8}"
    template = settings["NAME"]
    connections.close_all()  # a template must have no other session
    admin = _pg_url(settings, "postgres")
    with psycopg.connect(admin, autocommit=True) as pg:
        pg.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _pg_url(settings, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as pg:
            pg.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_url(settings: dict[str, Any], name: str) -> str:
    from urllib.parse import quote

    auth = quote(settings["USER"] or "") + (f":{quote(settings['PASSWORD'])}" if settings["PASSWORD"] else "")
    return f"postgres://{auth}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{name}"


def pending_work(database_url: str) -> int:
    """Enrollments with a step pending plus outbox rows not yet settled, by plain SQL."""
    query = (
        "SELECT (SELECT COUNT(*) FROM sequences_enrollment WHERE next_due_at IS NOT NULL)"
        " + (SELECT COUNT(*) FROM mail_outboundmessage WHERE status IN ('queued', 'deferred', 'sending'))"
        " + (SELECT COUNT(*) FROM sequences_runslot WHERE status <> 'done')"
        # The daily run not started yet.
        " + (SELECT COUNT(*) FROM sequences_sequence s WHERE s.status = 'active' AND NOT EXISTS"
        " (SELECT 1 FROM sequences_runslot r WHERE r.sequence_id = s.id))"
    )
    if database_url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=30)) as db:
            return int(db.execute(query).fetchone()[0])
    import psycopg

    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as pg:
        row = pg.execute(query).fetchone()
        return int(row[0]) if row else 0


def sqlite_checks(database_url: str) -> tuple[str, list[Any]]:
    """(PRAGMA integrity_check, PRAGMA foreign_key_check rows) of a SQLite file."""
    with contextlib.closing(sqlite3.connect(database_url.removeprefix("sqlite:///"))) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0], db.execute(
            "PRAGMA foreign_key_check"
        ).fetchall()


def cli(database_url: str, *args: str, timeout: float = 300) -> str:
    """Run ``python -m sequent.reliability.harness|sequent ...`` to completion; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=python_env(database_url),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def seed(database_url: str, **options: Any) -> dict[str, Any]:
    args = [f"--{k.replace('_', '-')}={v}" for k, v in options.items()]
    out = cli(database_url, "sequent.reliability.harness", "seed", *args)
    return dict(json.loads(out.strip().splitlines()[-1]))


def report(database_url: str, received_file: Path) -> dict[str, Any]:
    out = cli(database_url, "sequent.reliability.harness", "report", str(received_file))
    return dict(json.loads(out.strip().splitlines()[-1]))


# --- workers ----------------------------------------------------------------------------


def start_worker(database_url: str, name: str, *, batch_size: int = 500) -> subprocess.Popen[str]:
    """A real `sequent worker` process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sequent",
            "worker",
            "--skip-checks",  # start faster: the test is about the loop, not the URL map
            "--idle-sleep",
            "0.1",
            "--worker-id",
            name,
            "--batch-size",
            str(batch_size),
        ],
        cwd=ROOT,
        env=python_env(database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_started(process: subprocess.Popen[str], timeout: float = 60) -> str:
    """Read the worker's output until its "started" line; the lines read."""
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the worker exited before starting:\n" + "".join(lines))
        lines.append(line)
        if " started" in line:
            return "".join(lines)
    raise RuntimeError("the worker did not start in time")


@dataclass
class KillLoop:
    """Workers killed with SIGKILL at seeded random moments and restarted, *parallel* at a time."""

    database_url: str
    seed: int
    kills_wanted: int
    parallel: int = 3
    batch_size: int = 20
    max_life: float = 6.0  # seconds a worker may live after saying "started"
    kills: int = 0
    restarts: int = 0
    crashed: list[str] = field(default_factory=list)

    def run(self, deadline: float) -> None:
        rng = random.Random(self.seed)
        lock = threading.Lock()

        def lane(n: int) -> None:
            lane_rng = random.Random(rng.random() + n)
            while time.monotonic() < deadline:
                with lock:
                    if self.kills >= self.kills_wanted:
                        return
                process = start_worker(self.database_url, f"k{n}-{self.restarts}", batch_size=self.batch_size)
                with lock:
                    self.restarts += 1
                try:
                    wait_started(process)
                    time.sleep(lane_rng.uniform(0, self.max_life))
                finally:
                    if process.poll() is not None:
                        assert process.stdout is not None
                        self.crashed.append(process.stdout.read())
                    else:
                        process.send_signal(signal.SIGKILL)
                        with lock:
                            self.kills += 1
                    process.wait()
                    if process.stdout is not None:
                        process.stdout.close()

        threads = [threading.Thread(target=lane, args=(n,)) for n in range(self.parallel)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def run_workers_until_idle(database_url: str, count: int, timeout: float = 240) -> list[str]:
    """*count* `sequent worker` processes until no work is pending; stopped with SIGTERM.
    Returns their outputs."""
    workers = [start_worker(database_url, f"w{n}", batch_size=50) for n in range(count)]
    try:
        for w in workers:
            wait_started(w)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pending_work(database_url):
            if any(w.poll() is not None for w in workers):
                break
            time.sleep(0.3)
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        outputs = [w.communicate(timeout=60)[0] for w in workers]
    return outputs


def recover(database_url: str, after: dt.timedelta = dt.timedelta(minutes=20)) -> str:
    """`sequent run-due` at now + *after*: past every lease the killed workers held."""
    when = (dt.datetime.now(dt.UTC) + after).isoformat()
    return cli(database_url, "sequent", "run-due", "--skip-checks", "--now", when)


# --- subcommands run inside Django -------------------------------------------------------------


def _seed(options: argparse.Namespace) -> dict[str, Any]:
    from sequent.crm.models import Contact
    from sequent.lib import clock
    from sequent.mail import tracking
    from sequent.mail.message_ids import new_message_id
    from sequent.mail.models import Mailbox, MessageStatus, OutboundMessage, Security
    from sequent.sequences import actions
    from sequent.sequences.models import Enrollment, EnrollmentStatus, ExecutionStatus, StepExecution
    from sequent.users.actions import do_create_token, do_create_user

    user, _ = do_create_user("rel@example.com", "Sales Rep", "pw-rel-12345", "Rel", "Rep")
    mailbox = Mailbox.objects.create(
        owner=user,
        email_address="rel@acme.example",
        display_name="Rel Rep",
        smtp_host="127.0.0.1",
        smtp_port=options.smtp_port,
        smtp_security=Security.NONE,
        per_minute_limit=100_000,
    )
    user.daily_email_limit = 100_000
    user.save()
    contacts = Contact.objects.bulk_create(
        [
            Contact(owner=user, first_name=f"C{n}", last_name="Kill", email=f"c{n}@client.example")
            for n in range(options.contacts)
        ],
        batch_size=2000,
    )
    now = clock.now()
    sequence = actions.do_create_sequence(
        user, "Crash", time_zone="UTC", send_time=SEND_TIME, exclude_weekends=False
    )
    sequence.mailbox = mailbox
    sequence.save(update_fields=["mailbox"])
    actions.do_add_step(sequence, "email", day=1, subject="Hello {{ contact.first_name }}", body="<p>Hi</p>")
    actions.do_add_step(sequence, "follow_up", day=1)
    actions.do_add_step(sequence, "sms", day=1, sms_body="Hi")  # no contact has a mobile: skipped
    actions.do_add_contacts(sequence, [c.pk for c in contacts])
    with clock.frozen(now - dt.timedelta(days=2)):
        actions.do_activate(sequence)  # today's 00:00 UTC slot is due
    result: dict[str, Any] = {"sequence": sequence.pk, "contacts": len(contacts), "steps": 3}
    if options.sent:
        # Messages already sent (an earlier day), for tracking hits while the worker works.
        earlier = actions.do_create_sequence(user, "Earlier", time_zone="UTC", send_time=SEND_TIME)
        step = actions.do_add_step(earlier, "email", day=1, subject="Earlier", body="<p>Hi</p>")
        people = Contact.objects.bulk_create(
            [
                Contact(owner=user, first_name=f"E{n}", email=f"e{n}@client.example")
                for n in range(options.sent)
            ]
        )
        enrollments = Enrollment.objects.bulk_create(
            [Enrollment(sequence=earlier, contact=c, status=EnrollmentStatus.ACTIVE) for c in people]
        )
        StepExecution.objects.bulk_create(
            [
                StepExecution(enrollment=e, step=step, status=ExecutionStatus.EXECUTED, run_date=now.date())
                for e in enrollments
            ]
        )
        rows = OutboundMessage.objects.bulk_create(
            [
                OutboundMessage(
                    enrollment=e,
                    step=step,
                    sequence=earlier,
                    contact_id=e.contact_id,
                    owner=user,
                    mailbox=mailbox,
                    to_email=f"e{n}@client.example",
                    status=MessageStatus.SENT,
                    message_id=new_message_id(),
                    not_before=now - dt.timedelta(days=1),
                    sent_at=now - dt.timedelta(days=1),
                )
                for n, e in enumerate(enrollments)
            ]
        )
        result["open_paths"] = [tracking.open_url(r.pk).split("/", 3)[3] for r in rows]
        result["token"] = do_create_token(user)[1]
    return result


def _report(received_file: Path) -> dict[str, Any]:
    """Figures and integrity findings after a run (see docs/RELIABILITY.md)."""
    from django.db.models import Count, Exists, OuterRef

    from sequent.mail.models import EmailEvent, MessageStatus, OutboundMessage
    from sequent.sequences.models import (
        Enrollment,
        EnrollmentStatus,
        ExecutionStatus,
        RunSlot,
        Step,
        StepExecution,
    )
    from sequent.tasks.models import Task

    received = received_ids(received_file)
    outbox = dict(OutboundMessage.objects.values_list("message_id", "status"))
    executions = StepExecution.objects.filter(enrollment__sequence__name="Crash")
    enrollments = Enrollment.objects.filter(sequence__name="Crash")
    steps = Step.objects.filter(sequence__name="Crash").count()
    by_status = dict(executions.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    skipped_without_reason = executions.filter(status=ExecutionStatus.SKIPPED, reason="").count()
    crash_outbox = OutboundMessage.objects.filter(sequence__name="Crash")
    mail = dict(crash_outbox.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    queued = (MessageStatus.QUEUED, MessageStatus.DEFERRED, MessageStatus.SENDING)
    email_executions = executions.filter(step__kind="email", status=ExecutionStatus.EXECUTED)
    return {
        "enrollments": enrollments.count(),
        "enrollments_by_status": dict(
            enrollments.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        ),
        "due_steps": enrollments.count() * steps,
        "executions": by_status,
        "steps_lost": enrollments.count() * steps - sum(by_status.values()),
        "skipped_without_reason": skipped_without_reason,
        "mail": mail,
        "emails_executed": email_executions.count(),
        "email_executions_without_row": email_executions.exclude(
            Exists(OutboundMessage.objects.filter(enrollment=OuterRef("enrollment"), step=OuterRef("step")))
        ).count(),
        "received": sum(received.values()),
        "received_twice": sorted(mid for mid, n in received.items() if n > 1),
        "received_unknown": sorted(mid for mid in received if mid not in outbox),
        # A message the server got must be sent or uncertain, never waiting to be sent again.
        "received_but_resendable": sorted(
            mid for mid in received if outbox.get(mid) in (*queued, MessageStatus.FAILED)
        ),
        "sent_not_received": sorted(
            mid
            for mid in crash_outbox.filter(status=MessageStatus.SENT).values_list("message_id", flat=True)
            if mid not in received
        ),
        "exited_with_queued_mail": Enrollment.objects.filter(status=EnrollmentStatus.EXITED)
        .filter(Exists(OutboundMessage.objects.filter(enrollment=OuterRef("pk"), status__in=queued)))
        .count(),
        "outbox_without_execution": crash_outbox.exclude(
            Exists(StepExecution.objects.filter(enrollment=OuterRef("enrollment"), step=OuterRef("step")))
        ).count(),
        "outbox_of_other_contact": crash_outbox.exclude(
            Exists(Enrollment.objects.filter(pk=OuterRef("enrollment"), contact=OuterRef("contact")))
        ).count(),
        "executions_without_enrollment": StepExecution.objects.exclude(
            Exists(Enrollment.objects.filter(pk=OuterRef("enrollment")))
        ).count(),
        "events_without_message": EmailEvent.objects.filter(message__isnull=False)
        .exclude(Exists(OutboundMessage.objects.filter(pk=OuterRef("message"))))
        .count(),
        "sent_events": EmailEvent.objects.filter(message__sequence__name="Crash", kind="sent").count(),
        "sent_events_twice": EmailEvent.objects.filter(kind="sent")
        .values("message")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count(),
        "tasks": Task.objects.filter(enrollment__sequence__name="Crash").count(),
        "pending_enrollments": enrollments.filter(next_due_at__isnull=False).count(),
        "run_slots": list(RunSlot.objects.values_list("status", flat=True)),
        "opened_events": EmailEvent.objects.filter(kind="opened").count(),
        "opened_messages": EmailEvent.objects.filter(kind="opened").values("message").distinct().count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sequent.reliability.harness")
    sub = parser.add_subparsers(dest="command", required=True)
    sink = sub.add_parser("sink")
    sink.add_argument("port", type=int)
    sink.add_argument("file", type=Path)
    seeding = sub.add_parser("seed")
    seeding.add_argument("--contacts", type=int, default=500)
    seeding.add_argument("--smtp-port", type=int, required=True)
    seeding.add_argument("--sent", type=int, default=0)
    reporting = sub.add_parser("report")
    reporting.add_argument("file", type=Path)
    options = parser.parse_args(argv)
    if options.command == "sink":
        _serve_sink(options.port, options.file)
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequent.settings")
    import django

    django.setup()
    result = _seed(options) if options.command == "seed" else _report(options.file)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
