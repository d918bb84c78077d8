"""`sequent worker`: the background loop (due runs, batches of due enrollments, imports)."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sequent.worker.loop import Worker


class Command(BaseCommand):
    help = "Run the background worker until SIGTERM or SIGINT (the current batch finishes first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="enrollments claimed at a time")
        parser.add_argument("--idle-sleep", type=float, default=1.0, help="seconds to wait when idle")
        parser.add_argument("--worker-id", default=None, help="name in leases (default host:pid)")

    def handle(self, *args: Any, **options: Any) -> None:
        worker = Worker(
            options["worker_id"], batch_size=options["batch_size"], idle_sleep=options["idle_sleep"]
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            worker.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(f"worker {worker.worker_id} started")
        self.stdout.flush()
        stats = worker.run()
        self.stdout.write(
            f"worker {worker.worker_id} stopped: {stats.runs_started} runs started, "
            f"{stats.batches} batches ({stats.enrollments} enrollments), {stats.runs_finished} runs finished"
        )
