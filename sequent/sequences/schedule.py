"""When a sequence runs: pure schedule arithmetic (no Django).

A schedule is a local send time in an IANA zone, plus the days it skips
(weekends, a country's public holidays) and, for smart sequences, a run every
N run days counted from the first run. docs/SCHEDULES.md explains the rules with
worked examples; the short version:

- a *run day* is a local date that is neither an excluded weekend day nor a holiday;
- a run day's instant is its send time in the zone; a send time inside a DST gap
  moves forward to the first instant after the gap, an ambiguous one takes the
  first occurrence;
- a *slot* is a run day the sequence actually runs on: every run day for
  ``interval_days == 1``, else every ``interval_days``-th run day from the anchor.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass

import holidays

from sequent.crm.fields import normalize_time_zone

# Longest stretch any loop here walks without finding what it looks for. No valid
# schedule excludes ten years of days in a row; the guard turns a bug into an error.
MAX_SCAN_DAYS = 366 * 10

_ONE_DAY = dt.timedelta(days=1)
_SATURDAY = 5


@dataclass(frozen=True)
class Schedule:
    """The timing of one sequence's runs."""

    send_time: dt.time  # local wall-clock time of the run, naive
    time_zone: str  # IANA name
    exclude_weekends: bool = False
    holiday_country: str = ""  # ISO code for the `holidays` package, "" = none
    holiday_subdivision: str = ""  # e.g. "CA" for a US state, "SCT" for Scotland
    interval_days: int = 1  # smart sequences run every N run days; classic = 1

    def validate(self) -> None:
        """Raise ValueError naming the first field that is wrong (see `validate_schedule`)."""
        validate_schedule(self)


def validate_schedule(schedule: Schedule) -> None:
    """Raise ValueError ("field: reason") if *schedule* cannot be run."""
    if not isinstance(schedule.send_time, dt.time):
        raise ValueError(f"send_time: {schedule.send_time!r} is not a time of day")
    if schedule.send_time.tzinfo is not None:
        raise ValueError("send_time: give the local wall-clock time without a zone; the zone is time_zone")
    if not schedule.time_zone:
        raise ValueError("time_zone: a schedule needs an IANA time zone such as Europe/London")
    try:
        known = normalize_time_zone(schedule.time_zone) == schedule.time_zone
    except ValueError:
        known = False
    if not known:
        raise ValueError(f"time_zone: {schedule.time_zone!r} is not an IANA time zone such as Europe/London")
    if not isinstance(schedule.exclude_weekends, bool):
        raise ValueError("exclude_weekends: must be true or false")
    if isinstance(schedule.interval_days, bool) or not isinstance(schedule.interval_days, int):
        raise ValueError(f"interval_days: {schedule.interval_days!r} is not a whole number of days")
    if schedule.interval_days < 1:
        raise ValueError(f"interval_days: must be at least 1, got {schedule.interval_days}")
    if schedule.holiday_subdivision and not schedule.holiday_country:
        raise ValueError("holiday_subdivision: choose a holiday_country before a subdivision")
    if schedule.holiday_country:
        try:
            holidays.country_holidays(schedule.holiday_country, years=[])
        except NotImplementedError:
            raise ValueError(
                f"holiday_country: {schedule.holiday_country!r} is not a country the holiday calendar "
                "knows; use an ISO code such as US, GB or DE"
            ) from None
        if schedule.holiday_subdivision:
            try:
                holidays.country_holidays(
                    schedule.holiday_country, subdiv=schedule.holiday_subdivision, years=[]
                )
            except NotImplementedError:
                raise ValueError(
                    f"holiday_subdivision: {schedule.holiday_subdivision!r} is not a subdivision of "
                    f"{schedule.holiday_country}"
                ) from None


# --- run days ---------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _calendar(country: str, subdivision: str, year: int) -> dict[dt.date, str]:
    """The holidays package's calendar for one year, as a plain dict (memoised: called in loops)."""
    try:
        calendar = holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        field = "holiday_subdivision" if subdivision else "holiday_country"
        raise ValueError(f"{field}: {subdivision or country!r} has no holiday calendar") from None
    return {day: str(name) for day, name in calendar.items()}


