"""Schedule arithmetic: run days, send instants across DST, holidays, slots."""

from __future__ import annotations

import datetime as dt

import pytest

from sequent.sequences.schedule import (
    Schedule,
    add_run_days,
    count_run_days,
    is_run_day,
    latest_slot,
    local_run_instant,
    next_slot,
    skip_reason,
    validate_schedule,
)

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def nine_am(zone: str, **options) -> Schedule:
    return Schedule(send_time=dt.time(9, 0), time_zone=zone, **options)


# --- DST -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        # America/New_York: spring forward 2026-03-08, fall back 2026-11-01.
        ("America/New_York", "2026-03-07", utc(2026, 3, 7, 14, 0)),
        ("America/New_York", "2026-03-08", utc(2026, 3, 8, 13, 0)),
        ("America/New_York", "2026-03-09", utc(2026, 3, 9, 13, 0)),
        ("America/New_York", "2026-10-31", utc(2026, 10, 31, 13, 0)),
        ("America/New_York", "2026-11-01", utc(2026, 11, 1, 14, 0)),
        ("America/New_York", "2026-11-02", utc(2026, 11, 2, 14, 0)),
        # Europe/London: BST from 2026-03-29 to 2026-10-25.
        ("Europe/London", "2026-03-28", utc(2026, 3, 28, 9, 0)),
        ("Europe/London", "2026-03-29", utc(2026, 3, 29, 8, 0)),
        ("Europe/London", "2026-10-24", utc(2026, 10, 24, 8, 0)),
        ("Europe/London", "2026-10-25", utc(2026, 10, 25, 9, 0)),
        # Asia/Kolkata: +05:30 all year.
        ("Asia/Kolkata", "2026-01-15", utc(2026, 1, 15, 3, 30)),
        ("Asia/Kolkata", "2026-07-15", utc(2026, 7, 15, 3, 30)),
        # Pacific/Chatham: +12:45, +13:45 from 2026-09-27, back on 2026-04-05.
        ("Pacific/Chatham", "2026-04-04", utc(2026, 4, 3, 19, 15)),
        ("Pacific/Chatham", "2026-04-05", utc(2026, 4, 4, 20, 15)),
        ("Pacific/Chatham", "2026-09-26", utc(2026, 9, 25, 20, 15)),
        ("Pacific/Chatham", "2026-09-27", utc(2026, 9, 26, 19, 15)),
    ],
)
def test_it_sends_at_the_local_send_time_on_both_sides_of_each_dst_change(zone, day, expected):
    instant = local_run_instant(nine_am(zone), d(day))
    assert instant == expected
    assert instant.tzinfo == UTC


@pytest.mark.parametrize(
    ("zone", "send_time", "day", "expected"),
    [
        # 02:00-03:00 does not exist in New York on 2026-03-08: 03:00 EDT is 07:00 UTC.
        ("America/New_York", dt.time(2, 30), "2026-03-08", utc(2026, 3, 8, 7, 0)),
        ("America/New_York", dt.time(2, 0), "2026-03-08", utc(2026, 3, 8, 7, 0)),
        ("America/New_York", dt.time(2, 59, 59), "2026-03-08", utc(2026, 3, 8, 7, 0)),
        # 01:00-02:00 does not exist in London on 2026-03-29: 02:00 BST is 01:00 UTC.
        ("Europe/London", dt.time(1, 30), "2026-03-29", utc(2026, 3, 29, 1, 0)),
        # 02:45-03:45 does not exist on the Chatham Islands on 2026-09-27.
        ("Pacific/Chatham", dt.time(3, 0), "2026-09-27", utc(2026, 9, 26, 14, 0)),
    ],
)
def test_it_moves_a_send_time_inside_the_spring_forward_gap_to_the_end_of_the_gap(
    zone, send_time, day, expected
):
    schedule = Schedule(send_time=send_time, time_zone=zone)
    assert local_run_instant(schedule, d(day)) == expected


def test_it_keeps_the_send_time_on_the_day_after_the_gap():
    schedule = Schedule(send_time=dt.time(2, 30), time_zone="America/New_York")
    assert local_run_instant(schedule, d("2026-03-09")) == utc(2026, 3, 9, 6, 30)


