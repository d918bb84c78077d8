"""Phase **run**: step executions per second in a daily run, with 1 and with 2 workers.

Day 1 (started by the enroll phase) is processed by one worker process, day 2 (started
here, not measured) by two. Each worker is the loop of ``sequent worker`` (the same
``Worker`` class) without email and SMS delivery, so the figure is the engine's own:
deciding steps, recording skips, queueing emails and SMS, creating tasks. Workers load
Django first, say "ready", and start together on "go"; a run's time is the longest
worker's time from "go" to idle. Executions are counted by their run date.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import sys
import time
from typing import Any

from sequent.bench import child
from sequent.bench.workspace import Workspace


def measure(
    workspace: Workspace, at: str, workers: int, then_start: str = "", timeout: float | None = None
) -> dict[str, Any]:
    """Parent side: process the due enrollments at *at* with *workers* worker processes;
    with *then_start*, the (last) worker then starts the runs due at that instant."""
    processes = [
        child.spawn(workspace, "worker", at=at, then_start=then_start if n == workers - 1 else "")
        for n in range(workers)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                child.result_of(process, "worker")  # raises with the child's error
                raise child.ChildFailed(f"worker said {line!r}")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        results = [child.result_of(process, "worker", timeout) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    # Each worker counted the run's executions when it went idle: the last one saw them all.
    counts = max((r["counts"] for r in results), key=lambda c: c["executions"])
    seconds = max(r["seconds"] for r in results)
    return {
        "workers": workers,
        **counts,
        "enrollments": sum(r["enrollments"] for r in results),
        "seconds": round(seconds, 3),
        "executions_per_s": round(counts["executions"] / seconds, 1) if seconds else None,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
    }


def start_day(at: str) -> dict[str, Any]:
    """Start the run of every due sequence at *at*, as a worker would (not measured)."""
    from sequent.lib import clock
    from sequent.sequences import runs

    instant = dt.datetime.fromisoformat(at)
    started = time.perf_counter()
    due = 0
    with clock.frozen(instant):
        for sequence_id in runs.due_sequence_ids(instant):
            slot = runs.start_run(sequence_id, "bench:start", instant)
            due += slot.enrollments_due if slot else 0
    return {"enrollments_due": due, "seconds": round(time.perf_counter() - started, 3)}


def work(at: str, then_start: str = "", **_: Any) -> dict[str, Any]:
    """Child: one worker process, from "go" until there is nothing left to do at *at*;
    then (not measured) the executions of that run, and the runs due at *then_start*."""
    from sequent.lib import clock
    from sequent.worker.loop import Worker

    worker = Worker(f"bench:{os.getpid()}", idle_sleep=0, imports=False, mail=False)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no go")
    instant = dt.datetime.fromisoformat(at)
    with clock.frozen(instant):
        started = time.perf_counter()
        stats = worker.run(until_idle=True)
        seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = count_executions(instant.date())
    if then_start:
        start_day(then_start)
    return {
        "seconds": seconds,
        "counts": counts,
        "enrollments": stats.enrollments,
        "batches": stats.batches,
        "peak_rss_mb": round(peak / 1024, 1),
    }


def count_executions(run_date: dt.date) -> dict[str, Any]:
    """The step executions recorded by the run of *run_date*, by status."""
    from django.db.models import Count

    from sequent.sequences.models import StepExecution

    by_status = dict(
        StepExecution.objects.filter(run_date=run_date)
        .values_list("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return {
        "executions": sum(by_status.values()),
        "executed": by_status.get("executed", 0),
        "skipped": by_status.get("skipped", 0),
    }
