"""Hypothesis: the SQL the condition compiler builds selects exactly the rows that a
plain-Python reading of the same clauses selects, on generated contacts and accounts.

The Python side below is written from docs/CONDITIONS.md, not from the compiler: it
shares no code with it. It runs once per database of `make test` (SQLite, PostgreSQL).
"""

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequent.crm.conditions import filter_records
from sequent.crm.models import Account, Contact, CustomField, LastContactedMode, Tag
from sequent.lib import clock
from sequent.sequences.models import Enrollment, Sequence

NOW = dt.datetime(2026, 3, 10, 15, 30, tzinfo=dt.UTC)
TODAY = NOW.date()
ABSENT = object()  # a custom key that is not in the JSON at all
STATUSES = ["active", "paused", "completed", "exited"]
TAG_NAMES = ["VIP", "vip", "Lead", "Étape", "étape"]
TIERS = ["Gold", "Silver", "Bronze"]

# Stored text: blanks, case variants (ASCII and not), LIKE wildcards, spaces.
TEXTS = [
    "",
    "Ana",
    "ana",
    "ANA-x",
    "Émile",
    "émile",
    "ÉMILE",
    "50%_off",
    "b_c",
    "abc",
    " x y ",
    "dana@acme.test",
]
text_data = st.sampled_from(TEXTS) | st.text(alphabet="aAbB_%éÉ -@.", max_size=6)
# Searched text: never blank, no surrounding spaces (validation strips them).
NEEDLES = [
    "ana",
    "AN",
    "a",
    "é",
    "É",
    "émile",
    "ÉMILE",
    "%_",
    "_",
    "b_c",
    "mile",
    "50",
    "x y",
    "@ACME",
    "abc",
]
text_needle = st.sampled_from(NEEDLES) | st.text(alphabet="aAbB_%éÉ@.", min_size=1, max_size=3)
numbers = st.integers(-5, 5) | st.sampled_from([2.5, -0.5, 0.001, 1000000])
days = st.integers(-12, 3).map(lambda n: TODAY + dt.timedelta(days=n))
moments = st.builds(
    lambda day, at: dt.datetime.combine(day, at, tzinfo=dt.UTC),
    days,
    st.sampled_from([dt.time(0, 0), dt.time(12, 0), dt.time(15, 30), dt.time(23, 59, 59, 999999)]),
)
# A custom value: absent, JSON null, a fitting value, or a stray value of another type.
custom_number = st.sampled_from([ABSENT, None, "3", True]) | numbers
custom_day = st.sampled_from([ABSENT, None, "soon", 20260301]) | days.map(dt.date.isoformat)
custom_flag = st.sampled_from([ABSENT, None, True, False, "yes"])
custom_tier = st.sampled_from([ABSENT, None, "", "gold", *TIERS])
custom_text = st.just(ABSENT) | st.none() | text_data

CONTACT_FIELDS = {
    "first_name": "text",
    "email": "text",
    "job_title": "text",
    "last_activity_type": "text",
    "account.name": "text",
    "account.industry": "text",
    "custom.note": "text",
    "account.custom.region": "text",
    "custom.num": "number",
    "account.custom.size": "number",
    "custom.day": "date",
    "created_at": "datetime",
    "last_contacted_at": "datetime",
    "email_opt_out": "boolean",
    "custom.flag": "boolean",
    "last_contacted_mode": "choice",
    "custom.tier": "choice",
    "owner": "user",
    "tags": "tags",
    "sequence": "sequence",
}
ACCOUNT_FIELDS = {
    "name": "text",
    "industry": "text",
    "custom.region": "text",
    "custom.size": "number",
    "created_at": "datetime",
    "owner": "user",
}
OPERATORS = {
    "text": [
        "equals",
        "not_equals",
        "contains",
        "not_contains",
        "starts_with",
        "any_of",
        "none_of",
        "is_empty",
        "is_not_empty",
    ],
    "number": [
        "equals",
        "not_equals",
        "gt",
        "lt",
        "between",
        "any_of",
        "none_of",
        "is_empty",
        "is_not_empty",
    ],
    "date": ["on", "before", "after", "between", "in_last_days", "is_empty", "is_not_empty"],
    "datetime": ["on", "before", "after", "between", "in_last_days", "is_empty", "is_not_empty"],
    "boolean": ["is_true", "is_false"],
    "choice": ["equals", "not_equals", "any_of", "none_of", "is_empty", "is_not_empty"],
    "user": ["equals", "not_equals", "any_of", "none_of", "is_empty", "is_not_empty"],
    "tags": ["contains", "not_contains", "any_of", "none_of", "is_empty", "is_not_empty"],
    "sequence": ["in_sequence", "not_in_sequence"],
}


