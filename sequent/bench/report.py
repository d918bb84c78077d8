"""The bench's report: every figure under a stable name, the issue's targets, and the
rich table or the JSON object."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Figure:
    """One reported figure: its stable name (a path in the JSON object), label and unit."""

    name: str
    label: str
    unit: str = ""


@dataclass(frozen=True)
class Target:
    """A target of issue #8; *applies* says whether it is judged for this report."""

    text: str
    met: Callable[[float], bool]
    applies: Callable[[dict[str, Any]], bool] = lambda report: True
    threshold: float | None = None  # the value judged against, to say how far off a figure is


FIGURES = [
    Figure("import.rows", "rows imported"),
    Figure("import.rows_per_s", "import speed", "rows/s"),
    Figure("import.peak_rss_mb", "import peak memory", "MB"),
    Figure("enroll.contacts", "contacts enrolled"),
    Figure("enroll.seconds", "enrollment time", "s"),
    Figure("enroll.per_s", "enrollment speed", "contacts/s"),
    Figure("run.workers_1.executions", "step executions, day 1"),
    Figure("run.workers_1.executions_per_s", "1 worker", "executions/s"),
    Figure("run.workers_2.executions", "step executions, day 2"),
    Figure("run.workers_2.executions_per_s", "2 workers", "executions/s"),
    Figure("run.speedup", "gain of the 2nd worker", "x"),
    Figure("deliver.emails", "emails delivered"),
    Figure("deliver.emails_per_s", "real sender", "emails/s"),
    Figure("deliver.floor_per_s", "bare smtplib floor", "emails/s"),
    Figure("deliver.ratio", "sender / floor"),
    Figure("track.requests", "tracking requests"),
    Figure("track.per_s", "tracking speed", "requests/s"),
    Figure("track.p50_ms", "latency p50", "ms"),
    Figure("track.p99_ms", "latency p99", "ms"),
    Figure("track.events_stored", "events stored"),
    Figure("track.lost", "requests without exactly one event"),
    Figure("memory.worker_peak_rss_mb", "worker peak memory", "MB"),
]

# The run phase's CPU split, shown after "run.speedup" when measured: what bounds the
# second worker's gain. The PostgreSQL figures are absent on SQLite (it runs in the worker).
SPLIT_FIGURES = [
    Figure("run.workers_1.worker_cpu_s_per_100k", "worker CPU per 100k executions, 1 worker", "s"),
    Figure("run.workers_1.db_cpu_s_per_100k", "PostgreSQL CPU per 100k executions, 1 worker", "s"),
    Figure("run.workers_1.cores_busy", "cores busy, 1 worker"),
    Figure("run.workers_2.worker_cpu_s_per_100k", "worker CPU per 100k executions, 2 workers", "s"),
    Figure("run.workers_2.db_cpu_s_per_100k", "PostgreSQL CPU per 100k executions, 2 workers", "s"),
    Figure("run.workers_2.cores_busy", "cores busy, 2 workers"),
    Figure("run.speedup_ceiling", "gain ceiling: all cores busy at day 2's CPU cost", "x"),
]


def _postgres(report: dict[str, Any]) -> bool:
    return str(report.get("database", "")) == "postgres"


TARGETS: dict[str, Target] = {
    # 1,000,000 contacts in under 20 s.
    "enroll.per_s": Target(">= 50,000 (1M in < 20 s)", lambda v: v >= 50_000, threshold=50_000),
    "run.workers_1.executions_per_s": Target(">= 5,000", lambda v: v >= 5_000, threshold=5_000),
    # "Near-linear" gain from a second worker, judged on PostgreSQL only.
    "run.speedup": Target(">= 1.8 on PostgreSQL", lambda v: v >= 1.8, _postgres, threshold=1.8),
    "deliver.ratio": Target(">= 0.6", lambda v: v >= 0.6, threshold=0.6),
    "track.per_s": Target(">= 1,000", lambda v: v >= 1_000, threshold=1_000),
    "track.lost": Target("= 0", lambda v: v == 0),
    "memory.worker_peak_rss_mb": Target("< 250", lambda v: v < 250, threshold=250),
    "import.peak_rss_mb": Target("< 300", lambda v: v < 300, threshold=300),
}


def lookup(report: dict[str, Any], name: str) -> Any:
    """The value at a dotted *name* of the report, None when absent."""
    value: Any = report
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def speedup_ceiling(run: dict[str, Any]) -> float | None:
    """The most ``run.speedup`` could be from the CPU split: the 2-worker run with every
    core busy at its CPU cost per execution, over the 1-worker rate. Day 2 has other
    steps than day 1, so this is not simply cores / cores busy with one worker."""
    bound = lookup(run, "workers_2.cpu_bound_per_s")
    rate = lookup(run, "workers_1.executions_per_s")
    return round(bound / rate, 2) if bound and rate else None


