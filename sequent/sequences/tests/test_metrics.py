"""Metrics refreshed at the end of each run."""

from __future__ import annotations

from sequent.mail.models import EmailEvent, OutboundMessage
from sequent.sequences.models import SequenceMetrics, StepMetrics
from sequent.sequences.tests.conftest import at, run_due


def test_it_counts_enrollments_steps_and_email_events_per_run(make_contact, make_sequence):
    a, b, c = make_contact(), make_contact(), make_contact(email="")
    sequence = make_sequence(
        [{"kind": "email", "day": 1}, {"kind": "follow_up", "day": 2}, {"kind": "follow_up", "day": 3}],
        contacts=[a, b, c],
    )
    run_due("2026-03-02 09:05")
    for n, (contact, kind) in enumerate(
        [(a, "sent"), (b, "sent"), (a, "opened"), (a, "opened"), (b, "replied")]
    ):
        message = OutboundMessage.objects.get(contact=contact)
        EmailEvent.objects.create(
            message=message,
            contact=contact,
            enrollment=message.enrollment,
            step=message.step,
            kind=kind,
            occurred_at=at("2026-03-02 12:00"),
            dedupe_key=f"e{n}",
        )
    run_due("2026-03-03 09:05")

    metrics = SequenceMetrics.objects.get(sequence=sequence)
    assert (metrics.enrolled, metrics.active, metrics.completed, metrics.exited) == (3, 2, 0, 1)
    assert metrics.exited_by_reason == {"replied": 1}
    assert (metrics.executed, metrics.skipped, metrics.failed) == (4, 1, 0)
    assert (metrics.sent, metrics.opened, metrics.replied) == (2, 1, 1)
    assert metrics.rates()["open_rate"] == 0.5
    email_step = StepMetrics.objects.get(step__position=1)
    assert (email_step.executed, email_step.skipped, email_step.sent, email_step.opened) == (2, 1, 2, 1)
    assert email_step.rates()["reply_rate"] == 0.5
    assert StepMetrics.objects.get(step__position=2).executed == 2
    assert StepMetrics.objects.get(step__position=3).executed == 0


def test_it_shows_human_and_raw_opens_and_clicks(make_contact, make_sequence):
    a, b = make_contact(), make_contact()
    sequence = make_sequence([{"kind": "email", "day": 1}, {"kind": "follow_up", "day": 5}], contacts=[a, b])
    run_due("2026-03-02 09:05")
    events = [(a, "opened", False), (b, "opened", True), (b, "clicked", True)]
    for n, (contact, kind, automated) in enumerate(events):
        message = OutboundMessage.objects.get(contact=contact)
        EmailEvent.objects.create(
            message=message,
            contact=contact,
            enrollment=message.enrollment,
            step=message.step,
            kind=kind,
            is_automated=automated,
            occurred_at=at("2026-03-02 12:00"),
            dedupe_key=f"raw{n}",
        )
    run_due("2026-03-03 09:05")

    metrics = SequenceMetrics.objects.get(sequence=sequence)
    assert (metrics.opened, metrics.opened_raw) == (1, 2)
    assert (metrics.clicked, metrics.clicked_raw) == (0, 1)
    email_step = StepMetrics.objects.get(step__position=1)
    assert (email_step.opened, email_step.opened_raw, email_step.clicked_raw) == (1, 2, 1)
