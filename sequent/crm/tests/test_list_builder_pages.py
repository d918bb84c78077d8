"""The condition builder, saved views and bulk actions of the contact and account lists."""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group

from sequent.crm.models import Account, Contact, CustomField, LastContactedMode, SavedView, Tag
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import SequenceContact


@pytest.fixture
def signed_in(client, rep):
    client.force_login(rep)
    return client


def names_in(response) -> list[str]:
    body = response.content.decode()
    return re.findall(
        r'<tr>\s*(?:<td><input[^>]*></td>\s*)?<td><a href="/(?:contacts|accounts)/\d+/">([^<]+)</a>', body
    )


def builder_query(clauses, match="all", **extra) -> str:
    """The query string the builder form sends for *clauses* (field, op, value[, value2])."""
    params: list[tuple[str, str]] = [("match", match)]
    for clause in clauses:
        field, op, value, value2 = (*clause, "", "")[:4]
        params += [("field", field), ("op", op), ("value", value), ("value2", value2)]
    params += list(extra.items())
    return urlencode(params)


@pytest.fixture
def people(rep, other_rep):
    CustomField.objects.create(record_type="contact", key="budget", label="Budget", field_type="number")
    CustomField.objects.create(
        record_type="account", key="tier", label="Tier", field_type="choice", choices=["Gold", "Silver"]
    )
    acme = Account.objects.create(name="Acme", industry="Anvils", custom={"tier": "Gold"})
    globex = Account.objects.create(name="Globex", industry="Energy", custom={"tier": "Silver"})
    vip = Tag.objects.create(name="vip")
    made = {
        "Ada Lovelace": Contact.objects.create(
            first_name="Ada",
            last_name="Lovelace",
            email="ada@acme.test",
            account=acme,
            owner=rep,
            custom={"budget": 5000},
            last_contacted_mode=LastContactedMode.REPLIED,
        ),
        "Grace Hopper": Contact.objects.create(
            first_name="Grace",
            last_name="Hopper",
            email="grace@globex.test",
            account=globex,
            owner=other_rep,
            custom={"budget": 120},
            job_title="Admiral",
        ),
        "Alan Turing": Contact.objects.create(
            first_name="Alan", last_name="Turing", email="alan@acme.test", owner=rep
        ),
    }
    made["Grace Hopper"].tags.add(vip)
    return made


CASES = [
    [("email", "contains", "acme.test")],
    [("custom.budget", "gt", "1000")],
    [("custom.budget", "between", "100", "200")],
    [("account.industry", "equals", "anvils"), ("owner", "equals", "me")],
    [("account.custom.tier", "equals", "Silver")],
    [("tags", "contains", "vip")],
    [("tags", "is_empty", "")],
    [("last_contacted_mode", "any_of", "replied, no_reply")],
    [("job_title", "is_not_empty", "")],
    [("first_name", "none_of", "Ada, Alan")],
]


@pytest.mark.parametrize("clauses", CASES)
def test_it_lists_the_same_contacts_as_the_api_for_the_same_conditions(signed_in, api, people, clauses):
    page = names_in(signed_in.get(f"/contacts/?{builder_query(clauses)}"))

    as_json = [
        {
            "field": f,
            "op": op,
            "value": (
                None
                if op in ("is_empty", "is_not_empty")
                else [v.strip() for v in value.split(",")]
                if op in ("any_of", "none_of")
                else [value, rest[0]]
                if op == "between"
                else value
            ),
        }
        for f, op, value, *rest in clauses
    ]
    response = api.get("contacts", {"conditions": json.dumps(as_json)})
    assert response.status_code == 200, response.content
    expected = {f"{c['first_name']} {c['last_name']}" for c in response.json()["items"]}

    assert set(page) == expected
    assert page  # every case matches somebody, so the comparison means something


