"""How a worker's batch is decided and ended: several steps with property conditions in one
batch, enrollments finishing beside others that go on, and a sequence whose share of a
batch fails while the rest of the batch goes through."""

from __future__ import annotations

import pytest

from sequent.lib import clock
from sequent.sequences import processing
from sequent.sequences.models import Enrollment, EnrollmentStatus, Step, StepExecution
from sequent.sequences.tests.conftest import at, executions, run_due
from sequent.tasks.models import Task
from sequent.worker.loop import Worker


def _outcome(contact, position: int) -> tuple[str, str]:
    execution = StepExecution.objects.get(enrollment__contact=contact, step__position=position)
    return execution.status, execution.reason


def test_it_names_the_first_failing_clause_of_each_step_in_one_batch(make_contact, make_sequence):
    nz_manager = make_contact(job_title="Sales Manager", country="NZ")
    us_ceo = make_contact(job_title="CEO", country="US")
    us_manager = make_contact(job_title="Office Manager", country="US")
    make_sequence(
        [
            {
                "kind": "follow_up",
                "day": 1,
                "conditions": [
                    {"field": "job_title", "op": "contains", "value": "manager"},
                    {"field": "country", "op": "equals", "value": "NZ"},
                ],
            },
            {
                "kind": "call_reminder",
                "day": 1,
                "conditions": [{"field": "country", "op": "equals", "value": "US"}],
            },
        ],
        contacts=[nz_manager, us_ceo, us_manager],
    )
    run_due("2026-03-02 09:05")

    assert _outcome(nz_manager, 1) == ("executed", "")
    assert _outcome(nz_manager, 2) == ("skipped", 'condition 1 failed: country equals "US" does not hold')
    assert _outcome(us_ceo, 1) == (
        "skipped",
        'condition 1 failed: job_title contains "manager" does not hold',
    )
    assert _outcome(us_ceo, 2) == ("executed", "")
    assert _outcome(us_manager, 1) == ("skipped", 'condition 2 failed: country equals "NZ" does not hold')
    assert _outcome(us_manager, 2) == ("executed", "")
    assert sorted(Task.objects.values_list("contact__country", "kind")) == [
        ("NZ", "follow_up"),
        ("US", "call_reminder"),
        ("US", "call_reminder"),
    ]


def test_it_completes_the_enrollments_that_finished_and_leaves_the_others_active(make_contact, make_sequence):
    early = make_contact(job_title="VP Sales")
    make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}],
        audience_conditions=[{"field": "job_title", "op": "starts_with", "value": "vp"}],
    )
    run_due("2026-03-02 09:05")
    late = make_contact(job_title="VP Marketing")
    run_due("2026-03-03 09:05")  # one batch: the early enrollment's day 2, the late one's day 1

    finished, going_on = Enrollment.objects.get(contact=early), Enrollment.objects.get(contact=late)
    assert (finished.status, finished.completed_at) == (EnrollmentStatus.COMPLETED, at("2026-03-03 09:05"))
    assert (going_on.status, going_on.completed_at) == (EnrollmentStatus.ACTIVE, None)
    assert going_on.next_due_at is None
    run_due("2026-03-04 09:05")
    going_on.refresh_from_db()
    assert going_on.status == EnrollmentStatus.COMPLETED
    assert executions(going_on) == [(1, "executed", "2026-03-03"), (2, "executed", "2026-03-04")]


def test_it_sets_aside_a_sequence_whose_share_of_a_batch_fails_and_processes_the_rest(
    make_contact, make_sequence
):
    broken = make_sequence([{"kind": "follow_up", "day": 1}], name="Broken", contacts=[make_contact()])
    healthy = make_sequence([{"kind": "follow_up", "day": 1}], name="Healthy", contacts=[make_contact()])
    # A stored condition no released version would accept: deciding the step raises.
    Step.objects.filter(sequence=broken).update(conditions=[{"field": "email.opened", "op": "equals"}])
    now = at("2026-03-02 09:05")
    with clock.frozen(now):
        worker = Worker("w1")
        while worker.handle_run():
            pass
        with pytest.raises(ValueError, match="operator 'equals'"):
            processing.process_due("w1", now)

    assert Task.objects.get().enrollment.sequence == healthy
    held = Enrollment.objects.get(sequence=broken)
    assert held.next_due_at is not None and held.claimed_until == now + processing.LEASE
    assert not StepExecution.objects.filter(enrollment=held).exists()
    with clock.frozen(at("2026-03-02 09:06")):
        assert processing.process_due("w2").enrollments == 0  # still set aside
    # Fixed within the lease: the next worker to find it due after the lease processes it.
    Step.objects.filter(sequence=broken).update(conditions=[])
    run_due("2026-03-02 09:11")
    assert executions(held) == [(1, "executed", "2026-03-02")]
    assert Task.objects.count() == 2
