"""`sequent bench` end to end, at the hidden test size, on SQLite."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sequent.bench.report import FIGURES, lookup

STABLE_NAMES = [figure.name for figure in FIGURES] + [
    "run.workers_1.seconds",
    "run.workers_2.seconds",
    "deliver.seconds",
    "machine.cpus",
    "machine.python",
    "machine.database",
    "size.name",
    "size.contacts",
]


def _user_database(path: Path) -> None:
    """A stand-in for the user's own database, with rows the bench must leave alone."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE crm_contact (id integer PRIMARY KEY, email text)")
        db.executemany(
            "INSERT INTO crm_contact (email) VALUES (?)", [("dana@client.example",), ("eli@x.example",)]
        )


def _snapshot(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}


def _sequent_script() -> str:
    script = Path(sys.executable).parent / "sequent"
    return str(script) if script.exists() else "sequent"


@pytest.mark.slow
def test_it_reports_every_figure_and_leaves_the_users_data_alone(tmp_path: Path) -> None:
    user_var = tmp_path / "user-var"
    user_var.mkdir()
    user_db = user_var / "sequent.sqlite3"
    _user_database(user_db)
    before = _snapshot(user_db)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{user_db}", "SEQUENT_VAR_DIR": str(user_var)}

    done = subprocess.run(
        [_sequent_script(), "bench", "--size", "test", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)  # one JSON object, nothing else on stdout
    missing = [name for name in STABLE_NAMES if lookup(report, name) is None]
    assert missing == []
    assert report["track"]["lost"] == 0
    assert report["track"]["requests"] == report["size"]["track_requests"]
    assert report["deliver"]["ratio"] > 0
    assert report["run"]["workers_1"]["executions"] > 0
    assert report["enroll"]["contacts"] > 0
    assert _snapshot(user_db) == before
    assert sorted(p.name for p in user_var.iterdir()) == ["sequent.sqlite3"]


def test_it_refuses_an_unknown_phase() -> None:
    done = subprocess.run(
        [_sequent_script(), "bench", "--phases", "import,warp"], capture_output=True, text=True, check=False
    )

    assert done.returncode == 2
    assert "warp" in done.stderr
