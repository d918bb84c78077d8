"""/api/v1/custom-fields and /api/v1/activity-types: anyone lists, only workspace managers change."""

import pytest

from sequent.crm import records
from sequent.crm.models import ActivityType, CustomField


@pytest.fixture
def admin_api(api_for, admin_user):
    return api_for(admin_user)


def test_it_lets_a_workspace_manager_define_rename_and_delete_a_custom_field(admin_api, rep):
    response = admin_api.post(
        "custom-fields",
        {"record_type": "contact", "label": "Segment", "field_type": "choice", "choices": ["SMB", "Mid"]},
    )
    assert response.status_code == 201
    field = response.json()
    assert (field["key"], field["choices"]) == ("segment", ["SMB", "Mid"])
    contact = records.do_create_contact(rep, {"custom": {"segment": "mid"}})
    renamed = admin_api.patch(
        f"custom-fields/{field['id']}", {"label": "Market segment", "choices": ["SMB", "Mid", "Ent"]}
    )
    assert (renamed.json()["label"], renamed.json()["key"]) == ("Market segment", "segment")
    assert admin_api.delete(f"custom-fields/{field['id']}").status_code == 204
    assert admin_api.get(f"contacts/{contact.pk}").json()["custom"] == {}


def test_it_refuses_custom_field_changes_to_a_rep_with_a_reason(api, admin_api):
    response = api.post(
        "custom-fields", {"record_type": "contact", "label": "Budget", "field_type": "number"}
    )
    assert response.status_code == 403
    assert "Manage workspace" in response.json()["detail"]
    field = admin_api.post(
        "custom-fields", {"record_type": "contact", "label": "Budget", "field_type": "number"}
    ).json()
    assert api.patch(f"custom-fields/{field['id']}", {"label": "Money"}).status_code == 403
    assert api.delete(f"custom-fields/{field['id']}").status_code == 403
    assert CustomField.objects.get().label == "Budget"


def test_it_lists_custom_fields_to_anyone(api, admin_api):
    admin_api.post("custom-fields", {"record_type": "contact", "label": "Budget", "field_type": "number"})
    admin_api.post("custom-fields", {"record_type": "account", "label": "Tier", "field_type": "text"})
    page = api.get("custom-fields", {"record_type": "account"}).json()
    assert [f["key"] for f in page["items"]] == ["tier"]
    assert api.get("custom-fields").json()["count"] == 2


def test_it_refuses_changing_a_custom_fields_type(admin_api):
    field = admin_api.post(
        "custom-fields", {"record_type": "contact", "label": "Budget", "field_type": "number"}
    ).json()
    response = admin_api.patch(f"custom-fields/{field['id']}", {"field_type": "text"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "field_type"


def test_it_refuses_an_unknown_field_type(admin_api):
    response = admin_api.post(
        "custom-fields", {"record_type": "contact", "label": "Size", "field_type": "shoe"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "field_type"


def test_it_manages_custom_activity_types(api, admin_api):
    created = admin_api.post("activity-types", {"name": "Coffee"})
    assert created.status_code == 201
    type_id = created.json()["id"]
    assert api.post("activity-types", {"name": "Lunch"}).status_code == 403
    assert admin_api.patch(f"activity-types/{type_id}", {"is_active": False}).json()["is_active"] is False
    assert api.get("activity-types", {"active": "true"}).json()["count"] == 0
    assert [t["name"] for t in api.get("activity-types").json()["items"]] == ["Coffee"]
    assert api.delete(f"activity-types/{type_id}").status_code == 403
    assert admin_api.delete(f"activity-types/{type_id}").status_code == 204
    assert not ActivityType.objects.exists()


def test_it_names_the_problem_with_an_activity_type_name(admin_api):
    admin_api.post("activity-types", {"name": "Coffee"})
    response = admin_api.post("activity-types", {"name": "coffee"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "name", "reason": "an activity type named 'coffee' already exists"}
    ]
