"""Properties of the schedule arithmetic over many zones, dates, send times and exclusions."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from sequent.sequences.schedule import (
    Schedule,
    add_run_days,
    count_run_days,
    is_run_day,
    latest_slot,
    local_run_instant,
    next_slot,
)

# Zones with the awkward cases: DST in both hemispheres, 30- and 45-minute offsets,
# a 30-minute DST shift, transitions at midnight, negative DST, no DST at all.
ZONES = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/Santiago",
    "America/Havana",
    "America/St_Johns",
    "Europe/London",
    "Europe/Dublin",
    "Africa/Casablanca",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
]
COUNTRIES = ["", "US", "GB", "DE", "IN", "NZ", "CL"]

# Within the years every listed country's holiday calendar covers (some lunar ones stop at 2035).
days = st.dates(min_value=dt.date(2002, 1, 1), max_value=dt.date(2034, 6, 30))
schedules = st.builds(
    Schedule,
    send_time=st.times(),
    time_zone=st.sampled_from(ZONES),
    exclude_weekends=st.booleans(),
    holiday_country=st.sampled_from(COUNTRIES),
    interval_days=st.integers(min_value=1, max_value=5),
)
instants = st.datetimes(
    min_value=dt.datetime(2002, 3, 1), max_value=dt.datetime(2034, 6, 30), timezones=st.just(dt.UTC)
)
PROPERTY = settings(max_examples=150, deadline=None)


def _transitions(zone_name: str, first_year: int, last_year: int) -> list[tuple[str, dt.datetime]]:
    """The instants at which the zone's UTC offset changed, found by a daily scan and bisection."""
    zone = zoneinfo.ZoneInfo(zone_name)
    found = []
    day = dt.datetime(first_year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(last_year + 1, 1, 1, tzinfo=dt.UTC)
    while day < end:
        following = day + dt.timedelta(days=1)
        if day.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            low, high = day, following
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append((zone_name, high.replace(microsecond=0)))
        day = following
    return found


TRANSITIONS = [t for zone in ZONES for t in _transitions(zone, 2024, 2028)]


@st.composite
def near_a_transition(draw: st.DrawFn) -> tuple[Schedule, dt.date, dt.datetime]:
    """A schedule whose send time falls within 90 minutes of a DST change (often in the gap or overlap)."""
    zone_name, instant = draw(st.sampled_from(TRANSITIONS))
    zone = zoneinfo.ZoneInfo(zone_name)
    # The wall time just before the change and the one right after it.
    side = draw(st.sampled_from([instant - dt.timedelta(seconds=1), instant]))
    wall = side.astimezone(zone).replace(tzinfo=None) + dt.timedelta(minutes=draw(st.integers(-90, 90)))
    schedule = Schedule(
        send_time=wall.time(),
        time_zone=zone_name,
        exclude_weekends=draw(st.booleans()),
        holiday_country=draw(st.sampled_from(COUNTRIES)),
        interval_days=draw(st.integers(min_value=1, max_value=3)),
    )
    at = instant + dt.timedelta(minutes=draw(st.integers(-120, 120)))
    return schedule, wall.date(), at


any_day = st.tuples(schedules, days, instants)
schedule_day_at = st.one_of(any_day, near_a_transition())


@PROPERTY
@given(case=schedule_day_at)
def test_it_sends_at_the_wall_time_or_at_the_end_of_a_gap(case):
    schedule, day, _ = case
    zone = zoneinfo.ZoneInfo(schedule.time_zone)
    instant = local_run_instant(schedule, day)
    assert instant.tzinfo == dt.UTC
    wall = dt.datetime.combine(day, schedule.send_time)
    local = instant.astimezone(zone)
    if local.replace(tzinfo=None) == wall:
        # An ambiguous wall time takes its first occurrence.
        occurrences = [wall.replace(tzinfo=zone, fold=fold).astimezone(dt.UTC) for fold in (0, 1)]
        real = [o for o in occurrences if o.astimezone(zone).replace(tzinfo=None) == wall]
        assert instant == min(real)
        return
    # Otherwise the wall time does not exist, and the instant is the first one after the gap.
    assert all(
        (
            wall.replace(tzinfo=zone, fold=fold).astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
            != wall
        )
        for fold in (0, 1)
    )
    just_before = (instant - dt.timedelta(seconds=1)).astimezone(zone)
    assert just_before.utcoffset() != local.utcoffset()
    assert just_before.replace(tzinfo=None) < wall < local.replace(tzinfo=None)


@PROPERTY
@given(case=schedule_day_at)
def test_it_never_maps_two_days_to_the_same_instant(case):
    schedule, day, _ = case
    following = day + dt.timedelta(days=1)
    assert local_run_instant(schedule, day) < local_run_instant(schedule, following)


@PROPERTY
@given(schedule=schedules, start=days, n=st.integers(min_value=0, max_value=40))
def test_it_adds_run_days_that_are_run_days_in_order(schedule, start, n):
    result = add_run_days(schedule, start, n)
    assert is_run_day(schedule, result)
    assert result >= start
    assert count_run_days(schedule, start, result) == n
    assert add_run_days(schedule, start, n + 1) > result
    # Starting from the run day reached, k more run days land where n + k would.
    assert add_run_days(schedule, result, 3) == add_run_days(schedule, start, n + 3)


@PROPERTY
@given(schedule=schedules, start=days, lengths=st.tuples(st.integers(0, 60), st.integers(0, 60)))
def test_it_counts_run_days_as_a_walk_over_the_calendar_would(schedule, start, lengths):
    middle = start + dt.timedelta(days=lengths[0])
    end = middle + dt.timedelta(days=lengths[1])
    walked = sum(is_run_day(schedule, start + dt.timedelta(days=i)) for i in range((end - start).days))
    assert count_run_days(schedule, start, end) == walked
    assert count_run_days(schedule, start, middle) + count_run_days(schedule, middle, end) == walked


@PROPERTY
@given(case=schedule_day_at, anchor_back=st.integers(min_value=0, max_value=30))
def test_it_puts_at_between_the_latest_slot_and_the_next(case, anchor_back):
    schedule, _, at = case
    zone = zoneinfo.ZoneInfo(schedule.time_zone)
    anchor = at.astimezone(zone).date() - dt.timedelta(days=anchor_back)
    latest = latest_slot(schedule, at, anchor=anchor)
    upcoming, upcoming_instant = next_slot(schedule, at, anchor=anchor)
    assert upcoming_instant > at
    assert upcoming_instant == local_run_instant(schedule, upcoming)
    assert is_run_day(schedule, upcoming)
    assert count_run_days(schedule, add_run_days(schedule, anchor, 0), upcoming) % schedule.interval_days == 0
    # The next slot after `at` is the latest one as soon as its instant arrives.
    assert latest_slot(schedule, upcoming_instant, anchor=anchor) == upcoming
    if latest is None:
        # Nothing yet: the very first slot is still ahead.
        assert upcoming == add_run_days(schedule, anchor, 0)
        return
    latest_instant = local_run_instant(schedule, latest)
    assert latest_instant <= at
    assert latest < upcoming
    # No slot between the two.
    assert next_slot(schedule, latest_instant, anchor=anchor) == (upcoming, upcoming_instant)
    assert latest_slot(schedule, at, anchor=anchor, not_before=latest_instant) == latest
    assert (
        latest_slot(schedule, at, anchor=anchor, not_before=latest_instant + dt.timedelta(microseconds=1))
        is None
    )