def with_derived(report: dict[str, Any]) -> dict[str, Any]:
    """*report* with ``run.speedup_ceiling`` filled in when the run phase has the CPU
    split but not the figure. PostgreSQL only: SQLite's one writer at a time, not the
    CPU, bounds a second worker there."""
    run = report.get("run")
    if not isinstance(run, dict) or run.get("speedup_ceiling") is not None or not _postgres(report):
        return report
    ceiling = speedup_ceiling(run)
    return report if ceiling is None else {**report, "run": {**run, "speedup_ceiling": ceiling}}


def shown_figures(report: dict[str, Any]) -> list[Figure]:
    """The figures of the table, in order: the CPU split follows the run's gain when measured."""
    figures = []
    for figure in FIGURES:
        figures.append(figure)
        if figure.name == "run.speedup":
            figures.extend(f for f in SPLIT_FIGURES if lookup(report, f.name) is not None)
    return figures


def judge(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with whether it was met (None: not measured or not judged here)."""
    verdicts = {}
    for name, target in TARGETS.items():
        value = lookup(report, name)
        verdict: dict[str, Any] = {"target": target.text, "met": None}
        if isinstance(value, int | float) and not isinstance(value, bool) and target.applies(report):
            verdict["met"] = bool(target.met(value))
            if target.threshold:
                # 0.2 = a fifth of the target speed; 1.3 = 30 % over a memory ceiling.
                verdict["of_target"] = round(value / target.threshold, 3)
        verdicts[name] = verdict
    return verdicts


def write_json(report: dict[str, Any], out: IO[str]) -> None:
    """The whole report as one JSON object."""
    out.write(json.dumps(report, indent=2, sort_keys=False) + "\n")


def _shown(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:,.2f}" if value < 10 else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def _off(verdict: dict[str, Any]) -> str:
    share = verdict.get("of_target")
    return f" ({share:.0%} of target)" if share is not None else ""


def print_table(report: dict[str, Any], console: Console) -> None:
    """The human report: one row per figure, with its target and verdict."""
    report = with_derived(report)
    machine = report.get("machine", {})
    size = report.get("size", {})
    table = Table(
        title=(
            f"sequent bench — size {size.get('name')}, {machine.get('database')}, "
            f"{machine.get('cpus')} CPUs, load {machine.get('load_before')}"
        ),
        show_lines=False,
    )
    for column, justify in (
        ("phase", "left"),
        ("figure", "left"),
        ("value", "right"),
        ("target", "left"),
        ("", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    targets = report.get("targets", {})
    for figure in shown_figures(report):
        phase = figure.name.split(".")[0]
        if phase not in report:
            continue
        verdict = targets.get(figure.name, {})
        met = verdict.get("met")
        mark = "" if met is None else ("[green]met[/]" if met else "[red]missed[/]" + _off(verdict))
        table.add_row(
            phase,
            figure.label,
            _shown(lookup(report, figure.name), figure.unit),
            verdict.get("target", ""),
            mark,
        )
    console.print(table)
    for note in report.get("notes", []):
        console.print(f"note: {note}", soft_wrap=True)


def markdown(report: dict[str, Any]) -> str:
    """The report as the Markdown table docs/BENCHMARKS.md keeps, one per database and size."""
    report = with_derived(report)
    machine = report.get("machine", {})
    size = report.get("size", {})
    lines = [
        f"{size.get('contacts', 0):,} contacts, {machine.get('database')}, {machine.get('cpus')} CPUs, "
        f"load average {machine.get('load_before')} before, {machine.get('load_after')} after; "
        f"whole bench {report.get('seconds')} s.",
        "",
        "| phase | figure | value | target | |",
        "| --- | --- | ---: | --- | --- |",
    ]
    targets = report.get("targets", {})
    for figure in shown_figures(report):
        phase = figure.name.split(".")[0]
        if phase not in report:
            continue
        verdict = targets.get(figure.name, {})
        met = verdict.get("met")
        mark = "" if met is None else ("met" if met else "**missed**" + _off(verdict))
        value = _shown(lookup(report, figure.name), figure.unit)
        lines.append(f"| {phase} | {figure.label} | {value} | {verdict.get('target', '')} | {mark} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    # python -m sequent.bench.report FILE.json: the Markdown table of a saved --json report.
    import sys

    with open(sys.argv[1], encoding="utf-8") as saved:
        loaded = json.load(saved)
    loaded["targets"] = judge(loaded)
    sys.stdout.write(markdown(loaded))
