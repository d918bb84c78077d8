"""/api/v1/sequences/{id}/steps: add, read, list, change, delete, reorder, validation."""

from __future__ import annotations

import pytest

from sequent.sequences import actions
from sequent.sequences.models import Step
from sequent.sequences.tests.test_api_sequences import CEO, errors_of


@pytest.fixture
def sequence(rep):
    return actions.do_create_sequence(rep, "Outreach")


def test_it_adds_steps_at_the_end_and_lists_them_in_order(api, sequence):
    email = api.post(
        f"sequences/{sequence.pk}/steps",
        {
            "kind": "email",
            "subject": "Quick question",
            "body": "Hi {{ contact.first_name }}",
            "cc": ["Boss@Example.com"],
        },
    )
    assert email.status_code == 201, email.content
    body = email.json()
    assert (body["position"], body["kind"], body["day"], body["cc"]) == (1, "email", 1, ["boss@example.com"])
    call = api.post(
        f"sequences/{sequence.pk}/steps",
        {"kind": "call_reminder", "day": 3, "conditions": [CEO], "task_title": "Call {name}"},
    ).json()
    assert (call["position"], call["day"], call["conditions"]) == (2, 3, [CEO])

    listed = api.get(f"sequences/{sequence.pk}/steps").json()
    assert listed["count"] == 2
    assert [s["id"] for s in listed["items"]] == [body["id"], call["id"]]
    assert api.get(f"sequences/{sequence.pk}/steps/{call['id']}").json() == call
    assert [s["id"] for s in api.get(f"sequences/{sequence.pk}").json()["steps"]] == [body["id"], call["id"]]


def test_it_changes_only_the_fields_sent(api, sequence):
    step = actions.do_add_step(sequence, "email", subject="Hello", body="Hi")
    response = api.patch(f"sequences/{sequence.pk}/steps/{step.pk}", {"day": 4, "track_opens": False})
    assert response.status_code == 200
    body = response.json()
    assert (body["day"], body["track_opens"], body["subject"], body["body"]) == (4, False, "Hello", "Hi")


def test_it_names_the_refused_step_condition_and_refuses_a_ninth(api, sequence):
    opened = {"field": "email.opened", "op": "is_true", "value": None, "of": "previous"}
    bad = {
        "kind": "follow_up",
        "conditions": [opened, CEO, {"field": "email.opened", "op": "contains", "value": "x"}],
    }
    reasons = errors_of(api.post(f"sequences/{sequence.pk}/steps", bad))
    assert list(reasons) == ["conditions[2]"]
    assert "is_true or is_false" in reasons["conditions[2]"]
    nine = {"kind": "follow_up", "conditions": [CEO] * 9}
    assert errors_of(api.post(f"sequences/{sequence.pk}/steps", nine)) == {
        "conditions": "at most 8 conditions, got 9"
    }
    assert (
        api.post(f"sequences/{sequence.pk}/steps", {"kind": "follow_up", "conditions": [CEO] * 8}).status_code
        == 201
    )
    assert Step.objects.count() == 1


def test_it_says_what_a_step_of_each_kind_needs(api, sequence):
    assert set(errors_of(api.post(f"sequences/{sequence.pk}/steps", {"kind": "email"}))) == {"subject"}
    assert set(errors_of(api.post(f"sequences/{sequence.pk}/steps", {"kind": "sms"}))) == {"sms_body"}
    assert set(errors_of(api.post(f"sequences/{sequence.pk}/steps", {"kind": "fax"}))) == {"kind"}
    assert set(errors_of(api.post(f"sequences/{sequence.pk}/steps", {"kind": "follow_up", "day": 0}))) == {
        "day"
    }
    # A reply in the thread of the previous email needs no subject of its own.
    reply = api.post(f"sequences/{sequence.pk}/steps", {"kind": "email", "thread": "reply"})
    assert reply.status_code == 201


def test_it_deletes_a_step_and_keeps_the_others_in_order(api, sequence):
    first, second, third = (actions.do_add_step(sequence, "follow_up", day=d) for d in (1, 2, 3))
    assert api.delete(f"sequences/{sequence.pk}/steps/{second.pk}").status_code == 204
    assert [s["id"] for s in api.get(f"sequences/{sequence.pk}/steps").json()["items"]] == [
        first.pk,
        third.pk,
    ]
    assert api.get(f"sequences/{sequence.pk}/steps/{second.pk}").status_code == 404
    assert api.patch(f"sequences/{sequence.pk}/steps/{second.pk}", {"day": 9}).status_code == 404


def test_it_reorders_steps(api, sequence):
    first, second, third = (actions.do_add_step(sequence, "follow_up", day=d) for d in (1, 2, 3))
    response = api.post(
        f"sequences/{sequence.pk}/steps/reorder", {"step_ids": [third.pk, first.pk, second.pk]}
    )
    assert response.status_code == 200
    assert [(s["id"], s["position"]) for s in response.json()] == [
        (third.pk, 1),
        (first.pk, 2),
        (second.pk, 3),
    ]
    assert [s["id"] for s in api.get(f"sequences/{sequence.pk}/steps").json()["items"]] == [
        third.pk,
        first.pk,
        second.pk,
    ]

    missing = api.post(f"sequences/{sequence.pk}/steps/reorder", {"step_ids": [third.pk, first.pk]})
    assert set(errors_of(missing)) == {"step_ids"}
    assert list(Step.objects.live().values_list("pk", flat=True)) == [third.pk, first.pk, second.pk]


@pytest.mark.parametrize("field", ["subject", "task_title"])
def test_it_refuses_a_line_break_in_a_one_line_field(api, sequence, field):
    kind = "email" if field == "subject" else "follow_up"
    response = api.post(
        f"sequences/{sequence.pk}/steps",
        {"kind": kind, "subject": "Hello", "task_title": "Call", field: "Hello\r\nBcc: all@example.com"},
    )
    assert response.status_code == 422
    assert errors_of(response) == {field: "must be one line (no line break)"}
    assert not Step.objects.filter(sequence=sequence).exists()
