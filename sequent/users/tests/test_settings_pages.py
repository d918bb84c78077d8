import re

import pytest
from django.contrib.auth.models import Group

from sequent.crm.models import Activity, ActivityType, Contact, CustomField
from sequent.sms.models import SmsSettings
from sequent.users.models import User

USERS_PAGES = ["/settings/users/", "/settings/users/new/", "/settings/roles/"]
WORKSPACE_PAGES = ["/settings/custom-fields/", "/settings/activity-types/", "/settings/sms/"]


def field_error(html, name):
    """The error text shown right after the field *name*, or ''."""
    match = re.search(rf'name="{name}".*?<p class="field-error" id="id_{name}_error">(.*?)</p>', html, re.S)
    return match.group(1) if match else ""


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.mark.parametrize("url", ["/settings/", *USERS_PAGES, *WORKSPACE_PAGES])
def test_it_answers_404_to_a_rep_on_every_settings_page(client, rep, url):
    client.force_login(rep)
    assert client.get(url).status_code == 404
    assert client.post(url, {}).status_code == 404


def test_it_sends_an_anonymous_visitor_to_log_in(client, db):
    response = client.get("/settings/users/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=/settings/users/")


def test_it_gates_each_section_by_its_own_permission(client, rep):
    group = Group.objects.get(name="Sales Rep")
    group.permissions.add(*group.permissions.model.objects.filter(codename="manage_workspace"))
    client.force_login(rep)
    assert all(client.get(url).status_code == 200 for url in WORKSPACE_PAGES)
    assert all(client.get(url).status_code == 404 for url in USERS_PAGES)
    page = client.get("/settings/").content.decode()
    assert "Custom fields" in page and "/settings/roles/" not in page


def test_it_shows_settings_in_the_menu_only_to_admins(client, rep, admin_user):
    client.force_login(rep)
    assert "/settings/" not in client.get("/").content.decode()
    client.force_login(admin_user)
    assert 'href="/settings/"' in client.get("/").content.decode()


def test_it_lists_users_with_role_status_and_limit(admin, rep):
    page = admin.get("/settings/users/?q=alice").content.decode()
    assert "alice@example.com" in page and "Sales Rep" in page and "500" in page
    assert "<td>admin@example.com</td>" not in page


def test_it_creates_a_user_who_can_log_in(admin, client):
    response = admin.post(
        "/settings/users/new/",
        {"email": "Sam@Example.com", "role": "Sales Manager", "password": "a-long-secret-9", "first_name": "Sam"},
    )
    assert response.status_code == 302
    sam = User.objects.get(email="sam@example.com")
    assert sam.groups.get().name == "Sales Manager"
    assert sam.check_password("a-long-secret-9")


def test_it_shows_a_taken_email_and_a_weak_password_next_to_their_fields(admin, rep):
    html = admin.post(
        "/settings/users/new/", {"email": "alice@example.com", "role": "Sales Rep", "password": "abc"}
    ).content.decode()
    assert "already exists" in field_error(html, "email") or "too short" in field_error(html, "password")
    assert "too short" in field_error(html, "password")
    html = admin.post(
        "/settings/users/new/", {"email": "alice@example.com", "role": "Sales Rep", "password": "a-long-secret-9"}
    ).content.decode()
    assert "a user with email alice@example.com already exists" in field_error(html, "email")
    assert User.objects.filter(email="alice@example.com").count() == 1


def _edit(admin, user, **changes):
    data = {"role": "Sales Rep", "is_active": "on", "daily_email_limit": 500, "time_zone": "UTC",
            "first_name": user.first_name, "last_name": user.last_name, **changes}
    if data["is_active"] is None:
        del data["is_active"]
    return admin.post(f"/settings/users/{user.pk}/", data)


def test_it_changes_role_limit_time_zone_and_deactivates(admin, rep):
    response = _edit(admin, rep, role="Sales Manager", daily_email_limit=120, time_zone="Europe/Paris", is_active=None)
    assert response.status_code == 302
    rep.refresh_from_db()
    assert (rep.groups.get().name, rep.daily_email_limit, rep.time_zone, rep.is_active) == (
        "Sales Manager", 120, "Europe/Paris", False,
    )


def test_it_shows_a_bad_time_zone_and_limit_next_to_their_fields(admin, rep):
    html = _edit(admin, rep, time_zone="Mars/Olympus").content.decode()
    assert "not an IANA time zone" in field_error(html, "time_zone")
    html = _edit(admin, rep, daily_email_limit=-3).content.decode()
    assert "greater than or equal to 0" in field_error(html, "daily_email_limit")
    rep.refresh_from_db()
    assert rep.time_zone == "UTC"


def test_it_refuses_to_leave_nobody_able_to_manage_users(admin, admin_user):
    response = _edit(admin, admin_user, role="Sales Rep")
    assert response.status_code == 200
    assert "at least one active user must keep" in response.content.decode()
    assert admin_user.groups.get().name == "Administrator"


