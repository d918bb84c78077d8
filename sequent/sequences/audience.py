"""Who a sequence enrolls, as SQL: the audience query and the INSERT ... SELECT that enrolls it.

Audience = contacts added by hand, plus, when the sequence has views or conditions,
the records that are in any of its saved views AND match all its conditions. With
record type account, matching accounts bring in every contact whose primary account
they are. Nothing here loops over contacts in Python.
"""

from __future__ import annotations

import datetime as dt
import operator
from functools import reduce

from django.db import connection
from django.db.models import Exists, F, Min, OuterRef, Q, QuerySet

from sequent.crm.conditions import compile_conditions
from sequent.crm.models import RECORD_ACCOUNT, Account, Contact, EmailStatus
from sequent.sequences.models import IN_FLIGHT, Enrollment, EnrollmentStatus, Sequence, SequenceContact


def _all_if_empty(q: Q) -> Q:
    # An empty Q means "no restriction"; spelled out so OR-ing it keeps its meaning
    # (Django drops an empty Q from an OR instead of matching everything).
    return q if q else Q(pk__isnull=False)


def records_matching(sequence: Sequence) -> Q | None:
    """The Q on the sequence's record type selecting its automatic audience, or None
    when it has neither views nor conditions (then only hand-added contacts run)."""
    views = list(sequence.audience_views.all())
    conditions = sequence.audience_conditions or []
    if not views and not conditions:
        return None
    q = _all_if_empty(compile_conditions(sequence.record_type, conditions, user=sequence.owner))
    if views:
        view_qs = [
            _all_if_empty(compile_conditions(view.record_type, view.conditions, user=sequence.owner))
            for view in views
        ]
        q &= reduce(operator.or_, view_qs)
    return q


def contacts_of_records(record_type: str, q: Q) -> Q:
    """A Q on Contact for the contacts selected by *q* on *record_type* records."""
    if record_type == RECORD_ACCOUNT:
        return Q(account_id__in=Account.objects.filter(q).values("pk"))
    return q


def audience(sequence: Sequence) -> QuerySet[Contact]:
    """Every contact in the sequence's audience, enrolled or not."""
    q = Q(pk__in=SequenceContact.objects.filter(sequence=sequence).values("contact_id"))
    matching = records_matching(sequence)
    if matching is not None:
        q |= contacts_of_records(sequence.record_type, matching)
    return Contact.objects.filter(q)


def exit_condition_contacts(sequence: Sequence) -> QuerySet[Contact] | None:
    """Contacts that meet the sequence's property exit conditions (None: it has none)."""
    if not sequence.exit_conditions:
        return None
    q = compile_conditions(sequence.record_type, sequence.exit_conditions, user=sequence.owner)
    return Contact.objects.filter(contacts_of_records(sequence.record_type, _all_if_empty(q)))


def enrollable(sequence: Sequence) -> QuerySet[Contact]:
    """The audience contacts a run would enroll now.

    Left out: contacts already enrolled here (at most once per sequence), contacts who
    would leave at once by the exit criteria (opted out, bounced, exit conditions),
    with "exclusive" contacts in flight in another sequence, and with "prevent
    duplicates" contacts whose email is already enrolled here or that share an email
    with an earlier (lower id) contact of the same batch.
    """
    qs = audience(sequence).exclude(
        Exists(Enrollment.objects.filter(sequence=sequence, contact=OuterRef("pk")))
    )
    if sequence.exit_on_unsubscribe:
        qs = qs.filter(email_opt_out=False)
    if sequence.exit_on_bounce:
        qs = qs.exclude(email_status=EmailStatus.BOUNCED)
    leaving = exit_condition_contacts(sequence)
    if leaving is not None:
        qs = qs.exclude(pk__in=leaving.values("pk"))
    if sequence.exclusive:
        qs = qs.exclude(
            Exists(
                Enrollment.objects.filter(contact=OuterRef("pk"), status__in=IN_FLIGHT).exclude(
                    sequence=sequence
                )
            )
        )
    if sequence.prevent_duplicates:
        qs = qs.exclude(
            Exists(
                Enrollment.objects.filter(sequence=sequence, contact__email=OuterRef("email")).exclude(
                    contact__email=""
                )
            )
        )
        first_per_email = qs.exclude(email="").values("email").annotate(first=Min("pk")).values("first")
        qs = qs.filter(Q(email="") | Q(pk__in=first_per_email))
    return qs.order_by()


def _column(name: str) -> str:
    field = Enrollment._meta.get_field(name)
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{name} is not a concrete column of enrollments")
    return column


def enroll_audience(sequence: Sequence, local_date: dt.date, instant: dt.datetime, now: dt.datetime) -> int:
    """Enroll every enrollable contact with one INSERT ... SELECT; returns how many.

    New enrollments take part in this run at once, so they are inserted already marked
    due for it (run_count 1, last run *local_date*, due at *instant*): that spares a
    second write of every new row. The unique (sequence, contact) key is the last word:
    ON CONFLICT DO NOTHING makes a concurrent or repeated enrollment harmless.
    """
    select_sql, select_params = enrollable(sequence).values(enroll_contact=F("pk")).query.sql_with_params()
    table = connection.ops.quote_name(Enrollment._meta.db_table)
    names = [
        "sequence",
        "contact",
        "status",
        "enrolled_at",
        "enrolled_on",
        "run_count",
        "last_run_date",
        "next_due_at",
        "exit_reason",
        "claimed_by",
    ]
    columns = ", ".join(connection.ops.quote_name(_column(name)) for name in names)
    if connection.vendor == "postgresql":
        # ARRAY(...) runs the whole SELECT before the first row is inserted. Without
        # this fence a nested-loop plan (likely when the table was small at planning)
        # re-reads, for every candidate, the rows this statement already inserted.
        # SQLite materialises a SELECT that reads the table it inserts into by itself.
        source = f"unnest(ARRAY({select_sql})) AS src(enroll_contact)"
    else:
        source = f"({select_sql}) AS src"
    # Names come from the model, the SELECT from the ORM with bound parameters.
    # "WHERE true" keeps SQLite from reading ON CONFLICT as a join constraint.
    sql = (
        f"INSERT INTO {table} ({columns}) "  # noqa: S608
        f"SELECT %s, src.enroll_contact, %s, %s, %s, 1, %s, %s, '', '' FROM {source} WHERE true "
        "ON CONFLICT DO NOTHING"
    )
    params = [
        sequence.pk,
        EnrollmentStatus.ACTIVE.value,
        connection.ops.adapt_datetimefield_value(now),
        connection.ops.adapt_datefield_value(local_date),
        connection.ops.adapt_datefield_value(local_date),
        connection.ops.adapt_datetimefield_value(instant),
        *select_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return max(cursor.rowcount, 0)
