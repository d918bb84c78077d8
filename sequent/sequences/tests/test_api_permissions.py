"""Every operation of the sequences router, walked: without "View Sales Sequences" each
answers 404; for another user's sequence, step or enrollment each answers 404 and
changes nothing. New endpoints are picked up by the walk automatically."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from sequent.mail.models import MessageStatus, OutboundMessage
from sequent.sequences import actions
from sequent.sequences.api import router
from sequent.sequences.models import Enrollment, Sequence, Step

# A valid body for each operation that takes one, so that a refusal cannot come from
# validation. A new operation with a body needs an entry here (the walk fails without).
BODIES = {
    ("POST", ""): {"name": "Mine now"},
    ("PATCH", "/{sequence_id}"): {"name": "Mine now"},
    ("POST", "/{sequence_id}/steps"): {"kind": "follow_up"},
    ("PATCH", "/{sequence_id}/steps/{step_id}"): {"day": 2},
    ("POST", "/{sequence_id}/steps/reorder"): "step ids",
    ("POST", "/{sequence_id}/enrollments"): "contact ids",
}


def operations() -> list[tuple[str, str]]:
    """(method, path template) of every operation the router serves."""
    found = []
    for path, view in router.path_operations.items():
        plain = re.sub(r"\{\w+:(\w+)\}", r"{\1}", path)
        for operation in view.operations:
            found.extend((method, plain) for method in operation.methods)
    return sorted(found)


@pytest.fixture
def owned(rep, make_contact):
    """A rep's active sequence with two steps, an enrollment and a queued email."""
    contact = make_contact()
    sequence = actions.do_create_sequence(rep, "Alice's outreach")
    first = actions.do_add_step(sequence, "email", subject="Hello")
    second = actions.do_add_step(sequence, "follow_up", day=2)
    actions.do_activate(sequence)
    enrollment = Enrollment.objects.create(sequence=sequence, contact=contact)
    OutboundMessage.objects.create(
        enrollment=enrollment,
        step=first,
        sequence=sequence,
        contact=contact,
        owner=rep,
        to_email=contact.email,
        message_id="<walk@example.com>",
    )
    return {"sequence": sequence, "steps": [first, second], "enrollment": enrollment, "contact": contact}


def call(client, method: str, template: str, owned: dict):
    ids = {
        "sequence_id": owned["sequence"].pk,
        "step_id": owned["steps"][0].pk,
        "enrollment_id": owned["enrollment"].pk,
    }
    path = "sequences" + template.format(**ids)
    body = BODIES.get((method, template))
    if body == "step ids":
        body = {"step_ids": [s.pk for s in reversed(owned["steps"])]}
    elif body == "contact ids":
        body = {"contact_ids": [owned["contact"].pk]}
    if method == "GET":
        return client.get(path)
    if method == "DELETE":
        return client.delete(path)
    return getattr(client, method.lower())(path, body if body is not None else {})


def test_it_walks_every_operation_the_api_publishes_for_sequences():
    # The walks below must not pass by finding nothing: they cover what OpenAPI lists.
    from sequent.api.root import api

    prefix = "/api/v1/sequences"
    published = sorted(
        (method.upper(), path.removeprefix(prefix))
        for path, methods in api.get_openapi_schema()["paths"].items()
        if path == prefix or path.startswith(prefix + "/")
        for method in methods
    )
    assert operations() == published
    assert len(published) > 20


def test_it_hides_every_endpoint_from_a_user_without_view_permission(rep, api, owned):
    rep.groups.set([Group.objects.create(name="Contacts only")])
    for method, template in operations():
        response = call(api, method, template, owned)
        assert response.status_code == 404, (method, template, response.content)
        assert response.json() == {"detail": "Not Found"}
    # Refused before parsing: a malformed body is not a 422 either.
    assert api.post("sequences", {"colour": "red"}).status_code == 404
    sequence = Sequence.objects.get()
    assert (sequence.name, sequence.status) == ("Alice's outreach", "active")


def test_it_asks_for_credentials_before_anything_else(client, owned):
    for method, template in operations():
        response = getattr(client, method.lower())(
            "/api/v1/sequences"
            + template.format(
                sequence_id=owned["sequence"].pk,
                step_id=owned["steps"][0].pk,
                enrollment_id=owned["enrollment"].pk,
            )
        )
        assert response.status_code == 401, (method, template)


def test_it_applies_the_same_gate_to_the_browser_session(client, rep, owned):
    client.force_login(rep)
    assert client.get("/api/v1/sequences").json()["count"] == 1
    rep.groups.set([Group.objects.create(name="Contacts only")])
    assert client.get("/api/v1/sequences").status_code == 404
    assert client.get(f"/api/v1/sequences/{owned['sequence'].pk}/metrics").status_code == 404


def test_it_answers_404_for_another_users_objects_everywhere(other_api, owned):
    for method, template in operations():
        if "{sequence_id}" not in template:
            continue
        response = call(other_api, method, template, owned)
        assert response.status_code == 404, (method, template, response.content)
        assert response.json() == {"detail": "Not Found"}

    sequence = Sequence.objects.get(pk=owned["sequence"].pk)
    assert (sequence.name, sequence.status) == ("Alice's outreach", "active")
    assert [s.pk for s in Step.objects.filter(sequence=sequence).live()] == [s.pk for s in owned["steps"]]
    assert Step.objects.get(pk=owned["steps"][0].pk).day == 1
    assert Enrollment.objects.get().status == "active"
    assert OutboundMessage.objects.get().status == MessageStatus.QUEUED
    assert not sequence.hand_added.exists()


def test_it_lists_and_creates_only_in_the_users_own_scope(other_api, owned):
    assert other_api.get("sequences").json()["count"] == 0
    created = call(other_api, "POST", "", owned)
    assert created.status_code == 201
    assert Sequence.objects.get(pk=created.json()["id"]).owner.email == "bob@example.com"
    assert [row["name"] for row in other_api.get("sequences").json()["items"]] == ["Mine now"]


def test_it_does_not_reach_a_step_or_enrollment_through_another_sequence(api, rep, owned):
    # A step id of sequence A under sequence B of the same user is not found either.
    other = actions.do_create_sequence(rep, "Second")
    step, enrollment = owned["steps"][0], owned["enrollment"]
    assert api.get(f"sequences/{other.pk}/steps/{step.pk}").status_code == 404
    assert api.get(f"sequences/{other.pk}/enrollments/{enrollment.pk}/timeline").status_code == 404
    assert api.delete(f"sequences/{other.pk}/enrollments/{enrollment.pk}").status_code == 404
    assert Enrollment.objects.get().status == "active"
