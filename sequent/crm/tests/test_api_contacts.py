"""/api/v1/contacts: CRUD, validation errors, pagination, sorting, filtering, queries per page."""

import json

import pytest

from sequent.crm import records
from sequent.crm.models import Account, Contact, CustomField, Tag


@pytest.fixture
def budget(db):
    return CustomField.objects.create(
        record_type="contact", key="budget", label="Budget", field_type="number"
    )


def make_contacts(user, count, **extra):
    return [
        records.do_create_contact(user, {"first_name": f"First{i:02}", "last_name": f"Last{i:02}", **extra})
        for i in range(count)
    ]


def test_it_creates_a_contact_and_shows_it_whole(api, budget):
    response = api.post(
        "contacts",
        {
            "first_name": "Dana",
            "last_name": "Lee",
            "email": "Dana@Example.com",
            "mobile": "(415) 555-0132",
            "country": "us",
            "job_title": "CTO",
            "time_zone": "America/Los_Angeles",
            "account_name": "Acme",
            "tags": ["VIP", "Lead"],
            "custom": {"budget": "12000"},
            "sms_opt_out": True,
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "dana@example.com"
    assert body["mobile"] == "+14155550132"
    assert body["account"] == {"id": Account.objects.get(name="Acme").pk, "name": "Acme"}
    assert body["tags"] == ["Lead", "VIP"]
    assert body["custom"] == {"budget": 12000}
    assert body["owner"] == "alice@example.com"
    assert body["last_contacted_mode"] == "not_contacted"
    assert body["sms_opt_out"] is True
    assert api.get(f"contacts/{body['id']}").json() == body


def test_it_updates_only_the_fields_sent(api, rep):
    contact = records.do_create_contact(
        rep, {"first_name": "Dana", "email": "dana@example.com", "tags": ["VIP"]}
    )
    response = api.patch(f"contacts/{contact.pk}", {"job_title": "CEO", "tags": ["Customer"]})
    assert response.status_code == 200
    body = response.json()
    assert (body["first_name"], body["email"], body["job_title"], body["tags"]) == (
        "Dana",
        "dana@example.com",
        "CEO",
        ["Customer"],
    )


def test_it_unlinks_the_account_given_a_null_account_id(api, rep):
    contact = records.do_create_contact(rep, {"account_name": "Acme"})
    assert api.patch(f"contacts/{contact.pk}", {"account_id": None}).json()["account"] is None


def test_it_names_the_custom_field_in_a_validation_error(api, budget):
    response = api.post(
        "contacts", {"email": "dana@example.com", "custom": {"budget": "lots", "colour": "red"}}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "validation failed"
    reasons = {error["field"]: error["reason"] for error in body["errors"]}
    assert reasons.keys() == {"custom.budget", "custom.colour"}
    assert "'lots' is not a number" in reasons["custom.budget"]
    assert not Contact.objects.exists()


def test_it_reports_schema_errors_in_the_same_shape(api):
    response = api.post("contacts", {"tags": "vip", "nickname": "D"})
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"tags", "nickname"}


def test_it_refuses_a_bad_email_and_phone(api):
    response = api.post("contacts", {"email": "dana@", "mobile": "555"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"email", "mobile"}


def test_it_answers_404_for_a_missing_contact(api):
    response = api.get("contacts/999")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


def test_it_lets_any_user_read_and_edit_a_shared_contact(other_api, rep):
    contact = records.do_create_contact(rep, {"first_name": "Dana"})
    assert other_api.get(f"contacts/{contact.pk}").status_code == 200
    assert other_api.patch(f"contacts/{contact.pk}", {"last_name": "Lee"}).json()["last_name"] == "Lee"


def test_it_refuses_deletion_by_a_user_who_neither_owns_nor_manages(api, other_api, rep):
    contact = records.do_create_contact(rep, {"first_name": "Dana"})
    response = other_api.delete(f"contacts/{contact.pk}")
    assert response.status_code == 403
    assert "owner" in response.json()["detail"]
    assert api.delete(f"contacts/{contact.pk}").status_code == 204
    assert api.get(f"contacts/{contact.pk}").status_code == 404


def test_it_lets_a_workspace_manager_delete_any_contact(api_for, admin_user, rep):
    contact = records.do_create_contact(rep, {"first_name": "Dana"})
    assert api_for(admin_user).delete(f"contacts/{contact.pk}").status_code == 204


def test_it_pages_through_contacts(api, rep):
    make_contacts(rep, 5)
    page = api.get("contacts", {"page": 2, "page_size": 2}).json()
    assert [c["first_name"] for c in page["items"]] == ["First02", "First03"]
    assert (page["count"], page["page"], page["pages"]) == (5, 2, 3)
    assert "page=3" in page["next"] and "page_size=2" in page["next"]
    last = api.get(page["next"].removeprefix("http://testserver")).json()
    assert [c["first_name"] for c in last["items"]] == ["First04"]
    assert last["next"] is None


def test_it_caps_the_page_size(api):
    response = api.get("contacts", {"page_size": 201})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "page_size"


def test_it_sorts_by_an_allowed_field(api, rep):
    for name in ("beta", "Alpha", "gamma"):
        records.do_create_contact(rep, {"last_name": name})
    names = [c["last_name"] for c in api.get("contacts", {"sort": "-last_name"}).json()["items"]]
    assert names == ["gamma", "beta", "Alpha"]
    response = api.get("contacts", {"sort": "password"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "sort"


def test_it_lists_30_contacts_in_a_fixed_number_of_queries(api, rep, django_assert_max_num_queries):
    accounts = [Account.objects.create(name=f"Account {i}") for i in range(3)]
    tags = [Tag.objects.create(name=f"tag{i}") for i in range(3)]
    for i in range(30):
        contact = Contact.objects.create(first_name=f"C{i}", owner=rep, account=accounts[i % 3])
        contact.tags.set(tags[: i % 3 + 1])
    api.get("me")  # the token's last-used stamp is written once a minute, not on every call
    # token lookup, count, page, tags
    with django_assert_max_num_queries(4):
        page = api.get("contacts", {"page_size": 30}).json()
    assert len(page["items"]) == 30
    assert page["items"][5]["tags"] == ["tag0", "tag1", "tag2"]
    assert page["items"][5]["account"]["name"] == "Account 2"


def test_it_filters_by_conditions_in_the_query_string(api, rep):
    records.do_create_contact(rep, {"first_name": "Dana", "email": "dana@acme.com"})
    records.do_create_contact(rep, {"first_name": "Eli", "email": "eli@globex.com"})
    clauses = [{"field": "email", "op": "contains", "value": "@acme.com"}]
    page = api.get("contacts", {"conditions": json.dumps(clauses)}).json()
    assert [c["first_name"] for c in page["items"]] == ["Dana"]
    assert page["count"] == 1


def test_it_searches_with_conditions_in_the_body(api, rep):
    records.do_create_contact(rep, {"first_name": "Dana", "tags": ["VIP"]})
    records.do_create_contact(rep, {"first_name": "Eli"})
    response = api.post(
        "contacts/search", {"conditions": [{"field": "tags", "op": "contains", "value": "VIP"}]}
    )
    assert [c["first_name"] for c in response.json()["items"]] == ["Dana"]


def test_it_names_the_refused_clause(api):
    clauses = [
        {"field": "email", "op": "contains", "value": "@acme.com"},
        {"field": "shoe_size", "op": "equals", "value": 42},
    ]
    response = api.post("contacts/search", {"conditions": clauses})
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "conditions[1]"
    assert "shoe_size" in error["reason"]


def test_it_refuses_conditions_that_are_not_json(api):
    response = api.get("contacts", {"conditions": "[{field: email}"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "conditions"


def test_it_refuses_a_nul_character_naming_the_field(api):
    response = api.post("contacts", {"email": "ann@acme.com", "last_name": "An\x00n"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "last_name", "reason": "must not contain a NUL character"}]
    listing = api.get("contacts", {"q": "a\x00"})
    assert listing.status_code == 422
    assert listing.json()["errors"][0]["field"] == "q"
    assert not Contact.objects.exists()
