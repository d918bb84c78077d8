"""Saved views: create, rename, change, delete, preview, and the records a view selects."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from sequent.crm.conditions import ConditionError
from sequent.crm.models import Account, Contact, CustomField, SavedView
from sequent.crm.saved_views import do_create_view, do_delete_view, do_update_view, preview, view_queryset
from sequent.lib import clock
from sequent.sequences.models import Sequence

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
GERMANS = [{"field": "country", "op": "equals", "value": "DE"}]


def test_it_saves_a_view_with_conditions_in_canonical_form(rep):
    onboarding = Sequence.objects.create(owner=rep, name="Onboarding")
    view = do_create_view(
        rep,
        "  Replied   in onboarding ",
        "contact",
        [
            {"field": "last_contacted_mode", "op": "equals", "value": "Replied"},
            {"field": "sequence", "op": "in_sequence", "value": {"sequence": "onboarding"}},
        ],
    )
    stored = SavedView.objects.get(pk=view.pk)
    assert stored.name == "Replied in onboarding"
    assert stored.owner == rep
    assert stored.conditions == [
        {"field": "last_contacted_mode", "op": "equals", "value": "replied"},
        {"field": "sequence", "op": "in_sequence", "value": {"sequence": onboarding.pk, "status": None}},
    ]


def test_it_refuses_a_duplicate_name_for_the_same_owner_only(rep, other_rep):
    do_create_view(rep, "Germans", "contact", GERMANS)
    with pytest.raises(ValidationError) as caught:
        do_create_view(rep, "Germans", "account", [])
    assert "name" in caught.value.message_dict
    assert do_create_view(other_rep, "Germans", "contact", GERMANS).owner == other_rep
    assert SavedView.objects.filter(name="Germans").count() == 2


def test_it_refuses_a_blank_name_or_an_unknown_record_type(rep):
    with pytest.raises(ValidationError) as caught:
        do_create_view(rep, "   ", "contact", [])
    assert "name" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        do_create_view(rep, "Deals", "deal", [])
    assert "record_type" in caught.value.message_dict
    assert not SavedView.objects.exists()


def test_it_refuses_bad_conditions_naming_the_clause_and_saves_nothing(rep):
    conditions = [*GERMANS, {"field": "email", "op": "gt", "value": "a"}]
    with pytest.raises(ConditionError, match=r"clause 2 \(field 'email'\): operator 'gt' does not fit"):
        do_create_view(rep, "Broken", "contact", conditions)
    assert not SavedView.objects.exists()


def test_it_renames_and_changes_conditions(rep):
    clock.set_now(T0)
    view = do_create_view(rep, "Germans", "contact", GERMANS)
    do_create_view(rep, "French", "contact", [])
    clock.set_now(T0 + dt.timedelta(hours=1))
    do_update_view(
        view, name="DACH", conditions=[{"field": "country", "op": "any_of", "value": ["de", "at"]}]
    )
    stored = SavedView.objects.get(pk=view.pk)
    assert (stored.name, stored.conditions[0]["value"]) == ("DACH", ["de", "at"])
    assert stored.updated_at == T0 + dt.timedelta(hours=1)
    with pytest.raises(ValidationError) as caught:
        do_update_view(view, name="French")
    assert "name" in caught.value.message_dict
    assert view.name == "DACH"
    with pytest.raises(ConditionError):
        do_update_view(view, conditions=[{"field": "country", "op": "equals"}])
    assert SavedView.objects.get(pk=view.pk).conditions == stored.conditions


def test_it_deletes_a_view(rep):
    view = do_create_view(rep, "Germans", "contact", GERMANS)
    do_delete_view(view)
    assert not SavedView.objects.exists()


def test_it_previews_the_count_and_the_first_matches_by_id(rep):
    made = Contact.objects.bulk_create(Contact(country="DE" if n % 3 else "FR") for n in range(30))
    germans = [c.pk for c in made if c.country == "DE"]
    count, first = preview(rep, "contact", GERMANS)
    assert count == 20
    assert [c.pk for c in first] == sorted(germans)[:10]
    count, first = preview(rep, "contact", GERMANS, limit=3)
    assert (count, len(first)) == (20, 3)
    count, first = preview(rep, "contact", [{"field": "country", "op": "equals", "value": "IT"}])
    assert (count, first) == (0, [])


def test_it_previews_accounts_with_custom_fields(rep):
    CustomField.objects.create(record_type="account", key="size", label="Size", field_type="number")
    big = Account.objects.create(name="Big", custom={"size": 900})
    Account.objects.create(name="Small", custom={"size": 9})
    count, first = preview(rep, "account", [{"field": "custom.size", "op": "gt", "value": 100}])
    assert (count, first) == (1, [big])


def test_it_reads_a_views_records_as_its_owner(rep, other_rep):
    mine = Contact.objects.create(owner=rep, country="DE")
    Contact.objects.create(owner=other_rep, country="DE")
    view = do_create_view(
        rep, "My Germans", "contact", [*GERMANS, {"field": "owner", "op": "equals", "value": "me"}]
    )
    assert list(view_queryset(view)) == [mine]


def test_it_reports_a_view_whose_custom_field_was_deleted(rep):
    field = CustomField.objects.create(
        record_type="contact", key="budget", label="Budget", field_type="number"
    )
    view = do_create_view(
        rep, "Big budgets", "contact", [{"field": "custom.budget", "op": "gt", "value": 10}]
    )
    field.delete()
    with pytest.raises(ConditionError, match=r"clause 1 \(field 'custom.budget'\): unknown field"):
        view_queryset(view)
