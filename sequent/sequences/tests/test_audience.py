"""Who a run enrolls: views, conditions, hand-added contacts, accounts, duplicates, exclusivity."""

from __future__ import annotations

from sequent.crm.models import Account, SavedView
from sequent.sequences import actions
from sequent.sequences.audience import enrollable
from sequent.sequences.models import Enrollment, EnrollmentStatus
from sequent.sequences.tests.conftest import run_due

ONE_STEP = [{"kind": "follow_up", "day": 1}]


def enrolled(sequence) -> set[int]:
    return set(Enrollment.objects.filter(sequence=sequence).values_list("contact_id", flat=True))


def test_it_enrolls_only_hand_added_contacts_without_views_or_conditions(make_contact, make_sequence):
    chosen = make_contact()
    make_contact()
    sequence = make_sequence(ONE_STEP, contacts=[chosen])
    run_due("2026-03-02 09:05")
    assert enrolled(sequence) == {chosen.pk}


def test_it_enrolls_contacts_in_any_view_that_match_the_conditions(make_contact, make_sequence, rep):
    ceo = make_contact(job_title="CEO", country="US")
    cfo = make_contact(job_title="CFO", country="DE")
    make_contact(job_title="CTO", country="US")  # in a view but fails the condition
    make_contact(job_title="Intern", country="FR")  # in no view
    by_hand = make_contact(job_title="Intern", country="FR")
    chiefs = SavedView.objects.create(
        owner=rep, name="Chiefs", conditions=[{"field": "job_title", "op": "any_of", "value": ["CEO", "CTO"]}]
    )
    germans = SavedView.objects.create(
        owner=rep, name="Germany", conditions=[{"field": "country", "op": "equals", "value": "DE"}]
    )
    sequence = make_sequence(
        ONE_STEP,
        audience_views=[chiefs.pk, germans.pk],
        audience_conditions=[{"field": "job_title", "op": "not_equals", "value": "CTO"}],
        contacts=[by_hand],
    )
    run_due("2026-03-02 09:05")
    assert enrolled(sequence) == {ceo.pk, cfo.pk, by_hand.pk}


def test_it_brings_in_every_contact_of_a_matching_account(make_contact, make_sequence):
    acme = Account.objects.create(name="Acme", industry="Software")
    shop = Account.objects.create(name="Shop", industry="Retail")
    a1, a2 = make_contact(account=acme), make_contact(account=acme)
    make_contact(account=shop)
    make_contact()
    sequence = make_sequence(
        ONE_STEP,
        record_type="account",
        audience_conditions=[{"field": "industry", "op": "equals", "value": "software"}],
    )
    run_due("2026-03-02 09:05")
    assert enrolled(sequence) == {a1.pk, a2.pk}
    a3 = make_contact(account=acme)  # joins the account later: enrolls at the next run
    run_due("2026-03-03 09:05")
    assert enrolled(sequence) == {a1.pk, a2.pk, a3.pk}


def test_it_prevents_duplicates_by_email(make_contact, make_sequence):
    first = make_contact(email="sam@acme.com", last_name="Dup")
    make_contact(email="sam@acme.com", last_name="Dup")
    other = make_contact(email="kim@acme.com", last_name="Dup")
    no_email = [make_contact(email="", last_name="Dup"), make_contact(email="", last_name="Dup")]
    audience = [{"field": "last_name", "op": "equals", "value": "Dup"}]
    guarded = make_sequence(ONE_STEP, audience_conditions=audience, prevent_duplicates=True, name="Guarded")
    open_ = make_sequence(ONE_STEP, audience_conditions=audience, name="Open")
    run_due("2026-03-02 09:05")
    assert enrolled(guarded) == {first.pk, other.pk, *(c.pk for c in no_email)}
    assert len(enrolled(open_)) == 5
    make_contact(email="kim@acme.com", last_name="Dup")  # same email as an enrolled contact
    run_due("2026-03-03 09:05")
    assert enrolled(guarded) == {first.pk, other.pk, *(c.pk for c in no_email)}
    assert len(enrolled(open_)) == 6


def test_it_keeps_contacts_active_elsewhere_out_of_an_exclusive_sequence(make_contact, make_sequence):
    busy, free = make_contact(), make_contact()
    elsewhere = make_sequence([*ONE_STEP, {"kind": "follow_up", "day": 2}], contacts=[busy], name="Elsewhere")
    run_due("2026-03-02 09:05")
    exclusive = make_sequence(
        ONE_STEP, contacts=[busy, free], exclusive=True, name="Exclusive", activate_at="2026-03-02 10:00"
    )
    shared = make_sequence(ONE_STEP, contacts=[busy, free], name="Shared", activate_at="2026-03-02 10:00")
    run_due("2026-03-03 09:05")
    assert enrolled(exclusive) == {free.pk}
    assert enrolled(shared) == {busy.pk, free.pk}  # sequences are independent unless exclusive
    assert Enrollment.objects.get(sequence=elsewhere).status == EnrollmentStatus.COMPLETED
    run_due("2026-03-04 09:05")  # the other sequence is done: the contact may join now
    assert enrolled(exclusive) == {busy.pk, free.pk}


def test_it_enrolls_a_contact_at_most_once(make_contact, make_sequence):
    contact = make_contact(job_title="CEO")
    sequence = make_sequence(
        [*ONE_STEP, {"kind": "follow_up", "day": 2}],
        audience_conditions=[{"field": "job_title", "op": "equals", "value": "CEO"}],
    )
    run_due("2026-03-02 09:05")
    actions.do_remove_enrollment(Enrollment.objects.get())
    actions.do_add_contacts(sequence, [contact.pk])
    run_due("2026-03-03 09:05")
    assert Enrollment.objects.filter(sequence=sequence).count() == 1
    assert not enrollable(sequence).exists()
