"""Concurrency: four workers on one PostgreSQL database execute each step exactly once;
on SQLite the web app answers tracking hits and API writes while a worker runs, with no
"database is locked" reaching a user and no event lost. Figures: docs/RELIABILITY.md."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from sequent.reliability import harness

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Safari/537.36"


@pytest.mark.postgres_only
@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_executes_each_step_once_with_four_workers(tmp_path):
    contacts = 1000
    started = time.monotonic()
    with harness.worker_database(tmp_path) as url, harness.smtp_sink(tmp_path) as (smtp_port, received):
        harness.seed(url, contacts=contacts, smtp_port=smtp_port)
        outputs = harness.run_workers_until_idle(url, 4)
        figures = harness.report(url, received)
    figures.update(workers=4, seconds=round(time.monotonic() - started))
    print("\nRELIABILITY four-workers", json.dumps(figures, sort_keys=True))

    assert all("stopped" in out for out in outputs), outputs
    assert figures["executions"] == {"executed": 2 * contacts, "skipped": contacts}
    assert figures["steps_lost"] == 0
    assert figures["mail"] == {"sent": contacts}
    assert figures["received"] == contacts
    assert figures["received_twice"] == []
    assert figures["sent_events"] == contacts
    assert figures["tasks"] == contacts
    assert figures["run_slots"] == ["done"]


def _call(base: str, method: str, path: str, token: str = "", body: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{base}/{path.lstrip('/')}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"User-Agent": BROWSER, "Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_answers_hits_and_api_writes_on_sqlite_while_a_worker_runs(tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite single-writer case")
    hits, writes = 300, 100
    with harness.worker_database(tmp_path) as url, harness.smtp_sink(tmp_path) as (smtp_port, received):
        seeded = harness.seed(url, contacts=1500, smtp_port=smtp_port, sent=hits)
        port = harness.free_port()
        web = subprocess.Popen(
            [
                *(sys.executable, "-m", "sequent", "serve", "--skip-checks", "--no-worker", "--no-catcher"),
                *("--port", str(port), "--workers", "2", "--threads", "4"),
            ],
            cwd=harness.ROOT,
            env=harness.python_env(url, SEQUENT_CATCHER="0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        worker = None
        try:
            assert web.stdout is not None
            for line in web.stdout:
                if "Sequent is running" in line:
                    break
            base = f"http://127.0.0.1:{port}"
            worker = harness.start_worker(url, "busy", batch_size=100)
            harness.wait_started(worker)
            token = seeded["token"]
            calls = [("GET", path, "", None) for path in seeded["open_paths"]]
            calls += [
                ("POST", "api/v1/contacts", token, {"first_name": f"Api{n}", "email": f"api{n}@example.com"})
                for n in range(writes)
            ]
            calls.sort(key=lambda c: hash(c[1]))  # interleave reads and writes
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda c: _call(base, *c), calls))
            created = [json.loads(body)["id"] for status, body in answers if status == 201]
            with ThreadPoolExecutor(8) as pool:
                answers += list(
                    pool.map(
                        lambda pk: _call(
                            base, "PATCH", f"api/v1/contacts/{pk}", token, {"job_title": "Buyer"}
                        ),
                        created,
                    )
                )
            worker_busy = harness.pending_work(url) > 0  # the run was still going during the calls
            deadline = time.monotonic() + 180
            while harness.pending_work(url) and time.monotonic() < deadline:
                time.sleep(0.3)
        finally:
            for process in (web, worker):
                if process is not None:
                    process.send_signal(signal.SIGTERM)
                    process.communicate(timeout=60)
        figures = harness.report(url, received)
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            api_contacts = db.execute(
                "SELECT COUNT(*) FROM crm_contact WHERE email LIKE 'api%' AND job_title = 'Buyer'"
            ).fetchone()[0]

    errors = [(status, body[:200]) for status, body in answers if status >= 500 or "locked" in body]
    statuses = sorted({status for status, _ in answers})
    print(
        "\nRELIABILITY sqlite-web",
        json.dumps({"calls": len(answers), "statuses": statuses, "worker_busy": worker_busy, **figures}),
    )
    assert errors == []
    assert statuses == [200, 201]
    assert api_contacts == writes
    # Every open hit became exactly one event, one per message.
    assert figures["opened_events"] == figures["opened_messages"] == hits
    assert figures["steps_lost"] == 0
    assert figures["received_twice"] == []
