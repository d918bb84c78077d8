"""Classic sequences driven by `run-due --now` across simulated weeks."""

from __future__ import annotations

import datetime as dt

from sequent.lib import clock
from sequent.mail.models import EmailEvent, MessageStatus, OutboundMessage
from sequent.sequences import actions, runs
from sequent.sequences.models import (
    Enrollment,
    EnrollmentStatus,
    RunSlot,
    RunSlotStatus,
    Step,
    StepExecution,
)
from sequent.sequences.tests.conftest import at, executions, run_due
from sequent.sms.models import SmsMessage
from sequent.tasks.models import Task, TaskKind

FIVE_STEPS = [
    {"kind": "email", "day": 1, "subject": "Quick question"},
    {"kind": "call_reminder", "day": 2},
    {"kind": "email", "day": 3, "thread": "reply"},
    {"kind": "follow_up", "day": 5, "task_title": "LinkedIn touch for {name}"},
    {"kind": "sms", "day": 6, "sms_body": "Any thoughts?"},
]


def days(first: str, last: str) -> list[str]:
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def test_it_runs_five_steps_on_business_days_only(make_contact, make_sequence, rep):
    contact = make_contact(first_name="Dana", last_name="Cruz", mobile="+14155550123")
    make_sequence(FIVE_STEPS, contacts=[contact])  # activated Friday 2026-02-27 after the send time

    for day in days("2026-02-27", "2026-03-13"):
        run_due(f"{day} 09:05")

    enrollment = Enrollment.objects.get(contact=contact)
    assert executions(enrollment) == [
        (1, "executed", "2026-03-02"),  # Monday: the first run after activation
        (2, "executed", "2026-03-03"),
        (3, "executed", "2026-03-04"),
        (4, "executed", "2026-03-06"),  # day 5 = Friday
        (5, "executed", "2026-03-09"),  # day 6 = the next Monday: the weekend does not count
    ]
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert enrollment.enrolled_on == dt.date(2026, 3, 2)
    assert not RunSlot.objects.filter(local_date__in=["2026-03-07", "2026-03-08", "2026-02-27"]).exists()
    messages = list(OutboundMessage.objects.order_by("created_at"))
    assert [m.status for m in messages] == [MessageStatus.QUEUED, MessageStatus.QUEUED]
    assert all(m.message_id.startswith("<") and m.to_email == contact.email for m in messages)
    assert len({m.message_id for m in messages}) == 2
    tasks = {t.kind: t for t in Task.objects.all()}
    assert tasks[TaskKind.CALL_REMINDER].due_at == at("2026-03-03 09:00")
    assert tasks[TaskKind.CALL_REMINDER].owner == rep
    assert tasks[TaskKind.FOLLOW_UP].title == "LinkedIn touch for Dana Cruz"
    sms = SmsMessage.objects.get()
    assert (sms.to_number, sms.body) == ("+14155550123", "Any thoughts?")


def test_it_does_nothing_before_the_send_time(make_contact, make_sequence):
    make_sequence(FIVE_STEPS, contacts=[make_contact()])
    run_due("2026-03-02 08:59")
    assert not Enrollment.objects.exists()
    assert not RunSlot.objects.exists()
    run_due("2026-03-02 09:00")
    assert StepExecution.objects.count() == 1


