"""/api/v1/accounts: CRUD, domain normalisation, custom values, delete permission, filtering."""

import json

import pytest

from sequent.crm import records
from sequent.crm.models import Contact, CustomField


@pytest.fixture
def tier(db):
    return CustomField.objects.create(
        record_type="account", key="tier", label="Tier", field_type="choice", choices=["Gold", "Silver"]
    )


def test_it_creates_reads_updates_and_deletes_an_account(api, tier):
    response = api.post(
        "accounts", {"name": "Acme", "domain": "https://www.ACME.com/", "custom": {"tier": "gold"}}
    )
    assert response.status_code == 201
    account = response.json()
    assert (account["domain"], account["custom"], account["owner"]) == (
        "acme.com",
        {"tier": "Gold"},
        "alice@example.com",
    )
    assert api.get(f"accounts/{account['id']}").json() == account
    updated = api.patch(f"accounts/{account['id']}", {"industry": "Software"}).json()
    assert (updated["name"], updated["industry"]) == ("Acme", "Software")
    assert api.delete(f"accounts/{account['id']}").status_code == 204
    assert api.get(f"accounts/{account['id']}").status_code == 404


def test_it_needs_a_name(api):
    response = api.post("accounts", {"domain": "acme.com"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"
    response = api.patch(
        f"accounts/{records.do_create_account(api.user, {'name': 'Acme'}).pk}", {"name": "  "}
    )
    assert response.json()["errors"] == [{"field": "name", "reason": "an account needs a name"}]


def test_it_checks_account_custom_fields_against_their_choices(api, tier):
    response = api.post("accounts", {"name": "Acme", "custom": {"tier": "Platinum"}})
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "custom.tier"
    assert "Gold, Silver" in error["reason"]


def test_it_keeps_the_contacts_of_a_deleted_account(api, rep):
    contact = records.do_create_contact(rep, {"first_name": "Dana", "account_name": "Acme"})
    assert api.delete(f"accounts/{contact.account_id}").status_code == 204
    assert Contact.objects.get(pk=contact.pk).account is None


def test_it_refuses_deletion_to_a_rep_who_does_not_own_the_account(other_api, rep):
    account = records.do_create_account(rep, {"name": "Acme"})
    response = other_api.delete(f"accounts/{account.pk}")
    assert response.status_code == 403
    assert "Manage workspace" in response.json()["detail"]


def test_it_filters_and_sorts_accounts(api, rep):
    for name, domain in (("Globex", "globex.com"), ("acme", "acme.com"), ("Initech", "initech.io")):
        records.do_create_account(rep, {"name": name, "domain": domain})
    names = [a["name"] for a in api.get("accounts", {"sort": "name"}).json()["items"]]
    assert names == ["acme", "Globex", "Initech"]
    clauses = [{"field": "domain", "op": "contains", "value": ".com"}]
    page = api.get("accounts", {"conditions": json.dumps(clauses), "sort": "-name"}).json()
    assert [a["name"] for a in page["items"]] == ["Globex", "acme"]
    searched = api.post("accounts/search", {"conditions": clauses, "sort": "-name"}).json()
    assert searched["items"] == page["items"]