@functools.lru_cache(maxsize=1024)
def _holidays_by_year(country: str, subdivision: str, year: int) -> dict[dt.date, str]:
    """The public holidays dated in *year*, with their names."""
    # Neighbouring years too: an observed day can be filed under the year of the
    # holiday it stands in for (New Year's Day 2022 observed on 31 December 2021).
    found: dict[dt.date, str] = {}
    for filed_under in (year - 1, year, year + 1):
        for day, name in _calendar(country, subdivision, filed_under).items():
            if day.year == year:
                found[day] = name
    return found


def _is_weekend(day: dt.date) -> bool:
    return day.weekday() >= _SATURDAY


def holiday_name(schedule: Schedule, day: dt.date) -> str:
    """The name of the public holiday that falls on *day* for this schedule, or ""."""
    if not schedule.holiday_country:
        return ""
    return _holidays_by_year(schedule.holiday_country, schedule.holiday_subdivision, day.year).get(day, "")


def skip_reason(schedule: Schedule, day: dt.date) -> str:
    """Why *day* is not a run day ("weekend", "holiday: Christmas Day"), or "" if it is one."""
    if schedule.exclude_weekends and _is_weekend(day):
        return "weekend"
    name = holiday_name(schedule, day)
    return f"holiday: {name}" if name else ""


def is_run_day(schedule: Schedule, day: dt.date) -> bool:
    """Whether *day* (a local date) survives the weekend and holiday exclusions."""
    return not skip_reason(schedule, day)


def _first_run_day_from(schedule: Schedule, day: dt.date, step: dt.timedelta = _ONE_DAY) -> dt.date:
    """The first run day at or after *day* (or at or before it when *step* is negative)."""
    for _ in range(MAX_SCAN_DAYS):
        if is_run_day(schedule, day):
            return day
        day += step
    raise ValueError(f"schedule: no run day within {MAX_SCAN_DAYS} days of {day.isoformat()}")


def _weekend_days_between(start: dt.date, end: dt.date) -> int:
    """Saturdays and Sundays in [start, end)."""
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    first = start.weekday()
    return weeks * 2 + sum(1 for i in range(rest) if (first + i) % 7 >= _SATURDAY)


def count_run_days(schedule: Schedule, start: dt.date, end: dt.date) -> int:
    """The number of run days in [start, end); 0 when end <= start."""
    if end <= start:
        return 0
    count = (end - start).days
    if schedule.exclude_weekends:
        count -= _weekend_days_between(start, end)
    if schedule.holiday_country:
        # Arithmetic, not a walk: long spans (smart anchors months back) stay cheap.
        for year in range(start.year, end.year + 1):
            for day in _holidays_by_year(schedule.holiday_country, schedule.holiday_subdivision, year):
                if start <= day < end and not (schedule.exclude_weekends and _is_weekend(day)):
                    count -= 1
    return count


def add_run_days(schedule: Schedule, start: dt.date, n: int) -> dt.date:
    """The run day *n* run days after the first run day on or after *start*.

    n=0 gives *start* if it is a run day, else the next run day; so
    ``count_run_days(start, add_run_days(start, n)) == n``.
    """
    if n < 0:
        raise ValueError(f"n: cannot count {n} run days forward")
    day = _first_run_day_from(schedule, start)
    for _ in range(n):
        day = _first_run_day_from(schedule, day + _ONE_DAY)
    return day


# --- instants ---------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time_zone: {name!r} is not an IANA time zone such as Europe/London") from None


def _end_of_gap(zone: zoneinfo.ZoneInfo, before: dt.datetime, after: dt.datetime) -> dt.datetime:
    """The first instant in (before, after] whose UTC offset is that of *after* (the transition)."""
    target = after.astimezone(zone).utcoffset()
    low, high = 0, int((after - before).total_seconds())  # offset differs at low, matches at high
    while high - low > 1:
        middle = (low + high) // 2
        if (before + dt.timedelta(seconds=middle)).astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return before + dt.timedelta(seconds=high)


