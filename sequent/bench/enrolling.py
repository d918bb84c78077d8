"""Phase **enroll**: the first run of every sequence enrolls its whole audience.

Measured in the setup child, right after the data is generated. Each sequence's day-1 run is started as a worker starts it (``runs.start_run``):
exits, enrollment of every matching contact by one set-based ``INSERT ... SELECT``,
marking the enrollments due. The steps are left to the run phase.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sequent.lib import clock
from sequent.sequences import runs
from sequent.sequences.models import Sequence, SequenceStatus


def measure(day1: str) -> dict[str, Any]:
    """Start the day-1 run of every active sequence; contacts enrolled per second."""
    at = dt.datetime.fromisoformat(day1)
    ids = list(
        Sequence.objects.filter(status=SequenceStatus.ACTIVE).order_by("pk").values_list("pk", flat=True)
    )
    enrolled = 0
    with clock.frozen(at):
        started = time.perf_counter()
        for sequence_id in ids:
            slot = runs.start_run(sequence_id, "bench:enroll", at)
            enrolled += slot.enrolled if slot else 0
        seconds = time.perf_counter() - started
    return {
        "sequences": len(ids),
        "contacts": enrolled,
        "seconds": round(seconds, 3),
        "per_s": round(enrolled / seconds, 1) if seconds else None,
    }
