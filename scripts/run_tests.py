"""Run the suite on SQLite, then on PostgreSQL when it answers; end with one summary line.

PostgreSQL is used when TEST_DATABASE_URL is set or 127.0.0.1:5432 accepts a
connection. With SEQUENT_REQUIRE_POSTGRES=1 (CI) a missing PostgreSQL is a failure.
The browser tests (sequent/ui_tests) need /usr/bin/chromium: installed here with
apt-get when missing and running as root; otherwise they skip, loudly, unless
SEQUENT_REQUIRE_BROWSER=1 (CI) makes them fail. Extra arguments are passed to pytest.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/test"
CHROMIUM = Path("/usr/bin/chromium")


def ensure_browser() -> None:
    """Install Debian's Chromium for the browser tests when missing and allowed to."""
    if CHROMIUM.exists():
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        print("Installing chromium for the browser tests (apt-get install -y chromium) ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.call(["apt-get", "update", "-qq"], env=env)
        subprocess.call(["apt-get", "install", "-y", "-qq", "chromium"], env=env)
    if not CHROMIUM.exists():
        print("\n" + "!" * 78)
        print("!!! /usr/bin/chromium is missing: the browser tests (sequent/ui_tests) will be SKIPPED.")
        print("!!! Install it with `apt-get install -y chromium`, or run `make test` as root.")
        print("!" * 78 + "\n", flush=True)


def postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return DEFAULT_PG
    except OSError:
        return None


def run(label: str, database_url: str | None, extra: list[str]) -> dict[str, int]:
    env = dict(os.environ)
    env.pop("DATABASE_URL", None)
    if database_url:
        env["DATABASE_URL"] = database_url
    env["SEQUENT_TEST_DATABASE"] = label
    workers = os.environ.get("PYTEST_WORKERS", "2")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-q", f"--junitxml={report}", *extra]
        if workers not in ("0", "1"):
            cmd[3:3] = ["-n", workers]
        print(f"\n=== {label}: {' '.join(cmd[2:])}", flush=True)
        rc = subprocess.call(cmd, cwd=ROOT, env=env)
        counts = {"passed": 0, "failed": 0, "skipped": 0, "rc": rc}
        if report.exists():
            suite = ET.parse(report).getroot()
            suites = [suite] if suite.tag == "testsuite" else list(suite)
            for s in suites:
                tests = int(s.get("tests", 0))
                failed = int(s.get("failures", 0)) + int(s.get("errors", 0))
                skipped = int(s.get("skipped", 0))
                counts["failed"] += failed
                counts["skipped"] += skipped
                counts["passed"] += tests - failed - skipped
        if rc != 0 and counts["failed"] == 0:
            counts["failed"] = 1  # pytest itself failed (collection error, no tests ...)
    return counts


def main() -> int:
    extra = sys.argv[1:]
    ensure_browser()
    results = {"sqlite": run("sqlite", None, extra)}
    url = postgres_url()
    if url:
        results["postgres"] = run("postgres", url, extra)
    elif os.environ.get("SEQUENT_REQUIRE_POSTGRES") == "1":
        print("PostgreSQL is required (SEQUENT_REQUIRE_POSTGRES=1) but 127.0.0.1:5432 does not answer")
        results["postgres"] = {"passed": 0, "failed": 1, "skipped": 0, "rc": 1}
    else:
        print("\nPostgreSQL not reachable on 127.0.0.1:5432 and TEST_DATABASE_URL unset: SQLite only.")
    detail = "; ".join(
        f"{name} {r['passed']} passed, {r['failed']} failed, {r['skipped']} skipped"
        for name, r in results.items()
    )
    print(f"\n{detail}")
    total = {k: sum(r[k] for r in results.values()) for k in ("passed", "failed", "skipped")}
    print(f"total: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 0 if all(r["rc"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
