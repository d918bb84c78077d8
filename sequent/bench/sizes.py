"""How much data each ``--size`` generates and how much work each phase measures."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Size:
    """The amounts of one bench size."""

    name: str
    contacts: int  # generated contacts, all in some sequence's audience
    users: int  # reps, each with a mailbox and one sequence
    import_rows: int  # rows of the CSV the import phase reads
    emails: int  # emails the deliver phase sends (and the floor sends again)
    track_requests: int  # open and click requests the track phase fires

    def as_dict(self) -> dict[str, int | str]:
        """The amounts, for the JSON report."""
        return asdict(self)


SIZES = {
    # Hidden: for the test suite, a few seconds of work per phase.
    "test": Size("test", contacts=300, users=2, import_rows=300, emails=60, track_requests=120),
    "small": Size("small", contacts=10_000, users=4, import_rows=10_000, emails=1_000, track_requests=2_000),
    "medium": Size(
        "medium", contacts=100_000, users=8, import_rows=100_000, emails=3_000, track_requests=5_000
    ),
    "large": Size(
        "large", contacts=1_000_000, users=20, import_rows=1_000_000, emails=5_000, track_requests=10_000
    ),
}
PUBLIC_SIZES = ("small", "medium", "large")


def instants(today: dt.date | None = None) -> dict[str, str]:
    """The bench's clock, as ISO instants every child agrees on: sequences are activated
    four days ago; the enroll phase starts the runs of three days ago (day 1 of every
    enrollment) and the run phase processes them, then day 2; delivery and tracking
    happen now, after both."""
    today = today or dt.datetime.now(dt.UTC).date()
    midnight = dt.datetime.combine(today, dt.time(0, 0), tzinfo=dt.UTC)
    return {
        "activate": (midnight - dt.timedelta(days=4) + dt.timedelta(hours=1)).isoformat(),
        "day1": (midnight - dt.timedelta(days=3) + dt.timedelta(minutes=30)).isoformat(),
        "day2": (midnight - dt.timedelta(days=2) + dt.timedelta(minutes=30)).isoformat(),
    }
