"""The worker loop: units of work, leases, and `run-due`."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from sequent.lib import clock
from sequent.sequences import processing
from sequent.sequences.models import Enrollment, RunSlot, RunSlotStatus, StepExecution
from sequent.sequences.tests.conftest import at, run_due
from sequent.tasks.models import Task
from sequent.worker.loop import Worker


def test_it_reports_no_work_when_nothing_is_due(make_contact, make_sequence):
    make_sequence([{"kind": "follow_up", "day": 1}], contacts=[make_contact()])
    with clock.frozen(at("2026-03-02 08:00")):
        assert Worker("w1").handle_one() is False


def test_it_does_one_unit_of_work_at_a_time(make_contact, make_sequence):
    make_sequence(
        [{"kind": "follow_up", "day": 1}], contacts=[make_contact(), make_contact(), make_contact()]
    )
    worker = Worker("w1", batch_size=2)
    with clock.frozen(at("2026-03-02 09:05")):
        assert worker.handle_one()  # starts the run: enrolls and marks three enrollments due
        assert Enrollment.objects.filter(next_due_at__isnull=False).count() == 3
        assert worker.handle_one()  # first batch of two
        assert Task.objects.count() == 2
        assert RunSlot.objects.get().status == RunSlotStatus.RUNNING
        assert worker.handle_one()  # last batch; the run is finished
        assert RunSlot.objects.get().status == RunSlotStatus.DONE
        assert worker.handle_one() is False
    assert (worker.stats.runs_started, worker.stats.batches, worker.stats.enrollments) == (1, 2, 3)


def test_it_hands_out_disjoint_batches(make_contact, make_sequence):
    make_sequence([{"kind": "follow_up", "day": 1}], contacts=[make_contact() for _ in range(5)])
    now = at("2026-03-02 09:05")
    with clock.frozen(now):
        assert Worker("w1").handle_run()
        first = processing.claim_batch("w1", now, size=3)
        second = processing.claim_batch("w2", now, size=3)
        third = processing.claim_batch("w3", now, size=3)
    assert (len(first.ids), len(second.ids), third.ids) == (3, 2, [])
    assert not set(first.ids) & set(second.ids)


def test_it_takes_over_a_batch_whose_lease_expired_and_executes_it_once(make_contact, make_sequence):
    make_sequence([{"kind": "follow_up", "day": 1}], contacts=[make_contact() for _ in range(3)])
    now = at("2026-03-02 09:05")
    with clock.frozen(now):
        assert Worker("crashed").handle_run()
        lost = processing.claim_batch("crashed", now, size=2)  # ... and the worker dies here
    run_due("2026-03-02 09:06")
    assert Task.objects.count() == 1  # the other two are still leased
    assert RunSlot.objects.get().status == RunSlotStatus.RUNNING
    run_due("2026-03-02 09:11")  # five minutes later the lease has expired
    assert Task.objects.count() == 3
    assert RunSlot.objects.get().status == RunSlotStatus.DONE
    # The first worker wakes up and finishes its batch: nothing is its own any more.
    with clock.frozen(at("2026-03-02 09:12")):
        processing.process_claim(lost)
    assert (Task.objects.count(), StepExecution.objects.count()) == (3, 3)


def test_it_stops_when_asked():
    worker = Worker("w1", imports=False)
    worker.stop()
    assert worker.run().batches == 0


def test_it_rejects_a_bad_now():
    with pytest.raises(CommandError, match="--now"):
        call_command("run_due", now="next tuesday")


def test_it_reads_now_without_an_offset_as_utc(make_contact, make_sequence):
    make_sequence([{"kind": "follow_up", "day": 1}], contacts=[make_contact()])
    call_command("run_due", now="2026-03-02T09:00:00")
    assert Task.objects.get().due_at == at("2026-03-02 09:00")
