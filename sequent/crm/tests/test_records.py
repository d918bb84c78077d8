"""The record actions: normalisation, validation naming the field, tags, custom values, permissions."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from sequent.crm import records
from sequent.crm.models import Account, ActivityKind, ActivityType, Contact, CustomField, EmailStatus, Tag
from sequent.lib import clock

T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


def refused(call, *args, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        call(*args, **kwargs)
    return info.value.message_dict


@pytest.fixture
def budget(db):
    return CustomField.objects.create(
        record_type="contact", key="budget", label="Budget", field_type="number"
    )


@pytest.fixture
def segment(db):
    return CustomField.objects.create(
        record_type="contact",
        key="segment",
        label="Segment",
        field_type="choice",
        choices=["SMB", "Enterprise"],
    )


def test_it_normalises_email_phone_and_country(rep):
    contact = records.do_create_contact(
        rep,
        {
            "email": " Dana@Example.COM ",
            "mobile": "020 7946 0018",
            "country": "gb",
            "time_zone": "Europe/London",
        },
    )
    contact.refresh_from_db()
    assert contact.email == "dana@example.com"
    assert contact.mobile == "+442079460018"
    assert contact.country == "GB"
    assert contact.owner == rep


def test_it_reads_a_new_mobile_in_the_contacts_stored_country(rep):
    contact = records.do_create_contact(rep, {"country": "US"})
    records.do_update_contact(contact, {"mobile": "(415) 555-0132"}, user=rep)
    assert Contact.objects.get(pk=contact.pk).mobile == "+14155550132"


def test_it_names_every_bad_field_at_once(rep, budget):
    errors = refused(
        records.do_create_contact,
        rep,
        {
            "email": "not-an-email",
            "mobile": "12",
            "time_zone": "Mars/Base",
            "custom": {"budget": "lots", "colour": "red"},
        },
    )
    assert set(errors) == {"email", "mobile", "time_zone", "custom.budget", "custom.colour"}
    assert "not a number" in errors["custom.budget"][0]
    assert "unknown custom field" in errors["custom.colour"][0]
    assert Contact.objects.count() == 0


def test_it_refuses_a_second_contact_with_the_same_email(rep):
    first = records.do_create_contact(rep, {"email": "dana@example.com"})
    errors = refused(records.do_create_contact, rep, {"email": "DANA@example.com"})
    assert f"contact {first.pk} already has" in errors["email"][0]


def test_it_reuses_tags_whatever_their_case(rep):
    Tag.objects.create(name="VIP")
    contact = records.do_create_contact(rep, {"tags": ["vip", " Hot  lead ", "hot lead", ""]})
    assert sorted(contact.tags.values_list("name", flat=True)) == ["Hot lead", "VIP"]
    assert Tag.objects.count() == 2


def test_it_links_an_account_by_name_creating_it_once(rep):
    first = records.do_create_contact(rep, {"account_name": "Acme"})
    second = records.do_create_contact(rep, {"account_name": "ACME"})
    assert first.account_id == second.account_id
    assert Account.objects.get().owner == rep


def test_it_merges_custom_values_and_clears_a_key_given_null(rep, budget, segment):
    contact = records.do_create_contact(rep, {"custom": {"budget": "1,500", "segment": "smb"}})
    assert contact.custom == {"budget": 1500, "segment": "SMB"}
    records.do_update_contact(contact, {"custom": {"budget": None, "segment": "enterprise"}}, user=rep)
    assert Contact.objects.get(pk=contact.pk).custom == {"segment": "Enterprise"}


def test_it_gives_a_changed_email_a_fresh_status(rep):
    contact = records.do_create_contact(rep, {"email": "old@example.com"})
    Contact.objects.filter(pk=contact.pk).update(email_status=EmailStatus.BOUNCED)
    contact.refresh_from_db()
    records.do_update_contact(contact, {"first_name": "Dana"}, user=rep)
    assert Contact.objects.get(pk=contact.pk).email_status == EmailStatus.BOUNCED
    records.do_update_contact(contact, {"email": "new@example.com"}, user=rep)
    assert Contact.objects.get(pk=contact.pk).email_status == EmailStatus.OK


def test_it_stamps_updates_with_the_clock(rep):
    clock.set_now(T0)
    contact = records.do_create_contact(rep, {"first_name": "Dana"})
    clock.set_now(T0 + dt.timedelta(hours=1))
    records.do_update_contact(contact, {"last_name": "Lee"}, user=rep)
    contact = Contact.objects.get(pk=contact.pk)
    assert (contact.created_at, contact.updated_at) == (T0, T0 + dt.timedelta(hours=1))


def test_it_lets_only_the_owner_or_a_manager_delete(rep, other_rep, admin_user):
    contact = records.do_create_contact(rep, {"first_name": "Dana"})
    with pytest.raises(PermissionDenied, match="owner"):
        records.do_delete_contact(contact, user=other_rep)
    records.do_delete_contact(contact, user=admin_user)
    assert not Contact.objects.exists()


def test_it_normalises_an_account_domain(rep):
    account = records.do_create_account(rep, {"name": "Acme", "domain": "https://www.Acme.com/about"})
    assert account.domain == "acme.com"
    errors = refused(records.do_create_account, rep, {"name": " ", "domain": "not a domain"})
    assert set(errors) == {"name", "domain"}


def test_it_derives_a_custom_field_key_from_its_label(admin_user):
    field = records.do_create_custom_field(
        admin_user, record_type="contact", label="Annual Budget", field_type="number"
    )
    assert field.key == "annual_budget"
    errors = refused(
        records.do_create_custom_field,
        admin_user,
        record_type="contact",
        label="Annual budget",
        field_type="text",
    )
    assert "already exists" in errors["key"][0]


def test_it_requires_choices_only_for_choice_fields(admin_user):
    errors = refused(
        records.do_create_custom_field, admin_user, record_type="contact", label="Tier", field_type="choice"
    )
    assert "at least one choice" in errors["choices"][0]
    errors = refused(
        records.do_create_custom_field,
        admin_user,
        record_type="contact",
        label="Note",
        field_type="text",
        choices=["a"],
    )
    assert "only choice fields" in errors["choices"][0]


def test_it_erases_a_deleted_custom_fields_values_from_every_record(rep, admin_user, budget, segment):
    keep = records.do_create_contact(rep, {"custom": {"budget": 10, "segment": "SMB"}})
    only = records.do_create_contact(rep, {"custom": {"budget": 20}})
    records.do_delete_custom_field(admin_user, budget)
    assert Contact.objects.get(pk=keep.pk).custom == {"segment": "SMB"}
    assert Contact.objects.get(pk=only.pk).custom == {}
    assert not CustomField.objects.filter(key="budget").exists()


def test_it_refuses_custom_field_changes_to_a_rep(rep, budget):
    with pytest.raises(PermissionDenied, match="Manage workspace"):
        records.do_update_custom_field(rep, budget, label="Money")


def test_it_keeps_custom_activity_types_apart_from_built_in_ones(admin_user):
    records.do_create_activity_type(admin_user, "Lunch")
    assert "already exists" in refused(records.do_create_activity_type, admin_user, "lunch")["name"][0]
    assert "built-in" in refused(records.do_create_activity_type, admin_user, "Call")["name"][0]


def test_it_only_retires_an_activity_type_that_was_used(rep, admin_user):
    lunch = records.do_create_activity_type(admin_user, "Lunch")
    contact = records.do_create_contact(rep, {"first_name": "Dana"})
    records.do_log_activity(contact, rep, kind=ActivityKind.CUSTOM, custom_type="lunch")
    assert "is_active" in refused(records.do_delete_activity_type, admin_user, lunch)["id"][0]
    records.do_update_activity_type(admin_user, lunch, is_active=False)
    errors = refused(records.do_log_activity, contact, rep, kind=ActivityKind.CUSTOM, custom_type="Lunch")
    assert "no active activity type" in errors["custom_type"][0]
    assert ActivityType.objects.filter(name="Lunch").exists()


def test_it_refuses_to_log_email_and_sms_activities_by_hand(rep):
    contact = records.do_create_contact(rep, {"first_name": "Dana"})
    for kind in ("email_replied", "sms_sent"):
        assert (
            "recorded by the system" in refused(records.do_log_activity, contact, rep, kind=kind)["kind"][0]
        )
    assert contact.activities.count() == 0


def test_it_refuses_an_activity_in_the_future(rep):
    clock.set_now(T0)
    contact = records.do_create_contact(rep, {"first_name": "Dana"})
    errors = refused(
        records.do_log_activity, contact, rep, kind="meeting", occurred_at=T0 + dt.timedelta(days=1)
    )
    assert errors == {"occurred_at": ["cannot be in the future"]}
