"""Sequence and step actions: validation naming the field, status changes, steps order."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from sequent.crm.models import SavedView
from sequent.lib import clock
from sequent.sequences import actions
from sequent.sequences.models import SequenceContact, SequenceStatus, Step
from sequent.sequences.tests.conftest import at

CLAUSE = {"field": "job_title", "op": "contains", "value": "VP"}


def errors_of(func, *args, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        func(*args, **kwargs)
    return info.value.message_dict


def test_it_creates_a_draft_with_defaults(rep):
    sequence = actions.do_create_sequence(rep, "  Q3 outreach ")
    assert (sequence.name, sequence.status, sequence.kind, sequence.record_type) == (
        "Q3 outreach",
        SequenceStatus.DRAFT,
        "classic",
        "contact",
    )
    assert (sequence.smart_interval_days, sequence.smart_expiry_days) == (1, 90)
    assert sequence.exit_on_reply and sequence.exit_on_unsubscribe and sequence.exit_on_bounce


def test_it_names_the_field_of_each_problem(rep):
    errors = errors_of(
        actions.do_create_sequence,
        rep,
        "",
        kind="weekly",
        time_zone="Mars/Olympus",
        smart_expiry_days=0,
        color="blue",
    )
    assert set(errors) == {"name", "kind", "smart_expiry_days", "color"}
    assert "time_zone" in errors_of(actions.do_create_sequence, rep, "X", time_zone="Mars/Olympus")
    assert "holiday_country" in errors_of(actions.do_create_sequence, rep, "X", holiday_country="XX")
    assert "send_time" in errors_of(actions.do_create_sequence, rep, "X", send_time="9 o'clock")


def test_it_refuses_a_ninth_condition_and_names_a_bad_clause(rep):
    errors = errors_of(actions.do_create_sequence, rep, "X", audience_conditions=[CLAUSE] * 9)
    assert errors == {"audience_conditions": ["at most 8 conditions, got 9"]}
    errors = errors_of(
        actions.do_create_sequence,
        rep,
        "X",
        exit_conditions=[CLAUSE, {"field": "shoe_size", "op": "equals", "value": 3}],
    )
    assert list(errors) == ["exit_conditions[1]"]
    assert "shoe_size" in errors["exit_conditions[1]"][0]


def test_it_keeps_email_activity_clauses_to_steps(rep):
    opened = {"field": "email.opened", "op": "is_true", "value": None, "of": "previous"}
    errors = errors_of(actions.do_create_sequence, rep, "X", audience_conditions=[opened])
    assert "audience_conditions[0]" in errors
    sequence = actions.do_create_sequence(rep, "X")
    step = actions.do_add_step(sequence, "follow_up", conditions=[CLAUSE, opened])
    assert step.conditions == [CLAUSE, opened]
    errors = errors_of(
        actions.do_add_step,
        sequence,
        "follow_up",
        conditions=[CLAUSE, {"field": "email.opened", "op": "is_true", "value": None, "of": "last week"}],
    )
    assert list(errors) == ["conditions[1]"]


def test_it_accepts_only_the_owners_views_of_the_right_record_type(rep, other_rep):
    mine = SavedView.objects.create(owner=rep, name="Mine", conditions=[])
    accounts = SavedView.objects.create(owner=rep, name="Accounts", record_type="account", conditions=[])
    theirs = SavedView.objects.create(owner=other_rep, name="Theirs", conditions=[])
    errors = errors_of(actions.do_create_sequence, rep, "X", audience_views=[mine.pk, accounts.pk, theirs.pk])
    assert set(errors) == {"audience_views[1]", "audience_views[2]"}
    sequence = actions.do_create_sequence(rep, "X", audience_views=[mine.pk])
    assert list(sequence.audience_views.all()) == [mine]


def test_it_validates_steps_by_kind(rep):
    sequence = actions.do_create_sequence(rep, "X")
    assert set(errors_of(actions.do_add_step, sequence, "fax")) == {"kind"}
    assert set(errors_of(actions.do_add_step, sequence, "sms")) == {"sms_body"}
    assert set(errors_of(actions.do_add_step, sequence, "email")) == {"subject"}
    assert set(errors_of(actions.do_add_step, sequence, "follow_up", day=0)) == {"day"}
    assert set(errors_of(actions.do_add_step, sequence, "email", subject="Hi", cc=["not-an-address"])) == {
        "cc[0]"
    }
    reply = actions.do_add_step(sequence, "email", thread="reply", reply_to="Boss@Example.com")
    assert (reply.subject, reply.reply_to) == ("", "boss@example.com")


def test_it_appends_reorders_and_deletes_steps(rep):
    sequence = actions.do_create_sequence(rep, "X")
    a, b, c = (actions.do_add_step(sequence, "follow_up", task_title=t) for t in "abc")
    assert [a.position, b.position, c.position] == [1, 2, 3]
    actions.do_reorder_steps(sequence, [c.pk, a.pk, b.pk])
    assert list(Step.objects.filter(sequence=sequence).live().values_list("task_title", flat=True)) == [
        "c",
        "a",
        "b",
    ]
    assert "step_ids" in errors_of(actions.do_reorder_steps, sequence, [a.pk, b.pk])
    actions.do_delete_step(a)
    assert list(Step.objects.filter(sequence=sequence).live().values_list("task_title", flat=True)) == [
        "c",
        "b",
    ]
    assert actions.do_add_step(sequence, "follow_up").position == 3


def test_it_moves_through_statuses_in_order(rep):
    sequence = actions.do_create_sequence(rep, "X", time_zone="Europe/London", send_time="08:30")
    assert "steps" in errors_of(actions.do_activate, sequence)
    actions.do_add_step(sequence, "follow_up")
    assert "status" in errors_of(actions.do_resume, sequence)
    with clock.frozen(at("2026-03-06 12:00")):  # a Friday, after the send time
        actions.do_activate(sequence)
    assert sequence.status == SequenceStatus.ACTIVE
    assert sequence.anchor_date == dt.date(2026, 3, 9)  # the first run: next business day
    assert sequence.activated_at == at("2026-03-06 12:00")
    actions.do_pause(sequence)
    assert "status" in errors_of(actions.do_activate, sequence)
    actions.do_resume(sequence)
    actions.do_archive(sequence)
    assert "status" in errors_of(actions.do_update_sequence, sequence, name="Y")
    assert "status" in errors_of(actions.do_add_step, sequence, "follow_up")


def test_it_freezes_kind_and_record_type_once_active(rep):
    sequence = actions.do_create_sequence(rep, "X")
    actions.do_update_sequence(sequence, kind="smart", smart_interval_days=3)
    actions.do_add_step(sequence, "follow_up")
    actions.do_activate(sequence)
    assert set(errors_of(actions.do_update_sequence, sequence, kind="classic", record_type="account")) == {
        "kind",
        "record_type",
    }
    actions.do_update_sequence(sequence, send_time="10:15", exit_on_reply=False)
    sequence.refresh_from_db()
    assert (sequence.send_time, sequence.exit_on_reply, sequence.next_run_at) == (
        dt.time(10, 15),
        False,
        None,
    )


def test_it_adds_contacts_by_hand_once(rep, make_contact):
    sequence = actions.do_create_sequence(rep, "X")
    a, b = make_contact(), make_contact()
    assert actions.do_add_contacts(sequence, [a.pk, b.pk, a.pk]) == 2
    assert actions.do_add_contacts(sequence, [a.pk]) == 0
    assert SequenceContact.objects.filter(sequence=sequence).count() == 2
    assert set(errors_of(actions.do_add_contacts, sequence, [a.pk, 999_999])) == {"contact_ids"}
