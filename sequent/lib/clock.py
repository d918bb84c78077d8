"""The one clock. All code asks `now()` from here, so tests and `run-due --now`
can move time without patching modules one by one."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    """The current instant, timezone-aware UTC."""
    if _frozen is not None:
        return _frozen
    return dt.datetime.now(dt.UTC)


def set_now(instant: dt.datetime | None) -> None:
    """Freeze the clock at *instant* (aware), or unfreeze it with None."""
    global _frozen
    if instant is not None and instant.tzinfo is None:
        raise ValueError("the clock needs a timezone-aware instant")
    _frozen = instant.astimezone(dt.UTC) if instant is not None else None


@contextlib.contextmanager
def frozen(instant: dt.datetime) -> Iterator[None]:
    """Run a block with the clock frozen at *instant*."""
    previous = _frozen
    set_now(instant)
    try:
        yield
    finally:
        set_now(previous)