@pytest.mark.parametrize(
    ("zone", "send_time", "day", "first", "second"),
    [
        ("America/New_York", dt.time(1, 30), "2026-11-01", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)),
        ("Europe/London", dt.time(1, 30), "2026-10-25", utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)),
        ("Pacific/Chatham", dt.time(3, 0), "2026-04-05", utc(2026, 4, 4, 13, 15), utc(2026, 4, 4, 14, 15)),
    ],
)
def test_it_takes_the_first_occurrence_of_an_ambiguous_fall_back_time(zone, send_time, day, first, second):
    schedule = Schedule(send_time=send_time, time_zone=zone)
    assert local_run_instant(schedule, d(day)) == first
    # Runs exactly once that day: a check after the second occurrence finds the same slot.
    assert latest_slot(schedule, second) == d(day)
    assert next_slot(schedule, first)[0] == d(day) + dt.timedelta(days=1)


# --- run days --------------------------------------------------------------


def test_it_skips_weekends_only_when_asked():
    saturday, sunday, monday = d("2026-06-06"), d("2026-06-07"), d("2026-06-08")
    every_day = nine_am("Europe/London")
    weekdays = nine_am("Europe/London", exclude_weekends=True)
    assert all(is_run_day(every_day, day) for day in (saturday, sunday, monday))
    assert not is_run_day(weekdays, saturday)
    assert not is_run_day(weekdays, sunday)
    assert is_run_day(weekdays, monday)
    assert skip_reason(weekdays, sunday) == "weekend"


def test_it_counts_business_days_across_a_weekend():
    weekdays = nine_am("America/New_York", exclude_weekends=True)
    friday = d("2026-06-05")
    assert add_run_days(weekdays, friday, 0) == friday
    assert add_run_days(weekdays, friday, 1) == d("2026-06-08")
    assert add_run_days(weekdays, friday, 5) == d("2026-06-12")
    assert add_run_days(weekdays, d("2026-06-06"), 0) == d("2026-06-08")  # Saturday -> Monday
    assert count_run_days(weekdays, d("2026-06-01"), d("2026-06-15")) == 10
    assert count_run_days(weekdays, d("2026-06-06"), d("2026-06-08")) == 0
    assert count_run_days(weekdays, d("2026-06-08"), d("2026-06-01")) == 0


def test_it_skips_us_holidays_including_the_observed_day():
    schedule = nine_am("America/New_York", exclude_weekends=True, holiday_country="US")
    assert not is_run_day(schedule, d("2026-07-03"))  # Independence Day observed (Friday)
    assert skip_reason(schedule, d("2026-07-03")) == "holiday: Independence Day (observed)"
    assert not is_run_day(schedule, d("2026-12-25"))
    assert is_run_day(schedule, d("2026-07-02"))
    # Thursday 2 July + 1 business day: Friday is a holiday, then the weekend.
    assert add_run_days(schedule, d("2026-07-02"), 1) == d("2026-07-06")
    # Week of Christmas 2026: Mon 21 .. Fri 25, the Friday off.
    assert count_run_days(schedule, d("2026-12-21"), d("2026-12-26")) == 4


def test_it_skips_a_holiday_that_falls_on_a_weekend_when_weekends_run():
    schedule = nine_am("America/New_York", holiday_country="US")
    assert not is_run_day(schedule, d("2026-07-04"))  # Saturday, the holiday itself
    assert is_run_day(schedule, d("2026-07-05"))


def test_it_skips_uk_bank_holidays_and_their_substitute_days():
    schedule = nine_am("Europe/London", exclude_weekends=True, holiday_country="GB")
    assert not is_run_day(schedule, d("2026-12-25"))
    assert not is_run_day(schedule, d("2026-12-28"))  # Boxing Day falls on Saturday
    assert not is_run_day(schedule, d("2026-04-03"))  # Good Friday
    assert add_run_days(schedule, d("2026-12-24"), 1) == d("2026-12-29")