def test_it_lists_contacts_matching_any_of_the_conditions(signed_in, people):
    clauses = [("first_name", "equals", "Ada"), ("job_title", "equals", "admiral")]

    assert names_in(signed_in.get(f"/contacts/?{builder_query(clauses, match='all')}")) == []
    assert names_in(signed_in.get(f"/contacts/?{builder_query(clauses, match='any')}")) == [
        "Grace Hopper",
        "Ada Lovelace",
    ]


def test_it_filters_accounts_by_their_fields_and_custom_fields(signed_in, people):
    query = builder_query([("custom.tier", "equals", "gold")])

    assert names_in(signed_in.get(f"/accounts/?{query}")) == ["Acme"]


def test_it_shows_the_reason_next_to_the_wrong_condition(signed_in, people):
    query = builder_query([("first_name", "equals", "Ada"), ("custom.budget", "gt", "lots")])

    response = signed_in.get(f"/contacts/?{query}")

    body = response.content.decode()
    second_row = body.split('<fieldset class="clause')[2]
    assert "invalid" in second_row.split(">")[0]
    assert "needs a number, got &#x27;lots&#x27;" in second_row
    assert names_in(response) == []
    assert "Fix the condition marked above" in body


def test_it_refuses_a_ninth_condition(signed_in, people):
    query = builder_query([("first_name", "is_not_empty", "")] * 9)

    body = signed_in.get(f"/contacts/?{query}").content.decode()

    assert "at most 8 conditions" in body


def test_it_draws_the_operators_and_input_that_fit_the_chosen_field(signed_in, rep, other_rep, people):
    mine = sequence_actions.do_create_sequence(rep, "Q3 outreach")
    sequence_actions.do_create_sequence(other_rep, "Bob's secret")

    def row(**params) -> str:
        response = signed_in.get("/lists/contact/condition/", params)
        assert response.status_code == 200
        return response.content.decode()

    date_row = row(field="last_contacted_at", op="equals")  # "equals" does not fit a date: reset
    assert '<option value="on" selected>is on</option>' in date_row
    assert 'type="date"' in date_row
    assert 'type="number"' in row(field="custom.budget")
    choice_row = row(field="last_contacted_mode")
    assert '<option value="opened_no_reply">Opened but no reply</option>' in choice_row
    boolean_row = row(field="email_opt_out")
    assert "is yes" in boolean_row and 'type="hidden" name="value"' in boolean_row
    assert 'type="number" min="1"' in row(field="created_at", op="in_last_days")
    between = row(field="custom.budget", op="between")
    assert 'name="value2"' in between and 'aria-label="To"' in between
    sequence_row = row(field="sequence")
    assert f'<option value="{mine.pk}">Q3 outreach</option>' in sequence_row
    assert "secret" not in sequence_row
    assert "has tag" in row(field="tags")
    assert 'name="field"' in row(new="1")


def test_it_answers_404_for_an_unknown_record_type(signed_in):
    assert signed_in.get("/lists/user/condition/").status_code == 404
    assert signed_in.get("/lists/user/export.csv").status_code == 404


def test_it_saves_opens_and_deletes_a_view(signed_in, rep, people):
    query = builder_query([("email", "contains", "acme.test")])

    response = signed_in.post("/lists/contact/views/", {"name": "Acme people", "query": query})

    view = SavedView.objects.get(owner=rep, name="Acme people")
    assert view.conditions == [{"field": "email", "op": "contains", "value": "acme.test"}]
    assert response.status_code == 302 and response["Location"] == f"/contacts/?view={view.pk}"
    opened = signed_in.get(response["Location"])
    body = opened.content.decode()
    assert "Acme people" in body
    assert 'value="acme.test"' in body  # the builder shows the view's conditions
    assert sorted(names_in(opened)) == ["Ada Lovelace", "Alan Turing"]

    signed_in.post(f"/lists/contact/views/{view.pk}/delete/")
    assert not SavedView.objects.filter(pk=view.pk).exists()


