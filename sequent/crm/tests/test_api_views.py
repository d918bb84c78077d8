"""/api/v1/views (per user, with preview), ?view= on lists, and the /fields catalog."""

import pytest

from sequent.crm import records
from sequent.crm.models import CustomField, SavedView

ACME = [{"field": "email", "op": "contains", "value": "@acme.com"}]


@pytest.fixture
def acme_contacts(rep):
    people = [
        records.do_create_contact(rep, {"first_name": f"A{i:02}", "email": f"a{i}@acme.com"})
        for i in range(12)
    ]
    records.do_create_contact(rep, {"first_name": "Eli", "email": "eli@globex.com"})
    return people


def create_view(client, name="Acme people", conditions=ACME, record_type="contact"):
    response = client.post("views", {"name": name, "record_type": record_type, "conditions": conditions})
    assert response.status_code == 201, response.content
    return response.json()


def test_it_saves_reads_renames_and_deletes_a_view(api):
    view = create_view(api)
    assert view["conditions"][0]["field"] == "email"
    assert api.get(f"views/{view['id']}").json() == view
    renamed = api.patch(f"views/{view['id']}", {"name": "Acme"}).json()
    assert (renamed["name"], renamed["conditions"]) == ("Acme", view["conditions"])
    assert api.delete(f"views/{view['id']}").status_code == 204
    assert api.get(f"views/{view['id']}").status_code == 404


def test_it_hides_another_users_view(api, other_api):
    view = create_view(api)
    for response in (
        other_api.get(f"views/{view['id']}"),
        other_api.patch(f"views/{view['id']}", {"name": "Mine now"}),
        other_api.delete(f"views/{view['id']}"),
        other_api.get(f"views/{view['id']}/preview"),
        other_api.get("contacts", {"view": view["id"]}),
    ):
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"}
    assert other_api.get("views").json()["count"] == 0
    assert SavedView.objects.get().name == "Acme people"


def test_it_names_the_refused_clause_of_a_view(api):
    conditions = [*ACME, {"field": "last_contacted_at", "op": "contains", "value": "x"}]
    response = api.post("views", {"name": "Broken", "conditions": conditions})
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["field"] == "conditions[1]"
    assert "contains" in error["reason"]
    assert not SavedView.objects.exists()


def test_it_refuses_a_ninth_clause(api):
    response = api.post("views", {"name": "Too many", "conditions": ACME * 9})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "conditions"


def test_it_refuses_a_duplicate_view_name(api):
    create_view(api)
    response = api.post("views", {"name": "Acme people", "conditions": []})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


def test_it_previews_a_saved_view(api, acme_contacts):
    view = create_view(api)
    preview = api.get(f"views/{view['id']}/preview").json()
    assert preview["count"] == 12
    assert [c["first_name"] for c in preview["items"]] == [f"A{i:02}" for i in range(10)]


def test_it_previews_unsaved_conditions_on_accounts(api, rep):
    records.do_create_account(rep, {"name": "Acme", "domain": "acme.com"})
    records.do_create_account(rep, {"name": "Globex", "domain": "globex.com"})
    conditions = [{"field": "name", "op": "starts_with", "value": "ac"}]
    preview = api.post("views/preview", {"record_type": "account", "conditions": conditions}).json()
    assert (preview["count"], [a["domain"] for a in preview["items"]]) == (1, ["acme.com"])


def test_it_lists_the_contacts_of_a_view_and_more_conditions(api, acme_contacts):
    view = create_view(api)
    page = api.get("contacts", {"view": view["id"], "page_size": 5}).json()
    assert (page["count"], len(page["items"])) == (12, 5)
    narrower = api.post(
        "contacts/search",
        {"view": view["id"], "conditions": [{"field": "first_name", "op": "equals", "value": "a03"}]},
    ).json()
    assert [c["first_name"] for c in narrower["items"]] == ["A03"]


def test_it_refuses_an_account_view_on_the_contact_list(api):
    view = create_view(api, conditions=[], record_type="account")
    response = api.get("contacts", {"view": view["id"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "view"


def test_it_reports_a_view_whose_custom_field_was_deleted(api, acme_contacts):
    field = CustomField.objects.create(
        record_type="contact", key="budget", label="Budget", field_type="number"
    )
    view = create_view(api, conditions=[{"field": "custom.budget", "op": "gt", "value": 10}])
    field.delete()
    response = api.get("contacts", {"view": view["id"]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "view"


def test_it_describes_the_fields_conditions_may_use(api):
    CustomField.objects.create(record_type="contact", key="budget", label="Budget", field_type="number")
    catalog = {spec["name"]: spec for spec in api.get("fields/contact").json()}
    assert "contains" in catalog["email"]["operators"]
    assert catalog["custom.budget"]["type"] == "number"
    assert "gt" in catalog["custom.budget"]["operators"]
    assert api.get("fields/invoice").status_code == 422
