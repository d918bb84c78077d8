"""The demo workspace that `make run` seeds: two users, a few accounts and contacts,
custom fields, custom activity types and a saved view.

Seeding is idempotent: every object is looked up by its natural key (email, field
key, type name, view name) and only created when missing, and the generated
accounts and contacts come with the demo user, so a second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import unicodedata
from dataclasses import dataclass, field

from django.db import transaction
from faker import Faker

from sequent.crm.actions import do_record_activity
from sequent.crm.models import (
    RECORD_CONTACT,
    Account,
    ActivityKind,
    ActivityType,
    Contact,
    CustomField,
    CustomFieldType,
    SavedView,
    Tag,
)
from sequent.lib import clock
from sequent.mail.actions import do_seed_demo_mail
from sequent.users.actions import do_create_user
from sequent.users.models import ROLE_ADMINISTRATOR, ROLE_SALES_REP, User

DEMO_EMAIL = "demo@sequent.local"
ADMIN_EMAIL = "admin@sequent.local"
DEFAULT_DEMO_PASSWORD = "demo-sequent"
# A fixed seed gives every fresh workspace the same people, so docs and demos can name them.
FAKER_SEED = 2024
ACCOUNT_COUNT = 5
CONTACTS_PER_ACCOUNT = 5

SEGMENTS = ["SaaS", "Fintech", "Healthcare", "Retail", "Manufacturing"]
ACTIVITY_TYPES = ["Lunch", "Coffee", "InMail"]
TAGS = ["Webinar", "Trade show", "Referral"]
JOB_TITLES = [
    "VP of Sales",
    "Head of Marketing",
    "Chief Technology Officer",
    "Operations Manager",
    "Procurement Lead",
    "Director of Engineering",
    "Chief Financial Officer",
    "Sales Operations Analyst",
    "Customer Success Manager",
    "IT Manager",
]
# (area code, IANA time zone): 555-01xx numbers are reserved for fiction yet valid E.164.
CITIES = [
    ("212", "America/New_York"),
    ("312", "America/Chicago"),
    ("303", "America/Denver"),
    ("415", "America/Los_Angeles"),
    ("617", "America/New_York"),
]
SAVED_VIEW_NAME = "SaaS prospects not yet contacted"
SAVED_VIEW_CONDITIONS = [
    {"field": "custom.industry_segment", "op": "equals", "value": "SaaS"},
    {"field": "last_contacted_mode", "op": "equals", "value": "not_contacted"},
]
# (contact index, activity kind, custom type name, days ago): a little history so
# the last-contacted columns are not all "Not yet contacted".
HISTORY = [
    (0, ActivityKind.CALL_OUTGOING, None, 6),
    (1, ActivityKind.CUSTOM, "Lunch", 5),
    (2, ActivityKind.CUSTOM, "Coffee", 4),
    (3, ActivityKind.CUSTOM, "InMail", 3),
    (5, ActivityKind.CHAT, None, 2),
    (6, ActivityKind.MEETING, None, 2),
    (7, ActivityKind.CALL_INCOMING, None, 1),
]


def demo_password() -> str:
    """The demo users' password: ``SEQUENT_DEMO_PASSWORD`` or the documented default."""
    return os.environ.get("SEQUENT_DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD


@dataclass
class SeedReport:
    """What a seeding run created; an empty list means the workspace was already seeded."""

    created: list[str] = field(default_factory=list)

    @property
    def already_seeded(self) -> bool:
        return not self.created


def do_seed_demo(password: str | None = None) -> SeedReport:
    """Create whatever part of the demo workspace is missing, in one transaction."""
    password = password or demo_password()
    report = SeedReport()
    with transaction.atomic():
        demo, demo_created = _ensure_user(DEMO_EMAIL, ROLE_SALES_REP, password, "Dana", "Demo", report)
        _ensure_user(ADMIN_EMAIL, ROLE_ADMINISTRATOR, password, "Avery", "Admin", report)
        _ensure_custom_fields(report)
        types = _ensure_activity_types(report)
        if demo_created:
            # Records come with the demo user: once it exists they are never re-added,
            # even after a rep edits or deletes some of them.
            contacts = _create_records(demo, report)
            _record_history(demo, contacts, types)
        _ensure_saved_view(demo, report)
        report.created.extend(do_seed_demo_mail(demo))
    return report


def _ensure_user(
    email: str, role: str, password: str, first_name: str, last_name: str, report: SeedReport
) -> tuple[User, bool]:
    existing = User.objects.filter(email=email).first()
    if existing is not None:
        return existing, False
    user, _ = do_create_user(email, role, password, first_name, last_name)
    report.created.append(f"user {email} ({role})")
    return user, True


def _ensure_custom_fields(report: SeedReport) -> None:
    wanted = [
        CustomField(
            record_type=RECORD_CONTACT, key="budget", label="Budget", field_type=CustomFieldType.NUMBER
        ),
        CustomField(
            record_type=RECORD_CONTACT,
            key="industry_segment",
            label="Industry segment",
            field_type=CustomFieldType.CHOICE,
            choices=SEGMENTS,
        ),
    ]
    existing = set(
        CustomField.objects.filter(record_type=RECORD_CONTACT, key__in=[f.key for f in wanted]).values_list(
            "key", flat=True
        )
    )
    missing = [f for f in wanted if f.key not in existing]
    CustomField.objects.bulk_create(missing)
    report.created.extend(f"custom field {f.label}" for f in missing)


def _ensure_activity_types(report: SeedReport) -> dict[str, ActivityType]:
    existing = set(ActivityType.objects.filter(name__in=ACTIVITY_TYPES).values_list("name", flat=True))
    missing = [ActivityType(name=name) for name in ACTIVITY_TYPES if name not in existing]
    ActivityType.objects.bulk_create(missing)
    report.created.extend(f"activity type {t.name}" for t in missing)
    return {t.name: t for t in ActivityType.objects.filter(name__in=ACTIVITY_TYPES)}


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _create_records(owner: User, report: SeedReport) -> list[Contact]:
    fake = Faker("en_US")
    fake.seed_instance(FAKER_SEED)
    rng = random.Random(FAKER_SEED)
    now = clock.now()

    accounts = []
    for index in range(ACCOUNT_COUNT):
        name = fake.unique.company()
        # The reserved .example domain: demo addresses can never reach a real inbox.
        accounts.append(
            Account(
                name=name,
                domain=f"{_slug(name)}.example",
                industry=SEGMENTS[index % len(SEGMENTS)],
                owner=owner,
                created_at=now,
                updated_at=now,
            )
        )
    Account.objects.bulk_create(accounts)

    contacts = []
    emails: set[str] = set()
    for index in range(ACCOUNT_COUNT * CONTACTS_PER_ACCOUNT):
        account = accounts[index % ACCOUNT_COUNT]
        area_code, time_zone = CITIES[index % ACCOUNT_COUNT]
        first, last = fake.first_name(), fake.last_name()
        email = f"{_slug(first).replace('-', '')}.{_slug(last).replace('-', '')}@{account.domain}"
        while email in emails:
            email = email.replace("@", f"{rng.randint(2, 9)}@", 1)
        emails.add(email)
        custom: dict[str, object] = {"budget": rng.randrange(5_000, 100_001, 5_000)}
        # Leave a few segments empty: real data has gaps, and "is empty" should find them.
        if index % 7 != 6:
            custom["industry_segment"] = account.industry
        contacts.append(
            Contact(
                owner=owner,
                first_name=first,
                last_name=last,
                email=email,
                mobile=f"+1{area_code}55501{index:02d}",
                job_title=rng.choice(JOB_TITLES),
                time_zone=time_zone,
                country="US",
                account=account,
                custom=custom,
                created_at=now,
                updated_at=now,
            )
        )
    Contact.objects.bulk_create(contacts)

    tags = {t.name: t for t in Tag.objects.filter(name__in=TAGS)}
    new_tags = [Tag(name=name) for name in TAGS if name not in tags]
    Tag.objects.bulk_create(new_tags)
    tags = {t.name: t for t in Tag.objects.filter(name__in=TAGS)}
    through = Contact.tags.through
    Contact.tags.through.objects.bulk_create(
        [
            through(contact_id=contact.pk, tag_id=tags[TAGS[index % len(TAGS)]].pk)
            for index, contact in enumerate(contacts)
            if index % 2 == 0
        ]
    )
    report.created.append(f"{len(accounts)} accounts and {len(contacts)} contacts")
    return contacts


def _record_history(owner: User, contacts: list[Contact], types: dict[str, ActivityType]) -> None:
    # A handful of activities through the one action that keeps last-contacted fields right.
    today = clock.now().replace(hour=15, minute=0, second=0, microsecond=0)
    for index, kind, type_name, days_ago in HISTORY:
        do_record_activity(
            contacts[index],
            kind,
            user=owner,
            custom_type=types[type_name] if type_name else None,
            occurred_at=today - dt.timedelta(days=days_ago),
            subject=f"{type_name or kind.label} with {contacts[index].first_name}",
        )


def _ensure_saved_view(owner: User, report: SeedReport) -> None:
    _, created = SavedView.objects.get_or_create(
        owner=owner,
        name=SAVED_VIEW_NAME,
        defaults={"record_type": RECORD_CONTACT, "conditions": SAVED_VIEW_CONDITIONS},
    )
    if created:
        report.created.append(f"saved view {SAVED_VIEW_NAME!r}")