def local_run_instant(schedule: Schedule, day: dt.date) -> dt.datetime:
    """The aware UTC instant of *day*'s send time in the schedule's zone.

    An ambiguous wall time (clocks going back) takes its first occurrence; a
    nonexistent one (clocks going forward) the first instant after the gap, e.g.
    02:30 in America/New_York on 2026-03-08 is 03:00 EDT, 07:00 UTC.
    """
    zone = _zone(schedule.time_zone)
    wall = dt.datetime.combine(day, schedule.send_time.replace(tzinfo=None, fold=0))
    first = wall.replace(tzinfo=zone).astimezone(dt.UTC)  # fold=0: the first occurrence
    if first.astimezone(zone).replace(tzinfo=None) == wall:
        return first
    # The wall time does not exist. fold=0 read it with the offset from before the
    # transition, fold=1 with the one after; the transition lies between the two.
    other = wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC)
    return _end_of_gap(zone, min(first, other), max(first, other))


def _aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: needs a timezone-aware instant")
    return value


# --- slots ------------------------------------------------------------------


def _slot_filter(schedule: Schedule, anchor: dt.date | None) -> tuple[dt.date | None, int]:
    """The first possible slot date and the interval, checking that an anchor is given when needed."""
    if schedule.interval_days > 1 and anchor is None:
        raise ValueError("anchor: a schedule that runs every few days needs the date of its first run")
    if schedule.interval_days < 1:
        raise ValueError(f"interval_days: must be at least 1, got {schedule.interval_days}")
    if anchor is None:
        return None, 1
    return _first_run_day_from(schedule, anchor), schedule.interval_days


def latest_slot(
    schedule: Schedule,
    at: dt.datetime,
    *,
    anchor: dt.date | None = None,
    not_before: dt.datetime | None = None,
) -> dt.date | None:
    """The local date of the most recent slot whose instant is <= *at*, or None.

    Slots are run days; with *anchor* (the first run date) none falls before it,
    and when ``interval_days > 1`` only every ``interval_days``-th run day from the
    anchor counts (run days, not calendar days: weekends and holidays do not use
    up the interval). None when there is no such slot, or when it is earlier
    than *not_before*.
    """
    _aware(at, "at")
    if not_before is not None:
        _aware(not_before, "not_before")
    first, interval = _slot_filter(schedule, anchor)
    zone = _zone(schedule.time_zone)
    # One day of margin: a send time shifted by a DST gap can land on the next local date.
    day = at.astimezone(zone).date() + _ONE_DAY
    if first is not None and day < first:
        return None
    # Run days in [first slot, day): the index of `day` among the run days when it
    # is one; kept up to date while walking back so the interval test stays cheap.
    ordinal = count_run_days(schedule, first, day) if first is not None else 0
    for _ in range(MAX_SCAN_DAYS + interval * 7):
        if first is not None and day < first:
            return None
        if is_run_day(schedule, day):
            instant = local_run_instant(schedule, day)
            if not_before is not None and instant < not_before:
                return None
            if instant <= at and ordinal % interval == 0:
                return day
        day -= _ONE_DAY
        if is_run_day(schedule, day):
            ordinal -= 1
    raise ValueError(f"schedule: no run slot within {MAX_SCAN_DAYS} days before {at.isoformat()}")


def next_slot(
    schedule: Schedule, after: dt.datetime, *, anchor: dt.date | None = None
) -> tuple[dt.date, dt.datetime]:
    """The first slot whose instant is strictly after *after*: (local date, UTC instant).

    Slots follow the same rules as in `latest_slot`.
    """
    _aware(after, "after")
    first, interval = _slot_filter(schedule, anchor)
    zone = _zone(schedule.time_zone)
    day = after.astimezone(zone).date() - _ONE_DAY
    if first is not None and day < first:
        day = first
    ordinal = count_run_days(schedule, first, day) if first is not None else 0
    for _ in range(MAX_SCAN_DAYS + interval * 7):
        if is_run_day(schedule, day):
            if ordinal % interval == 0:
                instant = local_run_instant(schedule, day)
                if instant > after:
                    return day, instant
            ordinal += 1
        day += _ONE_DAY
    raise ValueError(f"schedule: no run slot within {MAX_SCAN_DAYS} days after {after.isoformat()}")
