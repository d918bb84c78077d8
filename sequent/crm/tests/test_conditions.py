"""The condition compiler: each operator per field type, custom fields, tags, accounts,
sequence membership, and every refusal. Runs on SQLite and PostgreSQL alike."""

import datetime as dt

import pytest

from sequent.crm.conditions import (
    MAX_CLAUSES,
    Clause,
    ConditionError,
    compile_conditions,
    conditions_to_json,
    field_catalog,
    filter_records,
    validate_conditions,
)
from sequent.crm.models import Account, Contact, CustomField, Tag
from sequent.lib import clock
from sequent.sequences.models import Enrollment, Sequence

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def custom_fields(db):
    rows = [
        ("contact", "budget", "Budget", "number", []),
        ("contact", "renewal", "Renewal date", "date", []),
        ("contact", "vip", "VIP", "boolean", []),
        ("contact", "tier", "Tier", "choice", ["Gold", "Silver", "Bronze"]),
        ("contact", "note", "Note", "text", []),
        ("account", "size", "Company size", "number", []),
        ("account", "region", "Region", "text", []),
    ]
    for record_type, key, label, field_type, choices in rows:
        CustomField.objects.create(
            record_type=record_type, key=key, label=label, field_type=field_type, choices=choices
        )


def contact(**fields):
    tags = fields.pop("tags", ())
    made = Contact.objects.create(**fields)
    for name in tags:
        made.tags.add(Tag.objects.get_or_create(name=name)[0])
    return made


def ids(clauses, record_type="contact", user=None):
    return set(filter_records(record_type, clauses, user=user).values_list("pk", flat=True))


def where(field, op, value=None):
    return [{"field": field, "op": op, "value": value}]


# --- text --------------------------------------------------------------------------


def test_it_matches_text_case_insensitively(db):
    dana = contact(first_name="Dana", email="dana@acme.test")
    contact(first_name="Eve", email="eve@globex.test")
    assert ids(where("first_name", "equals", "DANA")) == {dana.pk}
    assert ids(where("email", "contains", "@ACME.")) == {dana.pk}
    assert ids(where("first_name", "starts_with", "da")) == {dana.pk}
    assert ids(where("first_name", "starts_with", "ana")) == set()


def test_it_folds_only_ascii_letters_on_every_database(db):
    upper = contact(last_name="ÉTIENNE")
    lower = contact(last_name="étienne")
    assert ids(where("last_name", "equals", "étienne")) == {lower.pk}
    assert ids(where("last_name", "equals", "ÉTIENNE")) == {upper.pk}
    # The ASCII part still folds: "tienne" is found in both.
    assert ids(where("last_name", "contains", "TIENNE")) == {upper.pk, lower.pk}


def test_it_reads_wildcard_characters_literally(db):
    promo = contact(job_title="50%_off lead")
    plain = contact(job_title="500 off lead")
    assert ids(where("job_title", "contains", "%_")) == {promo.pk}
    assert ids(where("job_title", "starts_with", "50_")) == set()
    assert ids(where("job_title", "contains", "0 o")) == {plain.pk}


def test_it_lets_empty_text_satisfy_only_negations_and_is_empty(db):
    ceo = contact(job_title="CEO")
    blank = contact(job_title="")
    assert ids(where("job_title", "equals", "ceo")) == {ceo.pk}
    assert ids(where("job_title", "not_equals", "ceo")) == {blank.pk}
    assert ids(where("job_title", "not_contains", "e")) == {blank.pk}
    assert ids(where("job_title", "none_of", ["cto", "ceo"])) == {blank.pk}
    assert ids(where("job_title", "is_empty")) == {blank.pk}
    assert ids(where("job_title", "is_not_empty")) == {ceo.pk}


def test_it_matches_any_of_and_none_of_text(db):
    de = contact(country="DE")
    fr = contact(country="fr")
    us = contact(country="US")
    assert ids(where("country", "any_of", ["de", "FR"])) == {de.pk, fr.pk}
    assert ids(where("country", "none_of", ["de", "FR"])) == {us.pk}


# --- choice, boolean, datetime -------------------------------------------------------