def one_value(field, kind, sequences):
    """A strategy for one valid clause value of *field*."""
    if kind == "boolean":
        return st.none()
    if kind == "text":
        return text_needle
    if kind == "number":
        return numbers
    if kind in ("date", "datetime"):
        return days.map(dt.date.isoformat)
    if kind == "choice":
        return st.sampled_from(TIERS if field == "custom.tier" else LastContactedMode.values)
    if kind == "user":
        return st.sampled_from(["me", "alice@example.com", "Bob@Example.com", "nobody@example.com"])
    if kind == "tags":
        return st.sampled_from(["vip", "VIP", "lead", "étape", "Étape", "none"])
    if kind == "sequence":
        return st.fixed_dictionaries(
            {"sequence": st.sampled_from(sequences), "status": st.sampled_from([None, *STATUSES])}
        )
    raise AssertionError(kind)


@st.composite
def clause(draw, fields, sequences):
    field = draw(st.sampled_from(sorted(fields)))
    kind = fields[field]
    op = draw(st.sampled_from(OPERATORS[kind]))
    single = one_value(field, kind, sequences)
    if op in ("is_empty", "is_not_empty", "is_true", "is_false"):
        value = None
    elif op in ("any_of", "none_of"):
        value = draw(st.lists(single, min_size=1, max_size=3))
    elif op == "between":
        value = sorted(draw(st.lists(single, min_size=2, max_size=2)))
    elif op == "in_last_days":
        value = draw(st.integers(1, 14))
    else:
        value = draw(single)
    return {"field": field, "op": op, "value": value}


account_data = st.fixed_dictionaries(
    {
        "name": text_data,
        "industry": text_data,
        "owner": st.sampled_from([None, "rep", "other"]),
        "created_at": moments,
        "custom": st.fixed_dictionaries({"size": custom_number, "region": custom_text}),
    }
)
contact_data = st.fixed_dictionaries(
    {
        "first_name": text_data,
        "email": text_data,
        "job_title": text_data,
        "last_activity_type": text_data,
        "email_opt_out": st.booleans(),
        "last_contacted_mode": st.sampled_from(LastContactedMode.values),
        "last_contacted_at": st.none() | moments,
        "created_at": moments,
        "owner": st.sampled_from([None, "rep", "other"]),
        "account": st.none() | st.integers(0, 2),
        "tags": st.sets(st.sampled_from(TAG_NAMES), max_size=3),
        "custom": st.fixed_dictionaries(
            {
                "num": custom_number,
                "day": custom_day,
                "flag": custom_flag,
                "tier": custom_tier,
                "note": custom_text,
            }
        ),
        "enrollments": st.dictionaries(st.integers(0, 2), st.sampled_from(STATUSES), max_size=3),
    }
)


# --- the plain-Python reading of docs/CONDITIONS.md ----------------------------------


def ascii_lower(text):
    return "".join(chr(ord(ch) + 32) if "A" <= ch <= "Z" else ch for ch in text)


def is_number(value):
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_iso_day(value):
    return isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-"