def test_it_takes_view_sales_sequences_away_from_a_role(admin, rep, client):
    groups = {g.name: g for g in Group.objects.all()}
    page = admin.get("/settings/roles/").content.decode()
    assert f'name="role-{groups["Sales Rep"].pk}" value="view_sales_sequences"' in page
    data = {f"role-{g.pk}": list(g.permissions.values_list("codename", flat=True)) for g in groups.values()}
    data[f"role-{groups['Sales Rep'].pk}"].remove("view_sales_sequences")
    assert admin.post("/settings/roles/", data).status_code == 302
    rep = User.objects.get(pk=rep.pk)
    assert not rep.has_perm("users.view_sales_sequences")
    assert rep.has_perm("users.create_sales_sequences")


def test_it_refuses_a_roles_change_that_locks_everyone_out(admin):
    groups = Group.objects.all()
    data = {f"role-{g.pk}": ["view_sales_sequences"] for g in groups}
    response = admin.post("/settings/roles/", data)
    assert response.status_code == 200
    assert "Not saved" in response.content.decode()
    assert Group.objects.get(name="Administrator").permissions.filter(codename="manage_users").exists()


def test_it_creates_edits_and_deletes_a_custom_field(admin, rep):
    response = admin.post(
        "/settings/custom-fields/",
        {"record_type": "contact", "label": "Lead source", "field_type": "choice", "choices": "Web\nEvent\n"},
    )
    assert response.status_code == 302
    field = CustomField.objects.get(key="lead_source")
    assert field.choices == ["Web", "Event"]
    admin.post(f"/settings/custom-fields/{field.pk}/", {"label": "Source", "choices": "Web\nEvent\nPartner"})
    field.refresh_from_db()
    assert (field.label, field.choices) == ("Source", ["Web", "Event", "Partner"])
    contact = Contact.objects.create(owner=rep, email="z@example.com", custom={"lead_source": "Web", "x": 1})
    assert admin.post(f"/settings/custom-fields/{field.pk}/delete/").status_code == 302
    assert not CustomField.objects.exists()
    contact.refresh_from_db()
    assert contact.custom == {"x": 1}


def test_it_shows_custom_field_errors_next_to_the_field(admin):
    html = admin.post(
        "/settings/custom-fields/", {"record_type": "contact", "label": "Stage", "field_type": "choice", "choices": ""}
    ).content.decode()
    assert "a choice field needs at least one choice" in field_error(html, "choices")
    html = admin.post(
        "/settings/custom-fields/", {"record_type": "contact", "label": "X", "field_type": "text", "key": "9bad"}
    ).content.decode()
    assert "is not a key" in field_error(html, "key")
    assert not CustomField.objects.exists()


def test_it_manages_activity_types(admin, rep):
    admin.post("/settings/activity-types/", {"name": "Lunch"})
    lunch = ActivityType.objects.get(name="Lunch")
    html = admin.post("/settings/activity-types/", {"name": "lunch"}).content.decode()
    assert "already exists" in field_error(html, "name")
    html = admin.post("/settings/activity-types/", {"name": "Call"}).content.decode()
    assert "built-in" in field_error(html, "name")
    admin.post(f"/settings/activity-types/{lunch.pk}/", {"active": "0"})
    lunch.refresh_from_db()
    assert not lunch.is_active
    admin.post(f"/settings/activity-types/{lunch.pk}/", {"name": "Team lunch"})
    lunch.refresh_from_db()
    assert lunch.name == "Team lunch"


def test_it_refuses_to_delete_an_activity_type_in_use(admin, rep):
    coffee = ActivityType.objects.create(name="Coffee")
    contact = Contact.objects.create(owner=rep, email="c@example.com")
    Activity.objects.create(contact=contact, kind="custom", custom_type=coffee)
    response = admin.post(f"/settings/activity-types/{coffee.pk}/delete/", follow=True)
    assert "1 logged activities use" in response.content.decode()
    assert ActivityType.objects.filter(pk=coffee.pk).exists()


def test_it_saves_twilio_settings_and_never_shows_the_token(admin):
    data = {"provider": "twilio", "twilio_account_sid": "AC123", "twilio_auth_token": "tok-very-secret",
            "from_number": "+14155550100", "messaging_service_sid": "", "per_second_limit": 1}
    assert admin.post("/settings/sms/", data).status_code == 302
    config = SmsSettings.objects.get()
    assert str(config.twilio_auth_token) == "tok-very-secret"
    page = admin.get("/settings/sms/").content.decode()
    assert "tok-very-secret" not in page
    assert 'data-secret-state>set<' in page
    # Saving again with the box empty keeps the token.
    admin.post("/settings/sms/", {**data, "twilio_auth_token": "", "per_second_limit": 2})
    config.refresh_from_db()
    assert str(config.twilio_auth_token) == "tok-very-secret" and config.per_second_limit == 2


def test_it_shows_sms_errors_next_to_the_field_without_echoing_the_token(admin):
    data = {"provider": "twilio", "twilio_account_sid": "AC123", "twilio_auth_token": "tok-typed-now",
            "from_number": "12", "per_second_limit": 1}
    html = admin.post("/settings/sms/", data).content.decode()
    assert "not a" in field_error(html, "from_number")
    assert "tok-typed-now" not in html
    html = admin.post("/settings/sms/", {**data, "from_number": "+14155550100", "twilio_auth_token": ""}).content.decode()
    assert "Twilio needs the account SID and the auth token" in field_error(html, "twilio_auth_token")
    assert not SmsSettings.objects.exists()