def test_it_says_why_a_view_was_not_saved(signed_in, rep, people):
    any_query = builder_query(
        [("first_name", "equals", "Ada"), ("last_name", "equals", "Hopper")], match="any"
    )
    response = signed_in.post("/lists/contact/views/", {"name": "Either", "query": any_query}, follow=True)
    assert "switch to “all” to save it" in response.content.decode()

    SavedView.objects.create(owner=rep, name="Taken")
    query = builder_query([("first_name", "equals", "Ada")])
    response = signed_in.post("/lists/contact/views/", {"name": "Taken", "query": query}, follow=True)
    assert "already have a view named" in response.content.decode()
    assert SavedView.objects.filter(owner=rep).count() == 1


def test_it_hides_another_users_views(signed_in, rep, other_rep, people):
    theirs = SavedView.objects.create(owner=other_rep, name="Bob's view", conditions=[])
    SavedView.objects.create(owner=rep, name="Account view", record_type="account")

    assert signed_in.get(f"/contacts/?view={theirs.pk}").status_code == 404
    assert signed_in.post(f"/lists/contact/views/{theirs.pk}/delete/").status_code == 404
    assert SavedView.objects.filter(pk=theirs.pk).exists()
    body = signed_in.get("/contacts/").content.decode()
    assert "Bob&#x27;s view" not in body
    assert "Account view" not in body  # an account view belongs to the account list


def test_it_adds_selected_contacts_to_the_users_own_sequence(signed_in, rep, other_rep, people):
    mine = sequence_actions.do_create_sequence(rep, "Q3 outreach")
    theirs = sequence_actions.do_create_sequence(other_rep, "Bob's")
    ada, grace = people["Ada Lovelace"], people["Grace Hopper"]

    response = signed_in.post(
        "/contacts/bulk/", {"action": "sequence", "sequence": mine.pk, "ids": [ada.pk, grace.pk]}, follow=True
    )

    assert set(SequenceContact.objects.filter(sequence=mine).values_list("contact_id", flat=True)) == {
        ada.pk,
        grace.pk,
    }
    assert "Added 2 of 2 selected contacts to “Q3 outreach”" in response.content.decode()
    assert (
        signed_in.post(
            "/contacts/bulk/", {"action": "sequence", "sequence": theirs.pk, "ids": [ada.pk]}
        ).status_code
        == 404
    )
    assert not SequenceContact.objects.filter(sequence=theirs).exists()


def test_it_adds_every_matching_contact_and_offers_only_editable_sequences(signed_in, rep, people):
    mine = sequence_actions.do_create_sequence(rep, "Q3 outreach")
    query = builder_query([("email", "contains", "acme.test")])

    signed_in.post(
        "/contacts/bulk/", {"action": "sequence", "sequence": mine.pk, "all_matching": "1", "query": query}
    )

    added = set(SequenceContact.objects.filter(sequence=mine).values_list("contact_id", flat=True))
    assert added == {people["Ada Lovelace"].pk, people["Alan Turing"].pk}
    assert "Add to sequence" in signed_in.get("/contacts/").content.decode()

    group = Group.objects.create(name="Viewers")
    group.permissions.set(rep.groups.get().permissions.exclude(codename="edit_sales_sequences"))
    rep.groups.set([group])
    assert "Add to sequence" not in signed_in.get("/contacts/").content.decode()
    refused = signed_in.post(
        "/contacts/bulk/", {"action": "sequence", "sequence": mine.pk, "ids": [people["Grace Hopper"].pk]}
    )
    assert refused.status_code == 404


def test_it_tags_the_selected_contacts(signed_in, people):
    ada, alan = people["Ada Lovelace"], people["Alan Turing"]
    Tag.objects.create(name="Hot")

    response = signed_in.post(
        "/contacts/bulk/", {"action": "tag", "tag": "hot", "ids": [ada.pk, alan.pk]}, follow=True
    )

    assert "Tagged 2 contacts" in response.content.decode()
    assert list(ada.tags.values_list("name", flat=True)) == ["Hot"]
    assert sorted(names_in(signed_in.get(f"/contacts/?{builder_query([('tags', 'contains', 'hot')])}"))) == [
        "Ada Lovelace",
        "Alan Turing",
    ]
