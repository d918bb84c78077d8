"""The engine's bulk insert: rows as tuples, defaults filled in, unique-key conflicts skipped."""

from __future__ import annotations

import datetime as dt

import pytest

from sequent.lib.bulk import insert_rows
from sequent.sequences.models import Enrollment, StepExecution
from sequent.sequences.tests.conftest import at
from sequent.tasks.models import Task, TaskKind, TaskStatus

COLUMNS = ("enrollment_id", "step_id", "status", "reason", "run_date")


@pytest.fixture
def enrolled(make_contact, make_sequence):
    """Two enrollments of a sequence with one follow-up step, before any step ran."""
    sequence = make_sequence([{"kind": "follow_up", "day": 1}], activate_at=None)
    enrollments = [Enrollment.objects.create(sequence=sequence, contact=make_contact()) for _ in range(2)]
    return sequence, sequence.steps.get(), enrollments


def test_it_writes_every_row_with_its_values_and_the_fixed_ones(enrolled):
    _, step, (first, second) = enrolled
    executed_at = at("2026-03-02 09:00") + dt.timedelta(microseconds=7)
    insert_rows(
        StepExecution,
        COLUMNS,
        [
            (first.pk, step.pk, "executed", "", dt.date(2026, 3, 2)),
            (second.pk, step.pk, "skipped", "condition 1 failed", dt.date(2026, 3, 3)),
        ],
        fixed={"executed_at": executed_at},
    )
    rows = list(
        StepExecution.objects.order_by("enrollment_id").values_list(
            "enrollment_id", "status", "reason", "run_date", "executed_at"
        )
    )
    assert rows == [
        (first.pk, "executed", "", dt.date(2026, 3, 2), executed_at),
        (second.pk, "skipped", "condition 1 failed", dt.date(2026, 3, 3), executed_at),
    ]


def test_it_skips_a_row_that_already_exists_and_keeps_the_first(enrolled):
    _, step, (first, second) = enrolled
    insert_rows(StepExecution, COLUMNS, [(first.pk, step.pk, "executed", "", dt.date(2026, 3, 2))])
    insert_rows(
        StepExecution,
        COLUMNS,
        [
            (first.pk, step.pk, "failed", "again", dt.date(2026, 3, 3)),
            (second.pk, step.pk, "executed", "", dt.date(2026, 3, 3)),
        ],
    )
    assert dict(StepExecution.objects.values_list("enrollment_id", "status")) == {
        first.pk: "executed",
        second.pk: "executed",
    }


def test_it_gives_unnamed_columns_their_defaults(enrolled, rep):
    sequence, step, (first, _) = enrolled
    insert_rows(
        Task,
        ("contact_id", "enrollment_id", "step_id", "title", "due_at"),
        [(first.contact_id, first.pk, step.pk, "Call Pat", at("2026-03-02 09:00"))],
        fixed={"owner_id": sequence.owner_id, "kind": TaskKind.CALL_REMINDER.value},
    )
    task = Task.objects.get()
    assert (task.owner, task.status, task.outcome, task.notes, task.message_id, task.completed_at) == (
        rep,
        TaskStatus.OPEN,
        "",
        "",
        None,
        None,
    )
    assert task.created_at is not None
    assert task.due_at == at("2026-03-02 09:00")


def test_it_writes_nothing_for_no_rows(enrolled):
    insert_rows(StepExecution, COLUMNS, [])
    assert not StepExecution.objects.exists()


def test_it_refuses_a_column_the_model_does_not_have(enrolled):
    with pytest.raises(ValueError, match="no column"):
        insert_rows(StepExecution, ("enrollment_id", "colour"), [(1, "red")])
