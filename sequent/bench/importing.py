"""Phase **import**: a generated CSV of contacts through the real importer.

The file is written to the workspace folder first (not measured), then one import job
runs in this child process exactly as ``sequent import contacts`` runs it: created,
claimed, run. Figures: rows per second and the process's peak resident memory.
"""

from __future__ import annotations

import csv
import resource
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from faker import Faker

from sequent.bench.data import COUNTRIES, JOB_TITLES, SEED
from sequent.bench.sizes import SIZES
from sequent.crm import imports
from sequent.users.models import User

HEADER = ["First Name", "Last Name", "Email", "Mobile", "Job Title", "Company", "Country"]
POOL = 1000
BAD_EVERY = 200  # one row in 200 has an email address the importer rejects


def write_csv(path: Path, rows: int) -> None:
    """*rows* contacts of generated people, a few with a bad email address."""
    fake = Faker("en_US")
    Faker.seed(SEED + 1)
    people = [(fake.first_name(), fake.last_name(), fake.company()) for _ in range(POOL)]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(rows):
            first, last, company = people[n % POOL]
            email = f"{first}.{last}.{n}@imported.example".lower()
            if n % BAD_EVERY == BAD_EVERY - 1:
                email = f"{first}.{last}.{n} at imported.example"
            mobile = f"+1 415 555 {n % 10000:04d}" if n % 2 else ""
            writer.writerow([first, last, email, mobile, JOB_TITLES[n % 6], company, COUNTRIES[n % 8]])


def measure(size: str, importer: str, **_: Any) -> dict[str, Any]:
    """Import the generated CSV of *size* as the user *importer*; rows/s and peak RSS."""
    rows = SIZES[size].import_rows
    path = Path(settings.VAR_DIR) / "bench-import.csv"
    write_csv(path, rows)
    owner = User.objects.get(email=importer)
    job = imports.do_create_import(owner, "contacts", path, tag="bench", on_duplicate="skip")
    claimed = imports.claim_import(job.pk, "bench:import")
    if claimed is None:
        raise RuntimeError("the import job was not claimable")
    started = time.perf_counter()
    job = imports.do_run_import(claimed)
    seconds = time.perf_counter() - started
    path.unlink()
    return {
        "rows": job.rows_seen,
        "created": job.created_count,
        "bad_rows": job.error_count,
        "status": job.status,
        "seconds": round(seconds, 3),
        "rows_per_s": round(job.rows_seen / seconds, 1) if seconds else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