def test_it_uses_the_holidays_of_the_chosen_subdivision():
    england = nine_am("Europe/London", holiday_country="GB", holiday_subdivision="ENG")
    scotland = nine_am("Europe/London", holiday_country="GB", holiday_subdivision="SCT")
    assert is_run_day(england, d("2026-01-02"))
    assert not is_run_day(scotland, d("2026-01-02"))
    california = nine_am("America/Los_Angeles", holiday_country="US", holiday_subdivision="CA")
    assert not is_run_day(california, d("2026-03-31"))  # Cesar Chavez Day
    assert is_run_day(nine_am("America/New_York", holiday_country="US"), d("2026-03-31"))


def test_it_counts_an_observed_new_year_that_falls_in_the_year_before():
    # New Year's Day 2022 was a Saturday; the US observed it on Friday 31 December 2021.
    schedule = nine_am("America/New_York", exclude_weekends=True, holiday_country="US")
    assert not is_run_day(schedule, d("2021-12-31"))
    assert count_run_days(schedule, d("2021-12-27"), d("2022-01-04")) == 5  # Mon-Thu, then Mon 3 Jan


# --- slots -----------------------------------------------------------------


def test_it_finds_the_latest_slot_right_before_and_right_after_the_send_time():
    schedule = nine_am("America/New_York")
    send = utc(2026, 6, 10, 13, 0)  # 09:00 EDT
    assert latest_slot(schedule, send - dt.timedelta(seconds=1)) == d("2026-06-09")
    assert latest_slot(schedule, send) == d("2026-06-10")
    assert latest_slot(schedule, send + dt.timedelta(seconds=1)) == d("2026-06-10")
    assert next_slot(schedule, send - dt.timedelta(seconds=1)) == (d("2026-06-10"), send)
    assert next_slot(schedule, send) == (d("2026-06-11"), utc(2026, 6, 11, 13, 0))


def test_it_dates_slots_in_local_time_for_a_far_east_zone_across_midnight_utc():
    schedule = nine_am("Pacific/Kiritimati")  # +14:00: 09:00 local is 19:00 UTC the day before
    assert latest_slot(schedule, utc(2026, 6, 9, 18, 59)) == d("2026-06-09")
    assert latest_slot(schedule, utc(2026, 6, 9, 19, 0)) == d("2026-06-10")
    assert next_slot(schedule, utc(2026, 6, 9, 18, 59)) == (d("2026-06-10"), utc(2026, 6, 9, 19, 0))


def test_it_dates_slots_in_local_time_for_a_far_west_zone_across_midnight_utc():
    schedule = Schedule(send_time=dt.time(18, 0), time_zone="Pacific/Pago_Pago")  # -11:00
    assert latest_slot(schedule, utc(2026, 6, 11, 4, 59)) == d("2026-06-09")
    assert latest_slot(schedule, utc(2026, 6, 11, 5, 0)) == d("2026-06-10")
    assert next_slot(schedule, utc(2026, 6, 11, 5, 0)) == (d("2026-06-11"), utc(2026, 6, 12, 5, 0))


def test_it_finds_the_slot_of_a_send_time_moved_by_the_gap():
    schedule = Schedule(send_time=dt.time(2, 30), time_zone="America/New_York")
    assert latest_slot(schedule, utc(2026, 3, 8, 6, 59)) == d("2026-03-07")
    assert latest_slot(schedule, utc(2026, 3, 8, 7, 0)) == d("2026-03-08")


def test_it_reaches_back_over_the_weekend_for_the_latest_slot():
    schedule = nine_am("Europe/London", exclude_weekends=True)
    sunday_noon = utc(2026, 6, 7, 11, 0)
    assert latest_slot(schedule, sunday_noon) == d("2026-06-05")
    assert next_slot(schedule, sunday_noon) == (d("2026-06-08"), utc(2026, 6, 8, 8, 0))


def test_it_finds_no_slot_before_the_anchor_or_before_not_before():
    schedule = nine_am("Asia/Kolkata")
    at = utc(2026, 6, 10, 12, 0)
    assert latest_slot(schedule, at, anchor=d("2026-06-11")) is None
    assert latest_slot(schedule, at, anchor=d("2026-06-10")) == d("2026-06-10")
    assert latest_slot(schedule, at, not_before=utc(2026, 6, 10, 3, 30)) == d("2026-06-10")
    assert latest_slot(schedule, at, not_before=utc(2026, 6, 10, 3, 31)) is None
    assert next_slot(schedule, utc(2026, 6, 1), anchor=d("2026-06-10"))[0] == d("2026-06-10")


