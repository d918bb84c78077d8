"""The activities dashboard API: filters, counts, actions on one task and in bulk, scoping."""

from __future__ import annotations

import pytest

from sequent.lib import clock
from sequent.mail.models import MessageStatus, OutboundMessage
from sequent.sequences.tests.conftest import at, run_due
from sequent.tasks.models import Task, TaskKind, TaskStatus


@pytest.fixture
def make_task(rep, make_contact):
    def make(kind=TaskKind.FOLLOW_UP, due="2026-03-04 09:00", owner=None, contact=None, **fields):
        return Task.objects.create(
            owner=owner or rep,
            contact=contact or make_contact(),
            kind=kind,
            title=fields.pop("title", f"{kind} task"),
            due_at=at(due),
            **fields,
        )

    return make


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def test_it_answers_404_for_another_users_task(make_task, other_rep, api, other_api):
    theirs = make_task(owner=other_rep)

    assert api.get(f"tasks/{theirs.pk}").status_code == 404
    assert api.post(f"tasks/{theirs.pk}/complete", {}).status_code == 404
    assert api.post(f"tasks/{theirs.pk}/skip").status_code == 404
    assert ids(api.get("tasks")) == []
    bulk = api.post("tasks/bulk/skip", {"ids": [theirs.pk]}).json()
    assert bulk == {"done": [], "refused": [{"id": theirs.pk, "reason": "not found"}]}
    theirs.refresh_from_db()
    assert theirs.status == TaskStatus.OPEN
    assert ids(other_api.get("tasks")) == [theirs.pk]


def test_it_filters_by_due_in_the_users_time_zone(make_task, rep, api):
    rep.time_zone = "America/Los_Angeles"
    rep.save()
    # Now is Tuesday 22:00 in Los Angeles (Wednesday 06:00 UTC).
    past = make_task(due="2026-03-03 20:00")  # Tuesday noon there: today and overdue
    tonight = make_task(due="2026-03-04 07:00")  # Tuesday 23:00 there
    tomorrow = make_task(due="2026-03-04 09:00")  # Wednesday 01:00 there: this week only
    make_task(due="2026-03-10 09:00")  # next week
    make_task(due="2026-03-03 19:00", status=TaskStatus.DONE)  # done: today, never overdue

    with clock.frozen(at("2026-03-04 06:00")):
        assert ids(api.get("tasks", {"due": "overdue"})) == [past.pk]
        assert ids(api.get("tasks", {"due": "today", "status": "open"})) == [past.pk, tonight.pk]
        assert ids(api.get("tasks", {"due": "this_week", "status": "open"})) == [
            past.pk,
            tonight.pk,
            tomorrow.pk,
        ]
        counts = api.get("tasks/counts", {"status": "open"}).json()
    assert counts["due"] == {"overdue": 1, "today": 2, "this_week": 3}
    assert counts["status"] == {"open": 4, "done": 1, "skipped": 0}


def test_it_filters_by_kind_sequence_and_contact(make_contact, make_sequence, make_task, api):
    dana, lee = make_contact(), make_contact()
    sequence = make_sequence(
        [{"kind": "call_reminder", "day": 1}, {"kind": "email_reminder", "day": 1}], contacts=[dana, lee]
    )
    run_due("2026-03-02 09:05")
    loose = make_task(contact=dana)

    with clock.frozen(at("2026-03-02 10:00")):
        in_sequence = ids(api.get("tasks", {"sequence_id": sequence.pk}))
        calls = ids(api.get("tasks", {"kind": "call_reminder"}))
        for_dana = ids(api.get("tasks", {"contact_id": dana.pk}))
        counts = api.get("tasks/counts", {"contact_id": dana.pk}).json()
    assert len(in_sequence) == 4 and loose.pk not in in_sequence
    assert set(calls) == set(Task.objects.filter(kind=TaskKind.CALL_REMINDER).values_list("pk", flat=True))
    assert len(for_dana) == 3 and loose.pk in for_dana
    assert counts["kind"] == {"follow_up": 1, "call_reminder": 1, "email_reminder": 1}


