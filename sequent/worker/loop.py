"""The background worker: small units of work, each saying whether it found any.

``handle_one()`` does one unit (start a due run, process a batch of due enrollments,
finish runs, run a pending import) and returns True if it did something; ``run()``
loops over it and sleeps a second when idle. ``sequent worker`` runs it forever,
``sequent run-due`` until there is nothing left, and tests drive it step by step.
All coordination goes through the database, so any number of workers may run.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import DatabaseError, close_old_connections

from sequent.lib import clock
from sequent.mail import delivery, inbound
from sequent.sequences import processing, runs
from sequent.sms import sending

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    """``host:pid``, so leases and run slots say who holds them."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def _pending_imports() -> Callable[..., bool] | None:
    # The CSV import job runner lives in the CRM app; the worker runs it when present.
    try:
        module = importlib.import_module("sequent.crm.imports")
    except ImportError:
        return None
    runner = getattr(module, "run_pending_imports", None)
    return runner if callable(runner) else None


@dataclass
class WorkerStats:
    """What a worker did, for its log line and for tests."""

    runs_started: int = 0
    batches: int = 0
    enrollments: int = 0
    runs_finished: int = 0
    imports: int = 0
    sequences_touched: set[int] = field(default_factory=set)


class Worker:
    """One worker process's loop. Stop it with ``stop()`` (signal handlers call it):
    the unit in progress finishes, then ``run()`` returns."""

    def __init__(
        self,
        worker_id: str | None = None,
        *,
        batch_size: int = processing.BATCH_SIZE,
        lease: dt.timedelta = processing.LEASE,
        idle_sleep: float = 1.0,
        imports: bool = True,
        mail: bool = True,  # outbound email and SMS
    ) -> None:
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.lease = lease
        self.idle_sleep = idle_sleep
        self.stats = WorkerStats()
        self._stopping = threading.Event()
        self._imports = _pending_imports() if imports else None
        self._mail = mail

    def stop(self) -> None:
        """Ask the loop to return after the unit of work in progress."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        """Whether ``stop()`` was called."""
        return self._stopping.is_set()

    def handle_run(self) -> bool:
        """Start one due run of a sequence; True if one was started."""
        now = clock.now()
        for sequence_id in runs.due_sequence_ids(now):
            try:
                slot = runs.start_run(sequence_id, self.worker_id, now)
            except DatabaseError:
                raise
            except Exception:
                # One broken sequence (say, a stored schedule that no longer validates)
                # must not hold up the others: log it and look at it again later.
                log.exception("worker %s: run of sequence %s failed", self.worker_id, sequence_id)
                runs.set_aside(sequence_id, now)
                continue
            if slot is not None:
                self.stats.runs_started += 1
                self.stats.sequences_touched.add(slot.sequence_id)
                return True
        return False

    def handle_batch(self) -> bool:
        """Claim and process one batch of due enrollments; True if there was one."""
        batch = processing.process_due(self.worker_id, clock.now(), self.batch_size, self.lease)
        if not batch.enrollments:
            return False
        self.stats.batches += 1
        self.stats.enrollments += batch.enrollments
        self.stats.sequences_touched |= batch.sequence_ids
        self.stats.runs_finished += runs.finish_slots(sorted(batch.sequence_ids))
        return True

    def handle_mail(self) -> bool:
        """Deliver one batch of due outbox emails; True if there was one."""
        if not self._mail:
            return False
        return bool(delivery.deliver_due(self.worker_id))

    def handle_sms(self) -> bool:
        """Send the due SMS the workspace's per-second limit allows; True if there were any."""
        if not self._mail:
            return False
        return bool(sending.send_due(self.worker_id))

    def handle_inbound(self) -> bool:
        """Read one mailbox whose turn has come (each at most once a minute); True if one was read."""
        if not self._mail:
            return False
        return bool(inbound.sync_due(self.worker_id))

    def handle_finish(self) -> bool:
        """Finish runs left with nothing pending (e.g. their last batch's worker died)."""
        finished = runs.finish_slots()
        self.stats.runs_finished += finished
        return finished > 0

    def handle_imports(self) -> bool:
        """Run a pending CSV import, if the import runner exists and one waits."""
        if self._imports is None:
            return False
        found = bool(self._imports(worker_id=self.worker_id))
        self.stats.imports += int(found)
        return found

    def handle_one(self) -> bool:
        """Do one unit of work, most urgent first; False when there was nothing to do."""
        return (
            self.handle_run()
            or self.handle_batch()
            or self.handle_mail()
            or self.handle_sms()
            or self.handle_inbound()
            or self.handle_finish()
            or self.handle_imports()
        )

    def run(self, *, until_idle: bool = False) -> WorkerStats:
        """Loop until stopped (or, with *until_idle*, until nothing is left to do)."""
        while not self.stopping:
            try:
                busy = self.handle_one()
            except Exception:
                if until_idle:
                    raise
                # A lost connection, a lock timeout or a bug: log it and go on after a
                # pause. What was in hand rolled back, or was set aside under a lease.
                log.exception("worker %s: unit of work failed, retrying", self.worker_id)
                busy = False
            if not busy:
                if until_idle:
                    break
                # Idle: release a connection past its age (or broken) before sleeping.
                close_old_connections()
                self._stopping.wait(self.idle_sleep)
        return self.stats
