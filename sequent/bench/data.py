"""The generated workspace: reps with mailboxes, accounts, contacts, and one active
sequence per rep whose audience is that rep's contacts.

Names come from Faker (seeded, so every run generates the same data) through a small
pool table; contacts and accounts are written with one ``INSERT ... SELECT`` over a
number series joined to the pool, so a million contacts take seconds, not minutes.
Generation is not measured.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.db import connection, models, transaction
from faker import Faker

from sequent.bench import enrolling
from sequent.bench.sizes import SIZES
from sequent.crm.models import Account, Contact
from sequent.lib import clock
from sequent.mail.actions import MAX_PER_MINUTE, do_create_mailbox
from sequent.sequences import actions
from sequent.users.actions import do_create_user
from sequent.users.models import User

SEED = 8
POOL = 2000  # distinct generated people; contact n takes pool row n % POOL (POOL is even)
POOL_TABLE = "sequent_bench_pool"
COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU", "NL", "SE")
JOB_TITLES = (
    "Sales Manager",
    "Head of Sales",
    "Account Executive",
    "VP Marketing",
    "Operations Manager",
    "CTO",
)
INDUSTRIES = ("Software", "Retail", "Manufacturing", "Finance", "Healthcare", "Logistics")

EMAIL_BODY = """<html><body>
<p>Hi {{ contact.first_name | default: "there" }},</p>
<p>Teams like {{ account.name | default: "yours" }} use us to follow up with every lead.
Would a <a href="https://www.example.com/demo">15-minute demo</a> be useful? Our
<a href="https://www.example.com/pricing">pricing</a> is simple.</p>
<p>Best,<br>{{ sender.first_name }}</p>
</body></html>"""
FOLLOW_UP_BODY = """<p>Hi {{ contact.first_name | default: "there" }}, just checking this reached you.</p>
<p>Here is a <a href="https://www.example.com/case-study">short case study</a>.</p>"""


def setup(size: str, smtp_port: int, activate: str, day1: str, **_: Any) -> dict[str, Any]:
    """Migrate the workspace database, generate the data of *size*, then measure the
    enroll phase (the first run of every sequence, at *day1*)."""
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    # Bench reps never log in: a fast hasher keeps user creation out of the way.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    plan = SIZES[size]
    fake = Faker("en_US")
    Faker.seed(SEED)
    with clock.frozen(dt.datetime.fromisoformat(activate)):
        reps = [_rep(fake, n, smtp_port) for n in range(plan.users)]
        importer = do_create_user("importer@bench.example", "Sales Rep", "bench-password-1")[0]
        _fill_pool(fake, [user.pk for user, _ in reps])
        with transaction.atomic():
            accounts = max(1, plan.contacts // 10)
            first_account = _insert_accounts(accounts)
            _insert_contacts(plan.contacts, first_account, accounts)
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {POOL_TABLE}")
        for user, mailbox in reps:
            _sequence(user, mailbox.pk)
    generated = {
        "seconds": round(time.perf_counter() - started, 2),
        "contacts": Contact.objects.count(),
        "accounts": Account.objects.count(),
        "users": User.objects.count(),
        "importer": importer.email,
    }
    return {"generated": generated, "enroll": enrolling.measure(day1)}


def _rep(fake: Faker, n: int, smtp_port: int) -> tuple[Any, Any]:
    first, last = fake.first_name(), fake.last_name()
    user, _ = do_create_user(f"rep{n}@bench.example", "Sales Rep", "bench-password-1", first, last)
    user.daily_email_limit = 10**6
    user.save(update_fields=["daily_email_limit"])
    mailbox = do_create_mailbox(
        user,
        email_address=f"rep{n}@bench.example",
        display_name=f"{first} {last}",
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_security="none",
        per_minute_limit=MAX_PER_MINUTE,
    )
    return user, mailbox


def _fill_pool(fake: Faker, owner_ids: list[int]) -> None:
    rows = []
    for i in range(POOL):
        first, last = fake.first_name(), fake.last_name()
        rows.append(
            (
                i,
                first,
                last,
                JOB_TITLES[i % len(JOB_TITLES)],
                COUNTRIES[i % len(COUNTRIES)],
                fake.company()[:200],
                INDUSTRIES[i % len(INDUSTRIES)],
                # Every other person has a mobile; the others skip SMS steps.
                f"+1415555{i % 10000:04d}" if i % 2 == 0 else "",
                owner_ids[i % len(owner_ids)],
            )
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {POOL_TABLE} (i integer PRIMARY KEY, first_name varchar(150), "
            "last_name varchar(150), job_title varchar(255), country varchar(2), company varchar(255), "
            "industry varchar(255), mobile varchar(20), owner_id bigint)"
        )
        cursor.executemany(f"INSERT INTO {POOL_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)  # noqa: S608


def _series() -> str:
    if connection.vendor == "postgresql":
        return "generate_series(1, %s) AS s(n)"
    return (
        "(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < %s) SELECT n FROM s) AS s"
    )


def _insert(model: type[models.Model], count: int, expressions: dict[str, str]) -> None:
    """INSERT ... SELECT *count* rows of *model*: *expressions* for the named columns (over
    the series ``n`` and the pool row ``p``), the model's defaults for the others."""
    template = model()
    columns, values, defaults = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.column is None:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.column in expressions:
            values.append(expressions[field.column])
        else:
            values.append("%s")
            defaults.append(field.get_db_prep_save(getattr(template, field.attname), connection))
    table = connection.ops.quote_name(model._meta.db_table)
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} "  # noqa: S608
        f"FROM {_series()} JOIN {POOL_TABLE} p ON p.i = s.n %% {POOL} ORDER BY s.n"
    )
    # The defaults are bound in the SELECT list, then the series' length.
    with connection.cursor() as cursor:
        cursor.execute(sql, [*defaults, count])


