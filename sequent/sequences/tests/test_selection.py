"""Step selection and skip reasons, without a database."""

from __future__ import annotations

import pytest

from sequent.sequences.selection import (
    EXECUTE,
    SKIP,
    Facts,
    build_plans,
    classic_decisions,
    is_finished,
    parse_email_clause,
    smart_decision,
)

OPENED_PREVIOUS = {"field": "email.opened", "op": "is_true", "value": None, "of": "previous"}
NOT_CLICKED_ANY = {"field": "email.clicked", "op": "is_false", "value": None, "of": "any"}

PLANS = build_plans(
    [
        (1, "email", 1, []),
        (2, "follow_up", 1, [OPENED_PREVIOUS]),
        (3, "email", 2, [{"field": "job_title", "op": "equals", "value": "CEO"}, NOT_CLICKED_ANY]),
        (4, "call_reminder", 3, [OPENED_PREVIOUS]),
    ]
)


def test_it_links_each_step_to_the_previous_email_step():
    assert [p.previous_email_step for p in PLANS] == [None, 1, 1, 3]


def test_it_takes_every_classic_step_whose_day_has_come_in_order():
    decisions = classic_decisions(PLANS, Facts(activity={(1, "opened")}), run_count=2)
    assert [(d.step_id, d.action) for d in decisions] == [(1, EXECUTE), (2, EXECUTE), (3, EXECUTE)]


def test_it_skips_with_the_first_failing_clause():
    facts = Facts(done={1, 2}, failed_property={3: 0}, activity={(1, "clicked")})
    (decision,) = classic_decisions(PLANS, facts, run_count=2)
    assert (decision.action, decision.reason) == (
        SKIP,
        'condition 1 failed: job_title equals "CEO" does not hold',
    )
    facts.failed_property.clear()
    (decision,) = classic_decisions(PLANS, facts, run_count=2)
    assert decision.reason == "condition 2 failed: email.clicked of any step is true"


def test_it_reads_previous_as_the_nearest_email_step_before():
    # Step 4's previous email step is 3, so an open of step 1 does not count.
    facts = Facts(done={1, 2, 3}, activity={(1, "opened")})
    (decision,) = classic_decisions(PLANS, facts, run_count=3)
    assert decision.reason == "condition 1 failed: email.opened of previous step is false"


def test_it_picks_the_first_smart_step_that_holds_or_waits():
    assert smart_decision(PLANS, Facts(done={1}, failed_property={3: 0})) is None
    assert smart_decision(PLANS, Facts(done={1}, activity={(1, "opened")})).step_id == 2
    # Step 2 waits for an open; step 3's conditions hold, so it goes first.
    assert smart_decision(PLANS, Facts(done={1})).step_id == 3


def test_it_knows_when_every_step_is_decided():
    assert not is_finished(PLANS, {1, 2, 3})
    assert is_finished(PLANS, {1, 2, 3, 4, 99})


@pytest.mark.parametrize(
    ("clause", "problem"),
    [
        ({"field": "email.forwarded", "op": "is_true"}, "unknown email activity"),
        ({"field": "email.opened", "op": "equals", "value": True}, "does not fit"),
        ({"field": "email.opened", "op": "is_true", "value": 3}, "takes no value"),
        ({"field": "email.opened", "op": "is_true", "of": "first"}, "'of' must be"),
    ],
)
def test_it_refuses_malformed_email_clauses(clause, problem):
    with pytest.raises(ValueError, match=problem):
        parse_email_clause(0, clause)