def test_it_skips_a_step_whose_condition_fails_and_says_why(make_contact, make_sequence):
    opener, silent = make_contact(), make_contact()
    make_sequence(
        [
            {"kind": "email", "day": 1},
            {
                "kind": "email",
                "day": 2,
                "subject": "Saw you opened",
                "conditions": [
                    {"field": "email_opt_out", "op": "is_false", "value": None},
                    {"field": "email.opened", "op": "is_true", "value": None, "of": "previous"},
                ],
            },
            {"kind": "follow_up", "day": 2},
        ],
        contacts=[opener, silent],
    )
    run_due("2026-03-02 09:05")
    first = OutboundMessage.objects.get(contact=opener)
    EmailEvent.objects.create(
        message=first,
        contact=opener,
        enrollment=first.enrollment,
        step=first.step,
        kind="opened",
        occurred_at=at("2026-03-02 10:00"),
        dedupe_key="open-1",
    )
    run_due("2026-03-03 09:05")

    assert executions(Enrollment.objects.get(contact=opener)) == [
        (1, "executed", "2026-03-02"),
        (2, "executed", "2026-03-03"),
        (3, "executed", "2026-03-03"),
    ]
    skipped = StepExecution.objects.get(enrollment__contact=silent, step__position=2)
    assert skipped.status == "skipped"
    assert skipped.reason == "condition 2 failed: email.opened of previous step is false"
    # The contact goes on to the next step of that day.
    assert StepExecution.objects.get(enrollment__contact=silent, step__position=3).status == "executed"
    assert OutboundMessage.objects.filter(contact=silent).count() == 1


def test_it_names_the_failing_property_condition(make_contact, make_sequence):
    ceo, intern = make_contact(job_title="CEO"), make_contact(job_title="Intern")
    make_sequence(
        [
            {
                "kind": "call_reminder",
                "day": 1,
                "conditions": [{"field": "job_title", "op": "contains", "value": "ceo"}],
            }
        ],
        contacts=[ceo, intern],
    )
    run_due("2026-03-02 09:05")
    assert StepExecution.objects.get(enrollment__contact=ceo).status == "executed"
    skipped = StepExecution.objects.get(enrollment__contact=intern)
    assert (skipped.status, skipped.reason) == (
        "skipped",
        'condition 1 failed: job_title contains "ceo" does not hold',
    )
    assert Task.objects.get().contact == ceo


def test_it_slides_the_schedule_over_a_pause(make_contact, make_sequence):
    contact = make_contact()
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}, {"kind": "follow_up", "day": 3}],
        contacts=[contact],
    )
    run_due("2026-03-02 09:05")
    with_clock("2026-03-02 12:00", actions.do_pause, sequence)
    run_due("2026-03-03 09:05")
    run_due("2026-03-04 09:05")
    with_clock("2026-03-04 12:00", actions.do_resume, sequence)
    run_due("2026-03-04 13:00")  # the slot of the resume day passed before the resume: no run
    run_due("2026-03-05 09:05")
    run_due("2026-03-06 09:05")

    assert executions(Enrollment.objects.get()) == [
        (1, "executed", "2026-03-02"),
        (2, "executed", "2026-03-05"),
        (3, "executed", "2026-03-06"),
    ]
    assert not RunSlot.objects.filter(local_date__in=["2026-03-03", "2026-03-04"]).exists()


def test_it_gives_back_a_run_that_a_pause_interrupted(make_contact, make_sequence):
    contact = make_contact()
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}], contacts=[contact]
    )
    run_due("2026-03-02 09:05")
    # The Tuesday run marks the enrollment due, then the rep pauses before a worker takes it.
    from sequent.sequences import runs

    with_clock("2026-03-03 09:01", lambda: runs.start_run(sequence.pk, "test", at("2026-03-03 09:01")))
    assert Enrollment.objects.get().run_count == 2
    with_clock("2026-03-03 09:02", actions.do_pause, sequence)
    enrollment = Enrollment.objects.get()
    assert (enrollment.run_count, enrollment.next_due_at) == (1, None)
    with_clock("2026-03-03 10:00", actions.do_resume, sequence)
    run_due("2026-03-04 09:05")
    assert executions(enrollment) == [(1, "executed", "2026-03-02"), (2, "executed", "2026-03-04")]