def _insert_accounts(count: int) -> int:
    _insert(
        Account,
        count,
        {
            "name": "p.company || ' ' || s.n",
            "domain": "'acct' || s.n || '.example'",
            "industry": "p.industry",
            "owner_id": "p.owner_id",
        },
    )
    first, last = Account.objects.aggregate(a=models.Min("pk"), b=models.Max("pk")).values()
    if last - first + 1 != count:
        raise RuntimeError("account ids are not contiguous; use a fresh workspace")
    return int(first)


def _insert_contacts(count: int, first_account: int, accounts: int) -> None:
    _insert(
        Contact,
        count,
        {
            "first_name": "p.first_name",
            "last_name": "p.last_name",
            "email": "lower(p.first_name) || '.' || lower(p.last_name) || '.' || s.n || '@acct' "
            f"|| (s.n %% {accounts}) || '.example'",
            "mobile": "p.mobile",
            "job_title": "p.job_title",
            "country": "p.country",
            "owner_id": "p.owner_id",
            "account_id": f"{first_account} + (s.n %% {accounts})",
            # One contact in fifty opted out of email: its email steps are skipped.
            "email_opt_out": "(s.n %% 50 = 0)",
        },
    )


def _sequence(user: Any, mailbox_id: int) -> None:
    """The rep's sequence: two days of mixed steps, some with conditions that fail."""
    sequence = actions.do_create_sequence(
        user,
        f"Outreach of {user.email}",
        time_zone="UTC",
        send_time="00:00",
        exclude_weekends=False,
        mailbox=mailbox_id,
        audience_conditions=[
            {"field": "owner", "op": "equals", "value": user.email},
            {"field": "email", "op": "is_not_empty"},
        ],
    )
    add = actions.do_add_step
    add(sequence, "email", day=1, subject="Quick question, {{ contact.first_name }}", body=EMAIL_BODY)
    add(
        sequence,
        "follow_up",
        day=1,
        conditions=[{"field": "job_title", "op": "contains", "value": "Manager"}],
    )
    add(sequence, "sms", day=1, sms_body="Hi {{ contact.first_name }}, did my email reach you?")
    add(sequence, "call_reminder", day=1, conditions=[{"field": "country", "op": "equals", "value": "NZ"}])
    add(sequence, "email", day=2, thread="reply", body=FOLLOW_UP_BODY)
    add(
        sequence,
        "email_reminder",
        day=2,
        subject="Following up",
        body=FOLLOW_UP_BODY,
        conditions=[{"field": "job_title", "op": "contains", "value": "Manager"}],
    )
    add(sequence, "sms", day=2, sms_body="Hi {{ contact.first_name }}, one more try.")
    add(sequence, "call_reminder", day=2, conditions=[{"field": "country", "op": "equals", "value": "NZ"}])
    actions.do_activate(sequence)
