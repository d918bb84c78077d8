"""Crash anywhere: `sequent worker` processes killed with SIGKILL at random moments during
a daily run that sends email to a real SMTP server. Nothing is sent twice, no step is lost,
the database stays consistent. Figures: docs/RELIABILITY.md."""

from __future__ import annotations

import json
import time

import pytest
from django.db import connection

from sequent.reliability import harness

CONTACTS = 400
KILLS = 30
SEED = 20261127


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_survives_workers_killed_at_random_moments(tmp_path):
    vendor = connection.vendor
    started = time.monotonic()
    with harness.worker_database(tmp_path) as url, harness.smtp_sink(tmp_path) as (smtp_port, received):
        seeded = harness.seed(url, contacts=CONTACTS, smtp_port=smtp_port)
        loop = harness.KillLoop(url, seed=SEED, kills_wanted=KILLS)
        loop.run(deadline=time.monotonic() + 420)
        pending_after_kills = harness.pending_work(url)
        received_during_kills = sum(harness.received_ids(received).values())
        # Time passes beyond every lease the dead workers held; a last worker finishes the run.
        harness.recover(url)
        figures = harness.report(url, received)
        checks = harness.sqlite_checks(url) if vendor == "sqlite" else ("ok", [])

    figures.update(
        database=vendor,
        kills=loop.kills,
        restarts=loop.restarts,
        pending_after_kills=pending_after_kills,
        received_during_kills=received_during_kills,
        seconds=round(time.monotonic() - started),
    )
    print("\nRELIABILITY crash", json.dumps(figures, sort_keys=True))

    assert loop.crashed == [], "a worker died by itself"
    assert loop.kills >= KILLS
    assert seeded["contacts"] == figures["enrollments"] == CONTACTS
    # No Message-ID received twice; every received one is known and never queued again.
    assert figures["received_twice"] == []
    assert figures["received_unknown"] == []
    assert figures["received_but_resendable"] == []
    assert figures["sent_not_received"] == []
    assert figures["sent_events_twice"] == 0
    # Every due step executed or skipped with a reason; every email sent or uncertain.
    assert figures["steps_lost"] == 0
    assert figures["pending_enrollments"] == 0
    assert figures["skipped_without_reason"] == 0
    assert figures["executions"].get("skipped", 0) == CONTACTS  # the SMS step: nobody has a mobile
    assert set(figures["mail"]) <= {"sent", "uncertain"}
    assert sum(figures["mail"].values()) == figures["emails_executed"] == CONTACTS
    assert figures["email_executions_without_row"] == 0
    assert figures["tasks"] == CONTACTS
    assert figures["run_slots"] == ["done"]
    # Integrity.
    assert figures["exited_with_queued_mail"] == 0
    assert figures["outbox_without_execution"] == 0
    assert figures["outbox_of_other_contact"] == 0
    assert figures["executions_without_enrollment"] == 0
    assert figures["events_without_message"] == 0
    assert checks == ("ok", [])
