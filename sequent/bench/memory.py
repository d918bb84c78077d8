"""Phase **memory**: the peak resident memory of the worker processes over the run phase.

Each worker child reads its own peak (``getrusage``) when its run is over; this phase
reports the highest of them, over the 1-worker and the 2-worker runs.
"""

from __future__ import annotations

from typing import Any


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The memory figures from the run phase's results."""
    peaks = [run["peak_rss_mb"] for run in runs if run.get("peak_rss_mb") is not None]
    return {"worker_peak_rss_mb": max(peaks) if peaks else None}