def test_it_snoozes_a_task_to_a_later_time_only(make_task, api):
    task = make_task()
    with clock.frozen(at("2026-03-04 10:00")):
        past = api.post(f"tasks/{task.pk}/snooze", {"until": "2026-03-04T09:00:00Z"})
        later = api.post(f"tasks/{task.pk}/snooze", {"until": "2026-03-05T15:00:00Z"})
        overdue = ids(api.get("tasks", {"due": "overdue"}))
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "until"
    assert later.json()["due_at"].startswith("2026-03-05T15:00")
    assert overdue == []


def test_it_reassigns_a_task_to_another_active_user(make_task, other_rep, admin_user, api, other_api):
    task = make_task()
    admin_user.is_active = False
    admin_user.save()

    inactive = api.post(f"tasks/{task.pk}/reassign", {"owner_id": admin_user.pk})
    moved = api.post(f"tasks/{task.pk}/reassign", {"owner_id": other_rep.pk})

    assert inactive.status_code == 422 and inactive.json()["errors"][0]["field"] == "owner_id"
    assert moved.json()["owner_id"] == other_rep.pk
    assert api.get(f"tasks/{task.pk}").status_code == 404
    assert ids(other_api.get("tasks")) == [task.pk]


def test_it_cancels_the_draft_when_an_email_reminder_is_skipped(make_contact, make_sequence, api):
    make_sequence([{"kind": "email_reminder", "day": 1}], contacts=[make_contact()])
    run_due("2026-03-02 09:05")
    task = Task.objects.get()

    assert (
        api.post(f"tasks/{task.pk}/complete", {}).status_code == 422
    )  # sent or skipped, never completed empty
    assert api.post(f"tasks/{task.pk}/skip").json()["status"] == TaskStatus.SKIPPED
    assert OutboundMessage.objects.get().status == MessageStatus.CANCELLED
    again = api.post(f"tasks/{task.pk}/skip")
    assert again.status_code == 422 and "already skipped" in again.json()["errors"][0]["reason"]


def test_it_saves_a_draft_edit_without_sending(make_contact, make_sequence, api):
    make_sequence([{"kind": "email_reminder", "day": 1}], contacts=[make_contact()])
    run_due("2026-03-02 09:05")
    task = Task.objects.get()

    saved = api.put(f"tasks/{task.pk}/draft", {"subject": "Mine", "body": "<p>My words</p>"}).json()

    assert saved["draft"] == {"subject": "Mine", "body": "<p>My words</p>", "error": None}
    assert saved["status"] == TaskStatus.OPEN
    assert OutboundMessage.objects.get().status == MessageStatus.DRAFT


def test_it_bulk_completes_and_lists_each_refusal(make_task, api):
    call = make_task(kind=TaskKind.CALL_REMINDER)
    follow_up = make_task()
    reminder = make_task(kind=TaskKind.EMAIL_REMINDER)

    without_outcome = api.post("tasks/bulk/complete", {"ids": [call.pk]}).json()
    result = api.post(
        "tasks/bulk/complete", {"ids": [call.pk, follow_up.pk, reminder.pk], "outcome": "connected"}
    ).json()

    assert without_outcome["done"] == [] and "outcome" in without_outcome["refused"][0]["reason"]
    assert sorted(result["done"]) == sorted([call.pk, follow_up.pk])
    assert [r["id"] for r in result["refused"]] == [reminder.pk]
    call.refresh_from_db()
    assert (call.status, call.outcome) == (TaskStatus.DONE, "connected")
    assert call.contact.activities.get().kind == "call_outgoing"


def test_it_bulk_skips(make_task, api):
    tasks = [make_task() for _ in range(3)]
    result = api.post("tasks/bulk/skip", {"ids": [t.pk for t in tasks]}).json()
    assert sorted(result["done"]) == sorted(t.pk for t in tasks)
    assert set(Task.objects.values_list("status", flat=True)) == {TaskStatus.SKIPPED}


def test_it_shows_task_notes_rendered_for_the_contact(make_contact, make_sequence, api):
    contact = make_contact(first_name="Dana")
    make_sequence(
        [{"kind": "follow_up", "day": 1, "task_notes": "Ask {{ contact.first_name }} about {{ sequence.name }}"}],
        contacts=[contact],
        name="Spring pilot",
    )
    run_due("2026-03-02 09:05")

    [item] = api.get("tasks").json()["items"]

    assert item["notes"] == "Ask Dana about Spring pilot"
    assert Task.objects.get().notes.startswith("Ask {{")  # the step's text is kept as written