class World:
    """The generated rows as plain Python, plus the fixed users and sequences."""

    def __init__(self, rep, other_rep, sequences):
        self.users = {"rep": rep, "other": other_rep}
        self.sequences = sequences  # name -> Sequence
        self.accounts = []
        self.contacts = []

    def owner_email(self, row):
        return self.users[row["owner"]].email if row["owner"] else None

    def account_of(self, contact):
        index = contact["account"]
        return self.accounts[index] if index is not None and index < len(self.accounts) else None

    def read(self, row, field, is_contact):
        """The stored value of *field*, None when there is none."""
        if is_contact and field.startswith("account."):
            account = self.account_of(row)
            return self.read(account, field[len("account.") :], False) if account else None
        if field.startswith("custom."):
            value = row["custom"][field[len("custom.") :]]
            return None if value is ABSENT else value
        if field == "owner":
            return self.owner_email(row)
        return row[field]

    def holds(self, row, clause, is_contact):
        op, wanted = clause["op"], clause["value"]
        opposite = {
            "not_equals": "equals",
            "not_contains": "contains",
            "none_of": "any_of",
            "is_empty": "is_not_empty",
            "is_false": "is_true",
            "not_in_sequence": "in_sequence",
        }
        if op in opposite:
            return not self.holds(row, {**clause, "op": opposite[op]}, is_contact)
        field = clause["field"]
        kind = (CONTACT_FIELDS if is_contact else ACCOUNT_FIELDS)[field]
        if kind == "tags":
            have = {ascii_lower(t) for t in row["tags"]}
            wanted = [wanted] if op == "contains" else (wanted or [])
            return bool(have) if op == "is_not_empty" else bool(have & {ascii_lower(w) for w in wanted})
        if kind == "sequence":
            sequence = self.sequences[wanted["sequence"]]
            status = row["enrollments"].get(sequence.index)
            return status is not None and wanted["status"] in (None, status)
        value = self.read(row, field, is_contact)
        if kind == "boolean":
            return value is True
        if kind == "user":
            wanted = [wanted] if op == "equals" else (wanted or [])
            emails = {self.users["rep"].email if w == "me" else w.lower() for w in wanted}
            return value is not None and (op == "is_not_empty" or value in emails)
        if kind in ("text", "choice"):
            if not isinstance(value, str) or value == "":
                return False
            fold = ascii_lower if kind == "text" else (lambda text: text)
            if op == "is_not_empty":
                return True
            if op == "any_of":
                return fold(value) in {fold(w) for w in wanted}
            if op == "equals":
                return fold(value) == fold(wanted)
            if op == "contains":
                return fold(wanted) in fold(value)
            if op == "starts_with":
                return fold(value).startswith(fold(wanted))
        if kind == "number":
            if not is_number(value):
                return False
            return {
                "is_not_empty": lambda: True,
                "equals": lambda: value == wanted,
                "gt": lambda: value > wanted,
                "lt": lambda: value < wanted,
                "between": lambda: wanted[0] <= value <= wanted[1],
                "any_of": lambda: value in wanted,
            }[op]()
        if kind in ("date", "datetime"):
            if kind == "date" and not is_iso_day(value):
                return False
            if value is None:
                return False
            if op == "is_not_empty":
                return True
            if op == "in_last_days":
                since = NOW - dt.timedelta(days=wanted)
                return value >= since.date().isoformat() if kind == "date" else value >= since
            day = dt.date.fromisoformat(value) if kind == "date" else value.astimezone(dt.UTC).date()
            bounds = [dt.date.fromisoformat(w) for w in (wanted if op == "between" else [wanted])]
            return {
                "on": lambda: day == bounds[0],
                "before": lambda: day < bounds[0],
                "after": lambda: day > bounds[0],
                "between": lambda: bounds[0] <= day <= bounds[-1],
            }[op]()
        raise AssertionError((kind, op))


# --- writing the generated rows ------------------------------------------------------


def stored_custom(values):
    return {key: value for key, value in values.items() if value is not ABSENT}


