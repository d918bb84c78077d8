"""Clock faults: a run started again for a slot it already ran, at the same instant or
later the same day, or yesterday's slot run after today's, changes nothing. Every table
is compared before and after."""

from __future__ import annotations

import pytest
from django.apps import apps

from sequent.lib import clock
from sequent.sequences import actions
from sequent.sequences.tests.conftest import at, run_due


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, by model, ordered by primary key."""
    return {
        model._meta.label: [tuple(row) for row in model.objects.order_by("pk").values_list()]
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


@pytest.fixture
def running(rep, make_contact_for_clock):
    contacts = [make_contact_for_clock(n) for n in range(6)]
    sequence = actions.do_create_sequence(
        rep, "Clock", time_zone="Europe/Paris", send_time="09:00", exclude_weekends=True
    )
    actions.do_add_step(sequence, "email", day=1, subject="Hello", body="<p>Hi</p>")
    actions.do_add_step(sequence, "follow_up", day=1)
    actions.do_add_step(sequence, "email", day=2, subject="Again", body="<p>Hi again</p>")
    actions.do_add_step(sequence, "call_reminder", day=3)
    actions.do_add_contacts(sequence, [c.pk for c in contacts])
    with clock.frozen(at("2026-02-27 12:00")):
        actions.do_activate(sequence)
    return sequence


@pytest.fixture
def make_contact_for_clock(db):
    from sequent.crm.models import Contact

    def make(n: int) -> Contact:
        return Contact.objects.create(first_name=f"Tic{n}", email=f"tic{n}@example.com")

    return make


@pytest.mark.parametrize("again", ["2026-03-02 08:00", "2026-03-02 08:30", "2026-03-02 20:00"])
def test_it_changes_nothing_when_a_slot_runs_twice(running, again):
    run_due("2026-03-02 08:00")  # 09:00 in Paris, Monday
    before = snapshot()
    assert before["sequences.StepExecution"], "the first run did its work"
    run_due(again)
    assert snapshot() == before


def test_it_changes_nothing_when_yesterdays_slot_runs_after_todays(running):
    run_due("2026-03-02 08:00")
    run_due("2026-03-03 08:00")
    before = snapshot()
    for earlier in ("2026-03-02 08:00", "2026-03-02 12:00", "2026-02-27 08:00"):
        run_due(earlier)
        assert snapshot() == before, earlier


def test_it_changes_nothing_when_the_next_slot_runs_twice_out_of_order(running):
    run_due("2026-03-02 08:00")
    run_due("2026-03-04 08:00")  # a missed day: the next due step only, once
    before = snapshot()
    run_due("2026-03-03 08:00")
    run_due("2026-03-04 08:00")
    assert snapshot() == before
