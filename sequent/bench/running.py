"""Phase **run**: step executions per second in a daily run, with 1 and with 2 workers.

Day 1 (started by the enroll phase) is processed by one worker process, day 2 (started
here, not measured) by two. Each worker is the loop of ``sequent worker`` (the same
``Worker`` class) without email and SMS delivery, so the figure is the engine's own:
deciding steps, recording skips, queueing emails and SMS, creating tasks. Workers load
Django first, say "ready", and start together on "go"; a run's time is the longest
worker's time from "go" to idle. Executions are counted by their run date.

The CPU split says what bounds the second worker's gain: each worker reads its own
CPU time and, on PostgreSQL, that of its server backend (``/proc/<pid>/stat`` of
``pg_backend_pid()``; the server runs on this machine and shares its cores). With
every core busy at a run's CPU cost per execution, no number of workers goes faster
than ``cpu_bound_per_s``; a run that keeps ``c`` cores busy with one worker can gain
at most ``cpus / c`` from more, whatever the locking does.
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
    worker_cpu = sum(r["worker_cpu_s"] for r in results)
    db_cpus = [r["db_cpu_s"] for r in results]
    db_cpu = None if None in db_cpus else sum(db_cpus)
    executions = counts["executions"]
    cpu = worker_cpu + (db_cpu or 0.0)
    cpus = os.cpu_count() or 1
    return {
        "workers": workers,
        **counts,
        "enrollments": sum(r["enrollments"] for r in results),
        "batches": sum(r["batches"] for r in results),
        "statements": sum(r["statements"] for r in results),
        "seconds": round(seconds, 3),
        "executions_per_s": round(executions / seconds, 1) if seconds else None,
        "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
        "worker_cpu_s": round(worker_cpu, 2),
        "db_cpu_s": round(db_cpu, 2) if db_cpu is not None else None,
        "worker_cpu_s_per_100k": _per_100k(worker_cpu, executions),
        "db_cpu_s_per_100k": _per_100k(db_cpu, executions),
        # Cores the run kept busy on average (worker processes and their backends).
        "cores_busy": round(cpu / seconds, 2) if seconds else None,
        # The rate if every core of the machine went to this run at its CPU cost per
        # execution: no number of workers gets past it.
        "cpu_bound_per_s": round(cpus * executions / cpu, 1) if cpu else None,
    }


def _per_100k(cpu: float | None, executions: int) -> float | None:
    return round(cpu * 100_000 / executions, 2) if cpu is not None and executions else None


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
    from django.db import connection

    from sequent.lib import clock
    from sequent.worker.loop import Worker

    worker = Worker(f"bench:{os.getpid()}", idle_sleep=0, imports=False, mail=False)
    backend = _backend_pid()  # also opens the connection before "go"
    statements = 0

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("no go")
    instant = dt.datetime.fromisoformat(at)
    with clock.frozen(instant), connection.execute_wrapper(count):
        db_before = _process_cpu(backend)
        cpu_before = _own_cpu()
        started = time.perf_counter()
        stats = worker.run(until_idle=True)
        seconds = time.perf_counter() - started
        cpu = _own_cpu() - cpu_before
    db_after = _process_cpu(backend)
    # A reconnection mid-run would hide part of the backend time: report none then.
    same_backend = backend is not None and _backend_pid() == backend
    db_cpu = db_after - db_before if same_backend and db_before is not None and db_after is not None else None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counts = count_executions(instant.date())
    if then_start:
        start_day(then_start)
    return {
        "seconds": seconds,
        "counts": counts,
        "enrollments": stats.enrollments,
        "batches": stats.batches,
        "statements": statements,
        "worker_cpu_s": cpu,
        "db_cpu_s": db_cpu,
        "peak_rss_mb": round(peak / 1024, 1),
    }


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _backend_pid() -> int | None:
    """The process id of this connection's PostgreSQL backend (None on SQLite)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def _process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process *pid* so far, from ``/proc`` (None when
    unreadable, e.g. a server on another machine)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return None
    # After the command name: state is field 3 of proc(5), utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