def test_it_runs_a_smart_sequence_every_third_run_day_from_its_anchor():
    schedule = nine_am("Europe/London", exclude_weekends=True, interval_days=3)
    anchor = d("2026-06-01")  # a Monday
    slots = [anchor]
    while len(slots) < 5:
        slots.append(next_slot(schedule, local_run_instant(schedule, slots[-1]), anchor=anchor)[0])
    # Weekends do not use up the interval: Mon, Thu, (Fri, Mon) Tue, (Wed, Thu) Fri, (Mon, Tue) Wed.
    assert slots == [d("2026-06-01"), d("2026-06-04"), d("2026-06-09"), d("2026-06-12"), d("2026-06-17")]
    assert latest_slot(schedule, utc(2026, 6, 8, 12, 0), anchor=anchor) == d("2026-06-04")
    assert latest_slot(schedule, utc(2026, 6, 9, 7, 59), anchor=anchor) == d("2026-06-04")
    assert latest_slot(schedule, utc(2026, 6, 9, 8, 0), anchor=anchor) == d("2026-06-09")
    assert latest_slot(schedule, utc(2026, 5, 31, 12, 0), anchor=anchor) is None


def test_it_runs_every_third_calendar_day_when_no_day_is_excluded():
    schedule = nine_am("Asia/Kolkata", interval_days=3)
    anchor = d("2026-06-01")
    assert next_slot(schedule, utc(2026, 6, 1, 3, 30), anchor=anchor)[0] == d("2026-06-04")
    assert latest_slot(schedule, utc(2026, 6, 6, 12, 0), anchor=anchor) == d("2026-06-04")


def test_it_starts_a_smart_sequence_anchored_on_a_weekend_on_the_next_run_day():
    schedule = nine_am("Europe/London", exclude_weekends=True, interval_days=2)
    saturday = d("2026-06-06")
    assert next_slot(schedule, utc(2026, 6, 6, 0, 0), anchor=saturday)[0] == d("2026-06-08")
    assert next_slot(schedule, utc(2026, 6, 8, 12, 0), anchor=saturday)[0] == d("2026-06-10")


def test_it_needs_an_anchor_to_run_every_few_days():
    schedule = nine_am("Europe/London", interval_days=3)
    with pytest.raises(ValueError, match="anchor"):
        latest_slot(schedule, utc(2026, 6, 1))
    with pytest.raises(ValueError, match="anchor"):
        next_slot(schedule, utc(2026, 6, 1))


def test_it_refuses_a_naive_instant():
    with pytest.raises(ValueError, match="at: needs a timezone-aware"):
        latest_slot(nine_am("Europe/London"), dt.datetime(2026, 6, 1, 12, 0))


# --- validation ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"holiday_country": "XX"}, "holiday_country"),
        ({"holiday_country": "US", "holiday_subdivision": "ZZ"}, "holiday_subdivision"),
        ({"holiday_subdivision": "CA"}, "holiday_subdivision"),
        ({"interval_days": 0}, "interval_days"),
        ({"interval_days": -2}, "interval_days"),
        ({"send_time": dt.time(9, 0, tzinfo=UTC)}, "send_time"),
    ],
)
def test_it_rejects_a_schedule_naming_the_wrong_field(changes, field):
    schedule = Schedule(**{"send_time": dt.time(9, 0), "time_zone": "Europe/London", **changes})
    with pytest.raises(ValueError, match=f"^{field}: "):
        validate_schedule(schedule)
    with pytest.raises(ValueError, match=f"^{field}: "):
        schedule.validate()


def test_it_accepts_a_complete_schedule():
    schedule = Schedule(
        send_time=dt.time(8, 15),
        time_zone="America/Los_Angeles",
        exclude_weekends=True,
        holiday_country="US",
        holiday_subdivision="CA",
        interval_days=2,
    )
    validate_schedule(schedule)