def write(world):
    accounts = Account.objects.bulk_create(
        Account(
            name=a["name"],
            industry=a["industry"],
            owner=world.users[a["owner"]] if a["owner"] else None,
            created_at=a["created_at"],
            custom=stored_custom(a["custom"]),
        )
        for a in world.accounts
    )
    contacts = Contact.objects.bulk_create(
        Contact(
            first_name=c["first_name"],
            email=c["email"],
            job_title=c["job_title"],
            last_activity_type=c["last_activity_type"],
            email_opt_out=c["email_opt_out"],
            last_contacted_mode=c["last_contacted_mode"],
            last_contacted_at=c["last_contacted_at"],
            created_at=c["created_at"],
            owner=world.users[c["owner"]] if c["owner"] else None,
            account=accounts[c["account"]] if world.account_of(c) else None,
            custom=stored_custom(c["custom"]),
        )
        for c in world.contacts
    )
    tags = {tag.name: tag for tag in Tag.objects.all()}
    Contact.tags.through.objects.bulk_create(
        Contact.tags.through(contact=contact, tag=tags[name])
        for contact, data in zip(contacts, world.contacts, strict=True)
        for name in data["tags"]
    )
    by_index = {s.index: s for s in world.sequences.values()}
    Enrollment.objects.bulk_create(
        Enrollment(contact=contact, sequence=by_index[index], status=status)
        for contact, data in zip(contacts, world.contacts, strict=True)
        for index, status in data["enrollments"].items()
    )
    return accounts, contacts


@pytest.fixture
def world(rep, other_rep):
    for record_type, key, field_type, choices in [
        ("contact", "num", "number", []),
        ("contact", "day", "date", []),
        ("contact", "flag", "boolean", []),
        ("contact", "tier", "choice", TIERS),
        ("contact", "note", "text", []),
        ("account", "size", "number", []),
        ("account", "region", "text", []),
    ]:
        CustomField.objects.create(
            record_type=record_type, key=key, label=key.title(), field_type=field_type, choices=choices
        )
    Tag.objects.bulk_create(Tag(name=name) for name in TAG_NAMES)
    sequences = {}
    # Indices 0 and 1 are the rep's; 2 is another user's, so enrollments in it never count.
    for index, (owner, name) in enumerate([(rep, "Onboarding"), (rep, "Renewals"), (other_rep, "Theirs")]):
        sequence = Sequence.objects.create(owner=owner, name=name)
        sequence.index = index
        sequences[name] = sequence
    return World(rep, other_rep, sequences)


def test_it_selects_the_same_rows_as_a_plain_python_reading(world):
    clock.set_now(NOW)
    mine = ["Onboarding", "Renewals"]

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        accounts=st.lists(account_data, max_size=3),
        contacts=st.lists(contact_data, max_size=6),
        for_contacts=st.lists(clause(CONTACT_FIELDS, mine), min_size=1, max_size=8),
        for_accounts=st.lists(clause(ACCOUNT_FIELDS, mine), min_size=1, max_size=4),
        by_id=st.booleans(),
    )
    def check(accounts, contacts, for_contacts, for_accounts, by_id):
        world.accounts, world.contacts = accounts, contacts
        if by_id:  # a clause names a sequence by name or by id; both must mean the same
            for c in for_contacts:
                if c["field"] == "sequence":
                    sequence = world.sequences[c["value"]["sequence"]]
                    c["value"] = {**c["value"], "sequence": sequence.pk}
                    world.sequences[sequence.pk] = sequence
        with transaction.atomic():
            saved_accounts, saved_contacts = write(world)
            # Each clause alone (many checks per written data set), then the first few together.
            for record_type, clauses, saved, rows in [
                ("contact", for_contacts, saved_contacts, contacts),
                ("account", for_accounts, saved_accounts, accounts),
            ]:
                is_contact = record_type == "contact"
                for clause_list in [*([c] for c in clauses), clauses[:4]]:
                    found = filter_records(record_type, clause_list, user=world.users["rep"])
                    expected = {
                        record.pk
                        for record, row in zip(saved, rows, strict=True)
                        if all(world.holds(row, c, is_contact) for c in clause_list)
                    }
                    assert set(found.values_list("pk", flat=True)) == expected, (clause_list, rows)
            transaction.set_rollback(True)

    check()
