"""Smart sequences: one step per run at most, the first whose conditions hold."""

from __future__ import annotations

from sequent.mail.models import EmailEvent, OutboundMessage
from sequent.sequences.models import Enrollment, EnrollmentStatus, ExitReason, RunSlot
from sequent.sequences.tests.conftest import at, executions, run_due

OPENED_PREVIOUS = {"field": "email.opened", "op": "is_true", "value": None, "of": "previous"}
CLICKED_ANY = {"field": "email.clicked", "op": "is_true", "value": None, "of": "any"}


def event(contact, kind: str, when: str, *, position: int) -> EmailEvent:
    message = OutboundMessage.objects.get(contact=contact, step__position=position)
    return EmailEvent.objects.create(
        message=message,
        contact=contact,
        enrollment=message.enrollment,
        step=message.step,
        kind=kind,
        occurred_at=at(when),
        dedupe_key=f"{kind}-{message.pk}",
    )


def test_it_fires_steps_as_email_events_arrive(make_contact, make_sequence):
    contact = make_contact()
    make_sequence(
        [
            {"kind": "email", "subject": "Intro"},
            {"kind": "email", "subject": "Since you read it", "conditions": [OPENED_PREVIOUS]},
            {"kind": "call_reminder", "conditions": [CLICKED_ANY]},
        ],
        kind="smart",
        contacts=[contact],
    )
    enrollment = lambda: Enrollment.objects.get(contact=contact)  # noqa: E731

    run_due("2026-03-02 09:05")
    assert executions(enrollment()) == [(1, "executed", "2026-03-02")]
    run_due("2026-03-03 09:05")  # not opened yet: wait, nothing skipped
    assert executions(enrollment()) == [(1, "executed", "2026-03-02")]

    event(contact, "opened", "2026-03-03 11:00", position=1)
    run_due("2026-03-04 09:05")
    assert executions(enrollment())[-1] == (2, "executed", "2026-03-04")
    run_due("2026-03-05 09:05")
    assert len(executions(enrollment())) == 2

    event(contact, "clicked", "2026-03-05 10:00", position=2)
    run_due("2026-03-06 09:05")
    assert executions(enrollment())[-1] == (3, "executed", "2026-03-06")
    assert enrollment().status == EnrollmentStatus.COMPLETED


def test_it_takes_at_most_one_step_per_run(make_contact, make_sequence):
    contact = make_contact()
    make_sequence(
        [{"kind": "follow_up"}, {"kind": "follow_up"}, {"kind": "follow_up"}],
        kind="smart",
        contacts=[contact],
    )
    for day in ("2026-03-02", "2026-03-03", "2026-03-04"):
        run_due(f"{day} 09:05")
    assert executions(Enrollment.objects.get()) == [
        (1, "executed", "2026-03-02"),
        (2, "executed", "2026-03-03"),
        (3, "executed", "2026-03-04"),
    ]


def test_it_takes_a_later_step_whose_condition_holds_first(make_contact, make_sequence):
    contact = make_contact(job_title="Founder")
    make_sequence(
        [
            {"kind": "follow_up", "conditions": [{"field": "job_title", "op": "equals", "value": "CFO"}]},
            {"kind": "call_reminder"},
        ],
        kind="smart",
        contacts=[contact],
    )
    run_due("2026-03-02 09:05")
    assert executions(Enrollment.objects.get()) == [(2, "executed", "2026-03-02")]
    contact.job_title = "CFO"
    contact.save()
    run_due("2026-03-03 09:05")
    assert executions(Enrollment.objects.get()) == [
        (1, "executed", "2026-03-03"),
        (2, "executed", "2026-03-02"),
    ]


def test_it_expires_an_enrollment_that_keeps_waiting(make_contact, make_sequence):
    contact = make_contact()
    make_sequence(
        [{"kind": "email"}, {"kind": "follow_up", "conditions": [CLICKED_ANY]}],
        kind="smart",
        smart_expiry_days=7,
        contacts=[contact],
    )
    for day in ("2026-03-02", "2026-03-03", "2026-03-06"):
        run_due(f"{day} 09:05")
    enrollment = Enrollment.objects.get()
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.ACTIVE, "")
    run_due("2026-03-09 09:05")  # 7 days after enrolling on March 2: its time is up
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.EXPIRED)
    assert len(executions(enrollment)) == 1


def test_it_runs_every_n_run_days(make_contact, make_sequence):
    make_sequence(
        [{"kind": "follow_up"}, {"kind": "follow_up"}, {"kind": "follow_up"}],
        kind="smart",
        smart_interval_days=2,
        contacts=[make_contact()],
    )
    for day in (
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
        "2026-03-06",
        "2026-03-09",
        "2026-03-10",
    ):
        run_due(f"{day} 09:05")
    # Every second business day from the first run (Monday): Mon, Wed, Fri.
    assert sorted(str(d) for d in RunSlot.objects.values_list("local_date", flat=True)) == [
        "2026-03-02",
        "2026-03-04",
        "2026-03-06",
        "2026-03-10",
    ]
    assert [e[2] for e in executions(Enrollment.objects.get())] == ["2026-03-02", "2026-03-04", "2026-03-06"]
