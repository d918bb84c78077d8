from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.test import Client

from sequent.crm.models import Account, Activity, ActivityType, Contact, CustomField, SavedView
from sequent.users.models import User


def seed():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def row_counts():
    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def test_it_seeds_a_demo_workspace_the_demo_user_can_log_in_to(db, monkeypatch):
    monkeypatch.delenv("SEQUENT_DEMO_PASSWORD", raising=False)
    output = seed()
    assert "Demo login: demo@sequent.local / demo-sequent" in output
    demo = User.objects.get(email="demo@sequent.local")
    assert demo.groups.get() == Group.objects.get(name="Sales Rep")
    admin = User.objects.get(email="admin@sequent.local")
    assert admin.groups.get() == Group.objects.get(name="Administrator")
    assert Client().login(username="demo@sequent.local", password="demo-sequent")

    assert Account.objects.count() == 5
    assert Contact.objects.filter(owner=demo).count() == 25
    assert Contact.objects.exclude(email__endswith=".example").count() == 0
    assert Contact.objects.values("email").distinct().count() == 25
    assert {(f.key, f.field_type) for f in CustomField.objects.all()} >= {
        ("budget", "number"),
        ("industry_segment", "choice"),
    }
    assert set(ActivityType.objects.values_list("name", flat=True)) >= {"Lunch", "Coffee", "InMail"}
    assert SavedView.objects.filter(owner=demo).count() == 1
    lunch = Contact.objects.get(activities__custom_type__name="Lunch")
    assert (lunch.last_contacted_mode, lunch.last_activity_type) == ("sales_activity", "Lunch")
    assert Activity.objects.count() == 7


def test_it_gives_everyone_the_same_people(db):
    seed()
    first = list(Contact.objects.order_by("id").values_list("first_name", "last_name", "email", "mobile"))
    Contact.objects.all().delete()
    Account.objects.all().delete()
    User.objects.filter(email="demo@sequent.local").delete()
    seed()
    assert (
        list(Contact.objects.order_by("id").values_list("first_name", "last_name", "email", "mobile"))
        == first
    )


def test_it_changes_nothing_when_run_twice(db):
    seed()
    before = row_counts()
    demo_password_hash = User.objects.get(email="demo@sequent.local").password
    output = seed()
    assert row_counts() == before
    assert User.objects.get(email="demo@sequent.local").password == demo_password_hash
    assert "already seeded" in output
    assert "Demo login: demo@sequent.local / demo-sequent" in output


def test_it_takes_the_password_from_the_environment(db, monkeypatch):
    monkeypatch.setenv("SEQUENT_DEMO_PASSWORD", "another-secret-42")
    output = seed()
    assert "Demo login: demo@sequent.local / another-secret-42" in output
    assert Client().login(username="demo@sequent.local", password="another-secret-42")
    assert not Client().login(username="demo@sequent.local", password="demo-sequent")


def test_its_saved_view_is_valid_and_finds_contacts(db):
    conditions = pytest.importorskip("sequent.crm.conditions")
    seed()
    view = SavedView.objects.get()
    matches = conditions.filter_records(view.record_type, view.conditions, user=view.owner)
    expected = Contact.objects.filter(custom__industry_segment="SaaS", last_contacted_mode="not_contacted")
    assert matches.count() == expected.count() > 0
