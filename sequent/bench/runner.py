"""`sequent bench`: parse the options, make the workspace, run the phases, report.

    sequent bench [--size small|medium|large] [--database sqlite|postgres]
                  [--database-url URL] [--json] [--phases import,enroll,run,deliver,track,memory]

The generated data and the day-1 enrollment always happen (later phases need them);
``--phases`` chooses what is measured and reported. This process never opens the
user's database: every measured part runs in a child process of the workspace.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sys
import time
from types import FrameType
from typing import Any

import psycopg
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sequent.bench import child, memory, report, running, tracking
from sequent.bench.sizes import PUBLIC_SIZES, SIZES, instants
from sequent.bench.workspace import DEFAULT_ADMIN_URL, Workspace

PHASES = ("import", "enroll", "run", "deliver", "track", "memory")
# What each phase needs measured before it (its data comes from there).
NEEDS = {"run": {"enroll"}, "memory": {"run"}, "deliver": {"run"}, "track": {"deliver"}}


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line of `sequent bench`."""
    parser = argparse.ArgumentParser(
        prog="sequent bench",
        description="Measure Sequent in a throwaway workspace (your own data is never touched).",
    )
    parser.add_argument(
        "--size",
        default="small",
        # "test" is a hidden size for the test suite.
        choices=[*PUBLIC_SIZES, "test"],
        metavar="{" + ",".join(PUBLIC_SIZES) + "}",
        help="small: 10k contacts (about a minute), medium: 100k, large: 1M",
    )
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SEQUENT_BENCH_ADMIN_URL", DEFAULT_ADMIN_URL),
        help="PostgreSQL admin connection; the bench creates and drops sequent_bench_<pid> there",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, no table")
    parser.add_argument(
        "--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}"
    )
    args = parser.parse_args(argv)
    chosen = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(chosen) - set(PHASES))
    if unknown or not chosen:
        parser.error(f"--phases: choose among {', '.join(PHASES)} (unknown: {', '.join(unknown) or 'none'})")
    args.phases = chosen
    return args


def needed(chosen: list[str]) -> set[str]:
    """The phases to run: those chosen and those they depend on."""
    todo = set(chosen)
    while True:
        more = set().union(*(NEEDS.get(p, set()) for p in todo)) - todo
        if not more:
            return todo
        todo |= more


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Unwind like Ctrl-C so the workspace (and its PostgreSQL database) is removed.
    raise KeyboardInterrupt


class Bench:
    """One bench run: the workspace, the phases and the report."""

    def __init__(self, args: argparse.Namespace, progress: Progress) -> None:
        self.args = args
        self.size = SIZES[args.size]
        self.progress = progress
        self.todo = needed(args.phases)
        self.instants = instants()
        self.smtp_port = tracking.free_port()
        self.report: dict[str, Any] = {"size": self.size.as_dict(), "database": args.database}
        self.notes: list[str] = []

    def step(self, description: str) -> Any:
        """A progress line for a part of the bench."""
        return self.progress.add_task(description, total=None)

    def done(self, task: Any, detail: str = "") -> None:
        self.progress.update(
            task, total=1, completed=1, description=self.progress.tasks[task].description + detail
        )

    def run(self, workspace: Workspace) -> dict[str, Any]:
        """Every phase in order; returns the report."""
        load_before = [round(x, 2) for x in os.getloadavg()]
        task = self.step(f"Generating {self.size.contacts:,} contacts ({self.args.database}) and enrolling")
        setup = child.call(
            workspace,
            "setup",
            size=self.size.name,
            smtp_port=self.smtp_port,
            activate=self.instants["activate"],
            day1=self.instants["day1"],
        )
        self.done(task, f" — {setup['generated']['seconds']:.0f} s")
        # Not a measured figure: how long migrating and generating the workspace took.
        self.report["workspace"] = {k: v for k, v in setup["generated"].items() if k != "importer"}
        if "enroll" in self.args.phases:
            self.report["enroll"] = setup["enroll"]
        if "import" in self.todo:
            task = self.step(f"import: {self.size.import_rows:,} CSV rows through the importer")
            self.report["import"] = child.call(
                workspace, "import", size=self.size.name, importer=setup["generated"]["importer"]
            )
            self.done(task)
        if "run" in self.todo:
            self._run_phase(workspace)
        requests_file = workspace.dir / "track-requests.txt"
        if "deliver" in self.todo:
            task = self.step(f"deliver: {self.size.emails:,} emails, then the smtplib floor")
            self.report["deliver"] = child.call(
                workspace,
                "deliver",
                size=self.size.name,
                smtp_port=self.smtp_port,
                tokens_file=str(requests_file) if "track" in self.todo else "",
            )
            self.done(task)
        if "track" in self.todo:
            task = self.step(f"track: {self.size.track_requests:,} requests against `sequent serve`")
            self.report["track"] = tracking.measure(workspace, requests_file)
            self.done(task)
        for phase in ("run", "deliver", "track"):
            if phase in self.report and phase not in self.args.phases:
                del self.report[phase]
        self.report["machine"] = {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "database": workspace.server_version(),
            "load_before": load_before,
            "load_after": [round(x, 2) for x in os.getloadavg()],
        }
        self.report["targets"] = report.judge(self.report)
        self.report["notes"] = self.notes
        return self.report

    def _run_phase(self, workspace: Workspace) -> None:
        task = self.step("run: day 1 with 1 worker")
        one = running.measure(workspace, self.instants["day1"], 1, then_start=self.instants["day2"])
        self.done(task)
        task = self.step("run: day 2 with 2 workers")
        try:
            two: dict[str, Any] | None = running.measure(workspace, self.instants["day2"], 2)
        except child.ChildFailed as exc:
            if self.args.database == "postgres":
                raise
            two = None
            self.notes.append(f"2 workers on SQLite failed: {str(exc).splitlines()[0]}")
        self.done(task)
        run: dict[str, Any] = {"workers_1": one, "workers_2": two}
        if two and one["executions_per_s"] and two["executions_per_s"]:
            run["speedup"] = round(two["executions_per_s"] / one["executions_per_s"], 2)
        else:
            run["speedup"] = None
        self.report["run"] = run
        if "memory" in self.todo:
            self.report["memory"] = memory.summarize([r for r in (one, two) if r])


def main(argv: list[str]) -> int:
    """`sequent bench`; returns the exit status."""
    args = parse_args(argv)
    err = Console(stderr=True)
    out = Console()
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    started = time.perf_counter()
    columns = (SpinnerColumn(finished_text="✓"), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as progress:
            with Workspace(args.database, args.database_url) as workspace:
                result = Bench(args, progress).run(workspace)
    except KeyboardInterrupt:
        err.print("bench interrupted; the workspace was removed")
        return 130
    except child.ChildFailed as exc:
        err.print(f"bench failed; the workspace was removed.\n{exc}", markup=False)
        return 1
    except psycopg.OperationalError as exc:
        err.print(f"bench: cannot use the PostgreSQL server of --database-url: {exc}", markup=False)
        return 1
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        report.write_json(result, sys.stdout)
    else:
        report.print_table(result, out)
        out.print(f"whole bench: {result['seconds']:.0f} s")
    return 0
