from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client

from sequent.users.models import ApiToken


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("token", *args, stdout=out, stderr=err)
    return out.getvalue()


def me(token):
    return Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_it_prints_a_token_the_api_accepts_as_bearer(rep):
    token = run("create", "alice@example.com", "--name", "laptop").strip()
    assert token.startswith("sq_")
    response = me(token)
    assert response.status_code == 200
    assert response.json()["email"] == "alice@example.com"
    assert "view_sales_sequences" in response.json()["permissions"]


def test_it_answers_401_without_a_token_or_with_a_wrong_one(rep):
    assert Client().get("/api/v1/me").status_code == 401
    assert me("sq_" + "x" * 43).status_code == 401


def test_it_stores_only_a_hash_of_the_token(rep):
    token = run("create", "alice@example.com").strip()
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            found += [table for row in cursor.fetchall() if token in repr(row) or token[3:] in repr(row)]
    assert found == []
    assert ApiToken.objects.get().token_hash == ApiToken.hash(token)


def test_it_refuses_a_revoked_token_with_401(rep):
    token = run("create", "alice@example.com").strip()
    assert me(token).status_code == 200
    prefix = ApiToken.objects.get().prefix
    assert run("revoke", prefix).startswith(f"revoked {prefix}")
    assert me(token).status_code == 401
    assert "revoked" in run("list", "alice@example.com")


def test_it_revokes_a_token_given_whole(rep):
    token = run("create", "alice@example.com").strip()
    run("revoke", token)
    assert me(token).status_code == 401


def test_it_lists_tokens_without_showing_them(rep):
    token = run("create", "alice@example.com", "--name", "ci").strip()
    listing = run("list", "alice@example.com")
    assert "ci\tactive\tnever used" in listing
    assert token not in listing


def test_it_refuses_a_token_for_an_unknown_user_naming_the_field(db):
    with pytest.raises(CommandError, match=r"^email: no user nobody@example.com"):
        run("create", "nobody@example.com")
    assert not ApiToken.objects.exists()