def test_it_does_not_burst_after_three_days_of_downtime(make_contact, make_sequence):
    contact = make_contact()
    make_sequence([{"kind": "follow_up", "day": d} for d in range(1, 6)], contacts=[contact])
    run_due("2026-03-02 09:05")  # Monday
    # No worker ran on Tuesday, Wednesday or Thursday.
    run_due("2026-03-06 09:05")  # Friday: one day's step, not four
    enrollment = Enrollment.objects.get()
    assert executions(enrollment) == [(1, "executed", "2026-03-02"), (2, "executed", "2026-03-06")]
    run_due("2026-03-09 09:05")
    run_due("2026-03-10 09:05")
    run_due("2026-03-11 09:05")
    assert [e[2] for e in executions(enrollment)] == [
        "2026-03-02",
        "2026-03-06",
        "2026-03-09",
        "2026-03-10",
        "2026-03-11",
    ]
    assert sorted(str(d) for d in RunSlot.objects.values_list("local_date", flat=True)) == [
        "2026-03-02",
        "2026-03-06",
        "2026-03-09",
        "2026-03-10",
        "2026-03-11",
    ]


def test_it_runs_only_the_latest_missed_slot_late(make_contact, make_sequence):
    make_sequence([{"kind": "follow_up", "day": 1}], contacts=[make_contact()])
    run_due("2026-03-04 15:30")  # worker was down since Monday 09:00: one run, for Wednesday
    slot = RunSlot.objects.get()
    assert (slot.local_date, slot.run_at) == (dt.date(2026, 3, 4), at("2026-03-04 09:00"))
    assert Task.objects.get().due_at == at("2026-03-04 09:00")


def test_it_applies_an_edit_to_a_step_in_flight(make_contact, make_sequence):
    contact = make_contact()
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "call_reminder", "day": 4}], contacts=[contact]
    )
    run_due("2026-03-02 09:05")
    call = Step.objects.get(sequence=sequence, kind="call_reminder")
    actions.do_update_step(call, day=2, task_title="Call {name} today")
    run_due("2026-03-03 09:05")
    assert executions(Enrollment.objects.get()) == [
        (1, "executed", "2026-03-02"),
        (2, "executed", "2026-03-03"),
    ]
    assert Task.objects.get(kind="call_reminder").title == f"Call {contact.full_name} today"


def test_it_ignores_a_deleted_step_and_completes(make_contact, make_sequence):
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}, {"kind": "follow_up", "day": 3}],
        contacts=[make_contact()],
    )
    run_due("2026-03-02 09:05")
    actions.do_delete_step(Step.objects.get(sequence=sequence, position=3))
    run_due("2026-03-03 09:05")
    enrollment = Enrollment.objects.get()
    assert [e[0] for e in executions(enrollment)] == [1, 2]
    assert enrollment.status == EnrollmentStatus.COMPLETED


def test_it_enrolls_later_audience_members_at_their_own_first_run(make_contact, make_sequence):
    early = make_contact(job_title="VP Sales")
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}],
        audience_conditions=[{"field": "job_title", "op": "starts_with", "value": "vp"}],
    )
    run_due("2026-03-02 09:05")
    late = make_contact(job_title="VP Marketing")
    make_contact(job_title="Engineer")
    run_due("2026-03-03 09:05")
    assert executions(Enrollment.objects.get(contact=early)) == [
        (1, "executed", "2026-03-02"),
        (2, "executed", "2026-03-03"),
    ]
    late_enrollment = Enrollment.objects.get(contact=late)
    assert late_enrollment.enrolled_on == dt.date(2026, 3, 3)
    assert executions(late_enrollment) == [(1, "executed", "2026-03-03")]
    assert Enrollment.objects.filter(sequence=sequence).count() == 2