def test_it_matches_choice_fields_by_value_or_label(db):
    replied = contact(last_contacted_mode="replied")
    contact(last_contacted_mode="no_reply")
    assert ids(where("last_contacted_mode", "equals", "Replied")) == {replied.pk}
    assert ids(where("last_contacted_mode", "any_of", ["replied", "Chat"])) == {replied.pk}
    assert validate_conditions("contact", where("email_status", "equals", "BOUNCED"))[0].value == "bounced"


def test_it_matches_boolean_fields(db):
    out = contact(email_opt_out=True)
    inn = contact(email_opt_out=False)
    assert ids(where("email_opt_out", "is_true")) == {out.pk}
    assert ids(where("email_opt_out", "is_false")) == {inn.pk}


def test_it_compares_datetimes_by_utc_calendar_date(db):
    late = contact(created_at=dt.datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=dt.UTC))
    # 01:30 in Berlin on 2 March is still 1 March in UTC.
    berlin = contact(created_at=dt.datetime(2026, 3, 2, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    early = contact(created_at=dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.UTC))
    assert ids(where("created_at", "on", "2026-03-01")) == {late.pk, berlin.pk}
    assert ids(where("created_at", "on", "2026-03-02")) == {early.pk}
    assert ids(where("created_at", "before", "2026-03-02")) == {late.pk, berlin.pk}
    assert ids(where("created_at", "after", "2026-03-01")) == {early.pk}
    assert ids(where("created_at", "between", ["2026-02-01", "2026-03-01"])) == {late.pk, berlin.pk}
    assert ids(where("created_at", "between", ["2026-03-01", "2026-03-02"])) == {late.pk, berlin.pk, early.pk}


def test_it_counts_in_last_days_from_the_clock(db):
    clock.set_now(NOW)
    edge = contact(last_contacted_at=NOW - dt.timedelta(days=7))
    contact(last_contacted_at=NOW - dt.timedelta(days=7, seconds=1))
    never = contact(last_contacted_at=None)
    assert ids(where("last_contacted_at", "in_last_days", 7)) == {edge.pk}
    assert ids(where("last_contacted_at", "is_empty")) == {never.pk}
    assert never.pk not in ids(where("last_contacted_at", "before", "2030-01-01"))


# --- custom fields -------------------------------------------------------------------


def test_it_compares_custom_numbers_and_treats_missing_or_stray_values_as_empty(custom_fields):
    ten = contact(custom={"budget": 10})
    half = contact(custom={"budget": 2.5})
    missing = contact(custom={})
    null = contact(custom={"budget": None})
    stray = contact(custom={"budget": "12"})  # a string in a number field must not break the cast
    empties = {missing.pk, null.pk, stray.pk}
    assert ids(where("custom.budget", "gt", 3)) == {ten.pk}
    assert ids(where("custom.budget", "lt", "3")) == {half.pk}
    assert ids(where("custom.budget", "between", [2.5, 10])) == {ten.pk, half.pk}
    assert ids(where("custom.budget", "equals", 10.0)) == {ten.pk}
    assert ids(where("custom.budget", "any_of", [2.5, 7])) == {half.pk}
    assert ids(where("custom.budget", "not_equals", 10)) == {half.pk} | empties
    assert ids(where("custom.budget", "none_of", [10, 2.5])) == empties
    assert ids(where("custom.budget", "is_empty")) == empties
    assert ids(where("custom.budget", "is_not_empty")) == {ten.pk, half.pk}


def test_it_compares_custom_dates(custom_fields):
    clock.set_now(NOW)
    march = contact(custom={"renewal": "2026-03-05"})
    jan = contact(custom={"renewal": "2026-01-31"})
    junk = contact(custom={"renewal": "soon"})
    missing = contact(custom={})
    assert ids(where("custom.renewal", "on", "2026-03-05")) == {march.pk}
    assert ids(where("custom.renewal", "before", "2026-03-05")) == {jan.pk}
    assert ids(where("custom.renewal", "after", "2026-01-31")) == {march.pk}
    assert ids(where("custom.renewal", "between", ["2026-01-31", "2026-03-05"])) == {march.pk, jan.pk}
    assert ids(where("custom.renewal", "in_last_days", 5)) == {march.pk}
    assert ids(where("custom.renewal", "is_empty")) == {junk.pk, missing.pk}


def test_it_reads_a_missing_custom_boolean_as_false(custom_fields):
    yes = contact(custom={"vip": True})
    no = contact(custom={"vip": False})
    unset = contact(custom={})
    assert ids(where("custom.vip", "is_true")) == {yes.pk}
    assert ids(where("custom.vip", "is_false")) == {no.pk, unset.pk}


def test_it_matches_custom_choices_and_text(custom_fields):
    gold = contact(custom={"tier": "Gold", "note": "Met at the Expo"})
    silver = contact(custom={"tier": "Silver"})
    assert validate_conditions("contact", where("custom.tier", "equals", "gold"))[0].value == "Gold"
    assert ids(where("custom.tier", "equals", "gold")) == {gold.pk}
    assert ids(where("custom.tier", "none_of", ["Gold"])) == {silver.pk}
    assert ids(where("custom.note", "contains", "expo")) == {gold.pk}
    assert ids(where("custom.note", "is_empty")) == {silver.pk}


def test_it_filters_contacts_by_account_fields(custom_fields):
    acme = Account.objects.create(name="Acme", industry="Retail", custom={"size": 500, "region": "EMEA"})
    tiny = Account.objects.create(name="Tiny", custom={"size": 5})
    at_acme = contact(account=acme)
    at_tiny = contact(account=tiny)
    alone = contact(account=None)
    assert ids(where("account.name", "equals", "acme")) == {at_acme.pk}
    assert ids(where("account.name", "not_equals", "acme")) == {at_tiny.pk, alone.pk}
    assert ids(where("account.industry", "is_empty")) == {at_tiny.pk, alone.pk}
    assert ids(where("account.custom.size", "gt", 100)) == {at_acme.pk}
    assert ids(where("account.custom.size", "not_equals", 500)) == {at_tiny.pk, alone.pk}
    assert ids(where("account.custom.region", "starts_with", "em")) == {at_acme.pk}


# --- owner, tags, sequence membership ------------------------------------------------


def test_it_matches_the_owner_by_email_or_me(rep, other_rep):
    mine = contact(owner=rep)
    theirs = contact(owner=other_rep)
    nobody = contact(owner=None)
    assert ids(where("owner", "equals", "me"), user=rep) == {mine.pk}
    assert ids(where("owner", "equals", "BOB@example.com")) == {theirs.pk}
    assert ids(where("owner", "any_of", ["me", "bob@example.com"]), user=rep) == {mine.pk, theirs.pk}
    assert ids(where("owner", "not_equals", "me"), user=rep) == {theirs.pk, nobody.pk}
    assert ids(where("owner", "none_of", ["me"]), user=other_rep) == {mine.pk, nobody.pk}
    assert ids(where("owner", "is_empty")) == {nobody.pk}
    # By email too, an unowned contact is "not owned by bob"; an unknown email owns nothing.
    assert ids(where("owner", "not_equals", "bob@example.com")) == {mine.pk, nobody.pk}
    assert ids(where("owner", "none_of", ["bob@example.com", "ghost@example.com"])) == {mine.pk, nobody.pk}
    assert ids(where("owner", "equals", "ghost@example.com")) == set()


def test_it_matches_tags(db):
    vip = contact(tags=["VIP", "Expo"])
    expo = contact(tags=["expo"])
    bare = contact()
    assert ids(where("tags", "contains", "vip")) == {vip.pk}
    assert ids(where("tags", "contains", "EXPO")) == {vip.pk, expo.pk}
    assert ids(where("tags", "not_contains", "vip")) == {expo.pk, bare.pk}
    assert ids(where("tags", "any_of", ["vip", "nothing"])) == {vip.pk}
    assert ids(where("tags", "none_of", ["vip", "nothing"])) == {expo.pk, bare.pk}
    assert ids(where("tags", "is_empty")) == {bare.pk}
    assert ids(where("tags", "is_not_empty")) == {vip.pk, expo.pk}


def test_it_matches_sequence_membership_by_name_id_and_status(rep, other_rep):
    onboarding = Sequence.objects.create(owner=rep, name="Onboarding")
    active = contact()
    done = contact()
    outside = contact()
    Enrollment.objects.create(sequence=onboarding, contact=active, status="active")
    Enrollment.objects.create(sequence=onboarding, contact=done, status="completed")
    by_name = where("sequence", "in_sequence", {"sequence": "onboarding"})
    assert ids(by_name, user=rep) == {active.pk, done.pk}
    by_status = where("sequence", "in_sequence", {"sequence": onboarding.pk, "status": "completed"})
    assert ids(by_status, user=rep) == {done.pk}
    keep_out = where("sequence", "not_in_sequence", {"sequence": onboarding.pk, "status": "active"})
    assert ids(keep_out, user=rep) == {done.pk, outside.pk}
    with pytest.raises(ConditionError, match=r"clause 1 \(field 'sequence'\): you have no sequence"):
        ids(by_name, user=other_rep)


def test_it_filters_accounts(rep, custom_fields):
    acme = Account.objects.create(name="Acme", domain="acme.test", owner=rep, custom={"size": 500})
    Account.objects.create(name="Globex", domain="globex.test", custom={"size": 50})
    clauses = [
        {"field": "domain", "op": "contains", "value": "ACME"},
        {"field": "owner", "op": "equals", "value": "me"},
        {"field": "custom.size", "op": "gt", "value": 100},
    ]
    assert ids(clauses, "account", user=rep) == {acme.pk}
    assert ids([], "account") == set(Account.objects.values_list("pk", flat=True))


def test_it_requires_every_clause_to_hold(db):
    both = contact(first_name="Dana", country="DE")
    contact(first_name="Dana", country="FR")
    contact(first_name="Eve", country="DE")
    clauses = [
        {"field": "first_name", "op": "equals", "value": "dana"},
        {"field": "country", "op": "equals", "value": "de"},
    ]
    assert ids(clauses) == {both.pk}
    assert ids([]) == set(Contact.objects.values_list("pk", flat=True))


def test_it_binds_values_as_parameters_and_works_as_a_subquery(rep):
    obrien = contact(last_name="O'Brien'); DROP TABLE crm_contact; --")
    contact(last_name="Smith")
    clauses = where("last_name", "starts_with", "o'brien'); drop")
    sql, params = filter_records("contact", clauses).values("pk").query.sql_with_params()
    assert "o'brien" not in sql.lower()
    assert "o'brien'); drop" in params
    outer = Contact.objects.filter(pk__in=filter_records("contact", clauses).values("pk"))
    assert list(outer.values_list("pk", flat=True)) == [obrien.pk]


# --- refusals ------------------------------------------------------------------------

REFUSALS = [
    (where("nickname", "equals", "x"), 0, r"^clause 1 \(field 'nickname'\): unknown field for contacts$"),
    (
        where("custom.budget", "contains", "1"),
        0,
        r"^clause 1 \(field 'custom\.budget'\): operator 'contains' does not fit a number field$",
    ),
    (where("custom.budget", "gt", "abc"), 0, r"needs a number, got 'abc'"),
    (where("custom.budget", "gt", True), 0, r"needs a number"),
    (where("custom.budget", "between", [5]), 0, r"'between' needs \[low, high\]"),
    (where("custom.budget", "between", [9, 1]), 0, r"between needs low <= high"),
    (where("first_name", "any_of", []), 0, r"needs a non-empty list"),
    (where("first_name", "equals", ["a", "b"]), 0, r"takes one value, not a list"),
    (where("first_name", "equals", ""), 0, r"needs a non-empty value"),
    (where("first_name", "contains", "a\x00b"), 0, r"cannot contain a NUL character"),
    (where("created_at", "in_last_days", 0), 0, r"in_last_days needs a whole number of days"),
    (where("created_at", "in_last_days", "soon"), 0, r"in_last_days needs a whole number of days"),
    (where("created_at", "on", "next friday"), 0, r"needs a date \(YYYY-MM-DD\)"),
    (where("custom.tier", "equals", "Platinum"), 0, r"'Platinum' is not one of: Gold, Silver, Bronze"),
    (where("email_status", "equals", "lost"), 0, r"is not one of: ok, bounced"),
    (where("first_name", "gt", "a"), 0, r"operator 'gt' does not fit a text field"),
    (where("first_name", "explodes", "a"), 0, r"unknown operator 'explodes'"),
    (where("email_opt_out", "is_true", "yes"), 0, r"operator 'is_true' takes no value"),
    (where("owner", "equals", "me"), 0, r"'me' needs a signed-in user"),
    (where("owner", "equals", "not-an-email"), 0, r"is not a valid email address"),
    (where("sequence", "in_sequence", {"sequence": "Onboarding"}), 0, r"need the user whose sequences"),
    (where("sequence", "in_sequence", "Onboarding"), 0, r'needs \{"sequence"'),
    ([{"op": "equals", "value": "x"}], 0, r"^clause 1: needs a field$"),
    (["first_name"], 0, r"^clause 1: must be an object"),
    (
        [
            {"field": "first_name", "op": "equals", "value": "a"},
            {"field": "tags", "op": "equals", "value": "a"},
        ],
        1,
        r"^clause 2 \(field 'tags'\): operator 'equals' does not fit a tags field$",
    ),
]


@pytest.mark.parametrize(("clauses", "index", "message"), REFUSALS)
def test_it_refuses_bad_clauses_naming_the_clause(custom_fields, clauses, index, message):
    with pytest.raises(ConditionError, match=message) as caught:
        compile_conditions("contact", clauses)
    assert caught.value.index == index


def test_it_refuses_a_ninth_clause(db):
    clauses = where("first_name", "is_not_empty") * (MAX_CLAUSES + 1)
    with pytest.raises(ConditionError, match=r"clause 9: at most 8 conditions") as caught:
        validate_conditions("contact", clauses)
    assert caught.value.index is None
    assert len(validate_conditions("contact", clauses[:MAX_CLAUSES])) == MAX_CLAUSES


def test_it_refuses_contact_only_fields_on_accounts(db):
    with pytest.raises(ConditionError, match=r"clause 1 \(field 'tags'\): unknown field for accounts"):
        filter_records("account", where("tags", "is_empty"))
    with pytest.raises(ConditionError, match="unknown record type"):
        field_catalog("deal")


# --- catalog and round trip ----------------------------------------------------------


def test_it_lists_built_in_custom_and_account_fields_in_the_catalog(custom_fields):
    contact_fields = {spec.name: spec for spec in field_catalog("contact")}
    assert contact_fields["email"].type == "text"
    assert "starts_with" in contact_fields["email"].operators
    assert contact_fields["custom.tier"].choices == ("Gold", "Silver", "Bronze")
    assert contact_fields["custom.budget"].operators == (
        "equals",
        "not_equals",
        "gt",
        "lt",
        "between",
        "any_of",
        "none_of",
        "is_empty",
        "is_not_empty",
    )
    assert contact_fields["account.custom.size"].label == "Account: Company size"
    assert contact_fields["last_contacted_mode"].choices[0] == "not_contacted"
    assert contact_fields["sequence"].operators == ("in_sequence", "not_in_sequence")
    account_fields = {spec.name for spec in field_catalog("account")}
    assert {"name", "domain", "owner", "custom.size", "custom.region"} <= account_fields
    assert "custom.budget" not in account_fields and "tags" not in account_fields


def test_it_reads_back_its_own_validated_conditions(rep, custom_fields):
    Sequence.objects.create(owner=rep, name="Onboarding")
    raw = [
        {"field": "created_at", "op": "between", "value": ["2026-01-01", "2026-02-01"]},
        {"field": "custom.budget", "op": "any_of", "value": ["10", 2.5, 10]},
        {"field": "owner", "op": "equals", "value": "me"},
        {"field": "sequence", "op": "in_sequence", "value": {"sequence": "Onboarding", "status": "active"}},
        {"field": "tags", "op": "is_empty"},
    ]
    clauses = validate_conditions("contact", raw, user=rep)
    assert clauses[0] == Clause("created_at", "between", (dt.date(2026, 1, 1), dt.date(2026, 2, 1)))
    assert clauses[1].value == (10, 2.5)
    stored = conditions_to_json(clauses)
    assert stored[3]["value"]["sequence"] == Sequence.objects.get().pk
    assert validate_conditions("contact", stored, user=rep) == clauses
    assert validate_conditions("contact", clauses, user=rep) == clauses
