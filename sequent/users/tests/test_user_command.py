from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from sequent.users.models import User


def run(*args):
    out = StringIO()
    call_command("user", *args, stdout=out)
    return out.getvalue()


def test_it_creates_a_user_with_the_role_and_prints_the_password(db):
    output = run("create", "Carol@Example.com", "--role", "Sales Manager")
    user = User.objects.get(email="carol@example.com")
    assert list(user.groups.values_list("name", flat=True)) == ["Sales Manager"]
    password = output.split("password: ")[1].strip()
    assert authenticate(username="carol@example.com", password=password) == user


def test_it_accepts_a_role_written_in_lower_case_with_dashes(db):
    run("create", "dan@example.com", "--role", "sales-rep", "--password", "pw-dan-123")
    user = User.objects.get(email="dan@example.com")
    assert list(user.groups.values_list("name", flat=True)) == ["Sales Rep"]
    assert authenticate(username="dan@example.com", password="pw-dan-123") == user


def test_it_refuses_a_duplicate_email_naming_the_field(rep):
    with pytest.raises(CommandError, match=r"^email: a user with email alice@example.com already exists"):
        run("create", "ALICE@example.com", "--role", "Sales Rep")
    assert User.objects.count() == 1


def test_it_refuses_an_unknown_role_naming_the_field(db):
    with pytest.raises(CommandError, match=r"^role: unknown role 'Intern'; choose one of Administrator"):
        run("create", "erin@example.com", "--role", "Intern")
    assert not User.objects.filter(email="erin@example.com").exists()


def test_it_refuses_a_bad_email_naming_the_field(db):
    with pytest.raises(CommandError, match=r"^email: 'not-an-email' is not a valid email address"):
        run("create", "not-an-email", "--role", "Sales Rep")


def test_it_changes_a_role_and_lists_users(rep):
    run("set-role", "alice@example.com", "Administrator")
    assert list(rep.groups.values_list("name", flat=True)) == ["Administrator"]
    assert run("list").splitlines() == ["alice@example.com\tAdministrator"]


def test_it_deactivates_a_user_whose_login_and_tokens_then_fail(rep, api):
    assert api.get("me").status_code == 200
    run("deactivate", "alice@example.com")
    assert authenticate(username="alice@example.com", password="pw-alice-123") is None
    assert api.get("me").status_code == 401
    assert run("list").splitlines() == ["alice@example.com\tSales Rep (inactive)"]
    run("activate", "alice@example.com")
    assert api.get("me").status_code == 200
