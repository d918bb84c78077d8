"""Runs that meet a problem: it is recorded, and other sequences and enrollments go on."""

from __future__ import annotations

import datetime as dt

from sequent.crm.models import CustomField
from sequent.sequences.models import Enrollment, EnrollmentStatus, RunSlot, Sequence
from sequent.sequences.tests.conftest import at, executions, run_due


def test_it_sets_aside_a_sequence_whose_schedule_broke_and_runs_the_others(make_contact, make_sequence):
    broken = make_sequence([{"kind": "follow_up", "day": 1}], contacts=[make_contact()], name="Broken")
    fine = make_sequence([{"kind": "follow_up", "day": 1}], contacts=[make_contact()], name="Fine")
    Sequence.objects.filter(pk=broken.pk).update(time_zone="Mars/Olympus")  # stored before validation existed
    run_due("2026-03-02 09:05")
    assert list(RunSlot.objects.values_list("sequence__name", flat=True)) == ["Fine"]
    assert Enrollment.objects.get(sequence=fine).run_count == 1
    broken.refresh_from_db()
    assert broken.next_run_at == at("2026-03-02 09:20")


def test_it_records_audience_conditions_that_no_longer_compile(make_contact, make_sequence):
    CustomField.objects.create(record_type="contact", key="budget", label="Budget", field_type="number")
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}],
        contacts=[make_contact()],
        audience_conditions=[{"field": "custom.budget", "op": "gt", "value": 100}],
    )
    CustomField.objects.all().delete()
    run_due("2026-03-02 09:05")
    slot = RunSlot.objects.get(sequence=sequence)
    assert slot.enrolled == 0
    assert "audience conditions do not compile" in slot.notes
    assert "custom.budget" in slot.notes


def test_it_pauses_an_enrollment_until_its_return_date(make_contact, make_sequence):
    contact = make_contact()
    make_sequence([{"kind": "follow_up", "day": d} for d in (1, 2, 3)], contacts=[contact])
    run_due("2026-03-02 09:05")
    # An out-of-office reply (recorded by the inbound email issue) pauses it until Thursday.
    Enrollment.objects.update(status=EnrollmentStatus.PAUSED, paused_until=at("2026-03-05 00:00"))
    run_due("2026-03-03 09:05")
    run_due("2026-03-04 09:05")
    run_due("2026-03-05 09:05")
    enrollment = Enrollment.objects.get()
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert executions(enrollment) == [(1, "executed", "2026-03-02"), (2, "executed", "2026-03-05")]
    assert enrollment.last_run_date == dt.date(2026, 3, 5)
