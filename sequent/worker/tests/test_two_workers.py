"""Two `sequent worker` processes sharing one PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from sequent.crm.models import Contact
from sequent.lib import clock
from sequent.mail.models import OutboundMessage
from sequent.sequences import actions
from sequent.sequences.models import Enrollment, EnrollmentStatus, RunSlot, RunSlotStatus, StepExecution
from sequent.tasks.models import Task

ROOT = Path(__file__).resolve().parents[3]
CONTACTS = 20_000


def database_url() -> str:
    """The URL of the database this test runs on, for the worker subprocesses."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "") + (f":{quote(s['PASSWORD'])}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.mark.postgres_only
@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_executes_every_due_step_exactly_once_with_two_workers(rep):
    Contact.objects.bulk_create(
        [Contact(first_name=f"C{n}", email=f"c{n}@example.com") for n in range(CONTACTS)], batch_size=5000
    )
    now = clock.now()
    sequence = actions.do_create_sequence(
        rep, "Big", time_zone="UTC", send_time="00:00", exclude_weekends=False
    )
    actions.do_add_step(sequence, "follow_up", day=1)
    actions.do_add_step(sequence, "email", day=1, subject="Hello")
    actions.do_add_contacts(sequence, list(Contact.objects.values_list("pk", flat=True)))
    with clock.frozen(now - dt.timedelta(days=2)):
        actions.do_activate(sequence)  # today's 00:00 UTC slot is due

    env = {**os.environ, "DATABASE_URL": database_url(), "PYTHONUNBUFFERED": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "sequent", "worker", "--idle-sleep", "0.2", "--worker-id", f"w{n}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in (1, 2)
    ]
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if RunSlot.objects.filter(sequence=sequence, status=RunSlotStatus.DONE).exists():
                break
            assert all(w.poll() is None for w in workers), "a worker died"
            time.sleep(0.5)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        outputs = [w.communicate(timeout=60)[0] for w in workers]

    assert all(w.returncode == 0 for w in workers), outputs
    assert all("stopped" in out for out in outputs), outputs
    assert RunSlot.objects.filter(sequence=sequence).count() == 1
    assert Enrollment.objects.filter(sequence=sequence, status=EnrollmentStatus.COMPLETED).count() == CONTACTS
    assert StepExecution.objects.filter(status="executed").count() == 2 * CONTACTS
    assert Task.objects.count() == CONTACTS
    assert OutboundMessage.objects.count() == CONTACTS
    assert not Enrollment.objects.filter(next_due_at__isnull=False).exists()
