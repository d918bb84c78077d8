"""Measure a run that enrolls many matching contacts (not a test; figures in docs/ENGINE.md).

    python -m sequent.sequences.bench_enroll setup --contacts 1000000
    python -m sequent.sequences.bench_enroll run      # in a fresh process: time and peak RSS
    python -m sequent.sequences.bench_enroll run --days-later 1   # the next run, all enrolled

``setup`` writes N contacts with one set-based INSERT and a sequence whose audience
condition matches all of them; ``run`` starts the sequence's due run (exits,
enrollment by INSERT ... SELECT, marking due) and reports the time it took and the
process's peak resident memory. Use a freshly migrated database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import time
from typing import Any


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequent.settings")
    import django

    django.setup()


def insert_contacts(count: int) -> None:
    """Insert *count* contacts named C<n> Bench in one statement (a number series in SQL)."""
    from django.db import connection

    from sequent.crm.models import Contact

    template = Contact(last_name="Bench")
    columns, values, params = [], [], []
    for field in Contact._meta.concrete_fields:
        if field.primary_key or field.column is None:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.name == "first_name":
            values.append("'C' || n")
        elif field.name == "email":
            values.append("'c' || n || '@bench.example'")
        else:
            values.append("%s")
            params.append(field.get_db_prep_save(getattr(template, field.attname), connection))
    if connection.vendor == "postgresql":
        series = "generate_series(1, %s) AS n"
    else:
        series = (
            "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) SELECT n FROM s)"
        )
    table = connection.ops.quote_name(Contact._meta.db_table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {series}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, count])


def setup(count: int) -> None:
    """Fresh contacts and one active sequence whose run is due now."""
    from sequent.crm.models import Contact
    from sequent.lib import clock
    from sequent.sequences import actions
    from sequent.sequences.models import Sequence
    from sequent.users.models import User

    if Sequence.objects.filter(name="Bench").exists() or Contact.objects.filter(last_name="Bench").exists():
        raise SystemExit("this database already holds a benchmark: migrate a fresh one")
    owner, _ = User.objects.get_or_create(email="bench@sequent.local")
    started = time.monotonic()
    insert_contacts(count)
    print(f"inserted {count} contacts in {time.monotonic() - started:.1f}s")
    sequence = actions.do_create_sequence(
        owner,
        "Bench",
        time_zone="UTC",
        send_time="00:00",
        exclude_weekends=False,
        audience_conditions=[{"field": "last_name", "op": "equals", "value": "Bench"}],
    )
    actions.do_add_step(sequence, "follow_up", day=1)
    with clock.frozen(clock.now() - dt.timedelta(days=2)):
        actions.do_activate(sequence)


def run(days_later: int = 0) -> dict[str, Any]:
    """Start the due run of the Bench sequence (*days_later* days from now, to measure a
    run over enrollments that already exist); report time, counts and peak RSS."""
    from sequent.lib import clock
    from sequent.sequences import runs
    from sequent.sequences.models import Sequence

    sequence = Sequence.objects.get(name="Bench")
    at = clock.now() + dt.timedelta(days=days_later)
    started = time.monotonic()
    slot = runs.start_run(sequence.pk, "bench", at)
    elapsed = time.monotonic() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "seconds": round(elapsed, 1),
        "enrolled": slot.enrolled if slot else 0,
        "marked_due": slot.enrollments_due if slot else 0,
        "peak_rss_mb": round(peak_kb / 1024),
    }
    print(result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("setup")
    make.add_argument("--contacts", type=int, default=1_000_000)
    go = sub.add_parser("run")
    go.add_argument("--days-later", type=int, default=0, help="run the slot this many days ahead")
    args = parser.parse_args()
    _setup_django()
    if args.command == "setup":
        setup(args.contacts)
    else:
        run(args.days_later)


if __name__ == "__main__":
    main()