def test_it_follows_the_send_time_across_daylight_saving(make_contact, make_sequence):
    make_sequence(
        [{"kind": "follow_up", "day": d} for d in range(1, 4)],
        contacts=[make_contact()],
        time_zone="America/New_York",
        send_time="09:00",
        exclude_weekends=False,
        activate_at="2026-03-06 16:00",
    )
    for when in ("2026-03-07 14:05", "2026-03-08 13:05", "2026-03-09 13:05"):
        run_due(when)
    run_at = list(RunSlot.objects.order_by("local_date").values_list("run_at", flat=True))
    # 09:00 EST is 14:00 UTC; from Sunday March 8, 09:00 EDT is 13:00 UTC.
    assert run_at == [at("2026-03-07 14:00"), at("2026-03-08 13:00"), at("2026-03-09 13:00")]


def test_it_skips_public_holidays(make_contact, make_sequence):
    make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}],
        contacts=[make_contact()],
        holiday_country="US",
        activate_at="2026-07-01 12:00",
    )
    for day in ("2026-07-02", "2026-07-03", "2026-07-04", "2026-07-05", "2026-07-06"):
        run_due(f"{day} 09:05")
    # July 3 2026 is the observed Independence Day, then a weekend.
    assert [e[2] for e in executions(Enrollment.objects.get())] == ["2026-07-02", "2026-07-06"]


def test_it_changes_nothing_when_a_slot_runs_twice_or_out_of_order(make_contact, make_sequence):
    from sequent.sequences import runs

    sequence = make_sequence([{"kind": "follow_up", "day": d} for d in (1, 2, 3)], contacts=[make_contact()])
    run_due("2026-03-02 09:05")
    run_due("2026-03-03 09:05")
    before = (StepExecution.objects.count(), Task.objects.count(), Enrollment.objects.get().run_count)

    again = runs.run_slot(sequence, dt.date(2026, 3, 3), "other-worker", at("2026-03-03 09:30"))
    older = runs.run_slot(sequence, dt.date(2026, 3, 2), "other-worker", at("2026-03-03 09:30"))
    assert again is None and older is None
    # Even bypassing the slot guard, marking an older run due moves nobody.
    assert runs.mark_due(sequence, dt.date(2026, 3, 2), at("2026-03-02 09:00")) == 0
    assert runs.mark_due(sequence, dt.date(2026, 3, 3), at("2026-03-03 09:00")) == 0
    run_due("2026-03-03 10:00")
    assert (StepExecution.objects.count(), Task.objects.count(), Enrollment.objects.get().run_count) == before
    assert RunSlot.objects.filter(status=RunSlotStatus.DONE).count() == 2


def with_clock(when: str, func, *args):
    from sequent.lib import clock

    with clock.frozen(at(when)):
        return func(*args)


THREE_TASKS = [
    {"kind": "follow_up", "day": 1},
    {"kind": "follow_up", "day": 2},
    {"kind": "follow_up", "day": 3},
]


def test_it_gives_the_run_back_when_an_out_of_office_pauses_a_marked_enrollment(make_contact, make_sequence):
    contact = make_contact()
    sequence = make_sequence(THREE_TASKS, contacts=[contact])
    run_due("2026-03-02 09:05")  # Monday: step 1

    # Tuesday's run marks the enrollment due; before a worker processes it, an
    # out-of-office auto-reply pauses it until Thursday (inbound.do_record_auto_reply).
    with clock.frozen(at("2026-03-03 09:05")):
        assert runs.start_run(sequence.pk, "w1", now=at("2026-03-03 09:05")) is not None
    Enrollment.objects.filter(contact=contact).update(
        status=EnrollmentStatus.PAUSED, paused_until=at("2026-03-05 00:00")
    )
    for day in ("03", "04", "05", "06", "09"):
        run_due(f"2026-03-{day} 09:05")

    enrollment = Enrollment.objects.get(contact=contact)
    # The pause keeps the remaining gaps: step 2 on Thursday, step 3 on Friday.
    assert executions(enrollment) == [
        (1, "executed", "2026-03-02"),
        (2, "executed", "2026-03-05"),
        (3, "executed", "2026-03-06"),
    ]
