"""The activities dashboard pages: today's and overdue work in the user's time zone,
filters and counts, completing a call reminder with its outcome, personalising and
sending an email reminder through the outbox, bulk actions, the "New task" form, and
another rep's task answering 404."""

from __future__ import annotations

import email
import email.policy
import html
import io

import pytest
from django.core.management import call_command
from django.test import Client

from sequent.crm.models import LastContactedMode
from sequent.lib import clock
from sequent.mail.models import Mailbox, MessageStatus, OutboundMessage, Security
from sequent.sequences.tests.conftest import at, run_due
from sequent.tasks.models import Task, TaskKind, TaskStatus


@pytest.fixture
def client_for():
    def make(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


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


def text(response) -> str:
    return html.unescape(response.content.decode())


def test_it_shows_todays_and_overdue_work_in_the_users_time_zone(rep, client_for, make_task):
    rep.time_zone = "America/Los_Angeles"
    rep.save()
    # Now is Tuesday 22:00 in Los Angeles (Wednesday 06:00 UTC).
    make_task(due="2026-03-02 20:00", title="Overdue call prep")  # Monday there
    make_task(due="2026-03-04 07:00", title="Tonight's follow-up")  # Tuesday 23:00 there
    make_task(due="2026-03-04 09:00", title="Tomorrow's follow-up")  # Wednesday 01:00 there
    make_task(due="2026-03-03 19:00", title="Already done", status=TaskStatus.DONE)

    with clock.frozen(at("2026-03-04 06:00")):
        page = client_for(rep).get("/tasks/")
        week = client_for(rep).get("/tasks/", {"due": "this_week"})

    body = text(page)
    assert "Overdue call prep" in body and "Tonight's follow-up" in body
    assert "Tomorrow's follow-up" not in body and "Already done" not in body
    assert "Tue 03 Mar 23:00" in body  # shown in the rep's zone, not UTC
    assert 'id="count-overdue">1<' in body and 'id="count-today">1<' in body
    assert "Tomorrow's follow-up" in text(week)


def test_it_says_nothing_is_due_when_the_day_is_clear(rep, client_for, make_task):
    make_task(due="2026-03-10 09:00")
    with clock.frozen(at("2026-03-04 06:00")):
        page = client_for(rep).get("/tasks/")
    assert "Nothing due today." in text(page)


def test_it_filters_by_kind_and_sequence_and_counts_each_kind(
    rep, client_for, make_contact, make_sequence, make_task
):
    dana = make_contact(first_name="Dana")
    sequence = make_sequence([{"kind": "call_reminder", "day": 1}], contacts=[dana], name="Spring push")
    run_due("2026-03-02 09:05")
    make_task(due="2026-03-02 09:00", title="Loose follow-up")

    with clock.frozen(at("2026-03-02 10:00")):
        calls = text(client_for(rep).get("/tasks/", {"kind": "call_reminder"}))
        in_sequence = text(client_for(rep).get("/tasks/", {"sequence": sequence.pk}))

    assert "Loose follow-up" not in calls and "Dana" in calls
    assert 'id="count-call_reminder">1<' in calls and 'id="count-follow_up">1<' in calls
    assert "Loose follow-up" not in in_sequence and "Spring push" in in_sequence


def test_it_answers_404_for_another_users_task(rep, other_rep, client_for, make_task):
    theirs = make_task(owner=other_rep, title="Bob's call")
    client = client_for(rep)

    assert "Bob's call" not in text(client.get("/tasks/", {"due": "all"}))
    assert client.get(f"/tasks/{theirs.pk}/").status_code == 404
    for action in ("complete", "skip", "snooze", "reassign", "send"):
        assert client.post(f"/tasks/{theirs.pk}/{action}/").status_code == 404
    client.post("/tasks/bulk/", {"ids": [theirs.pk], "action": "skip"})
    theirs.refresh_from_db()
    assert theirs.status == TaskStatus.OPEN


def test_it_completes_a_call_reminder_with_its_outcome_and_updates_the_contact(
    rep, client_for, make_contact, make_task
):
    contact = make_contact(first_name="Dana")
    task = make_task(kind=TaskKind.CALL_REMINDER, contact=contact, title="Call Dana")
    client = client_for(rep)

    with clock.frozen(at("2026-03-04 10:00")):
        page = text(client.get("/tasks/"))
        refused = client.post(f"/tasks/{task.pk}/complete/", {"next": "/tasks/"}, follow=True)
        done = client.post(
            f"/tasks/{task.pk}/complete/", {"outcome": "connected", "next": "/tasks/"}, follow=True
        )

    assert 'aria-label="Call outcome"' in page and "Complete call" in page
    assert "Not done: a call reminder needs the call's outcome" in text(refused)
    assert "Completed: Call Dana (Connected)." in text(done)
    task.refresh_from_db()
    contact.refresh_from_db()
    assert (task.status, task.outcome) == (TaskStatus.DONE, "connected")
    assert contact.last_contacted_mode == LastContactedMode.OUTGOING_CALL


def test_it_personalises_and_sends_an_email_reminder_through_the_outbox(
    settings, rep, client_for, make_contact, make_sequence, recorder
):
    settings.SEQUENT_BASE_URL = "https://sequent.example.com"
    handler, host, port = recorder
    Mailbox.objects.create(
        owner=rep,
        smtp_host=host,
        smtp_port=port,
        email_address="alice@acme.example",
        smtp_security=Security.NONE,
    )
    make_sequence(
        [
            {
                "kind": "email_reminder",
                "day": 1,
                "subject": "Idea for {{ contact.first_name }}",
                "body": "<p>Hi {{ contact.first_name }}</p>",
            }
        ],
        contacts=[make_contact(first_name="Dana")],
    )
    run_due("2026-03-02 09:05")
    task = Task.objects.get()
    client = client_for(rep)

    with clock.frozen(at("2026-03-02 10:00")):
        dashboard = text(client.get("/tasks/"))
        editor = client.get(f"/tasks/{task.pk}/")
        sent = client.post(
            f"/tasks/{task.pk}/send/",
            {"subject": "Dana, one idea", "body": "<p>Hi Dana, I wrote this myself.</p>", "send": "1"},
            follow=True,
        )

    assert "Personalise and send" in dashboard
    # The editor starts from the step rendered for the contact.
    assert (
        'value="Idea for Dana"' in editor.content.decode()
        and "&lt;p&gt;Hi Dana&lt;/p&gt;" in editor.content.decode()
    )
    assert "queued: it leaves with the next delivery run" in text(sent)
    message = OutboundMessage.objects.get()
    assert (message.status, message.subject) == (MessageStatus.QUEUED, "Dana, one idea")
    task.refresh_from_db()
    assert task.status == TaskStatus.DONE

    call_command("send_due", now=at("2026-03-02 10:01").isoformat(), stdout=io.StringIO())
    [received] = handler.received
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert str(parsed["Subject"]) == "Dana, one idea"
    assert b"I wrote this myself" in received.data


def test_it_saves_a_draft_without_sending(rep, client_for, make_contact, make_sequence):
    make_sequence([{"kind": "email_reminder", "day": 1}], contacts=[make_contact()])
    run_due("2026-03-02 09:05")
    task = Task.objects.get()

    client_for(rep).post(f"/tasks/{task.pk}/send/", {"subject": "Mine", "body": "<p>Mine</p>", "save": "1"})

    message = OutboundMessage.objects.get()
    assert (message.status, message.subject) == (MessageStatus.DRAFT, "Mine")
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


def test_it_bulk_completes_and_names_each_refusal(rep, client_for, make_task):
    follow_up = make_task(title="Send the deck")
    call = make_task(kind=TaskKind.CALL_REMINDER, title="Call them")

    page = client_for(rep).post(
        "/tasks/bulk/", {"ids": [follow_up.pk, call.pk], "action": "complete", "outcome": ""}, follow=True
    )

    body = text(page)
    assert "Completed 1 task." in body
    assert "Not done: Call them: a call reminder needs the call's outcome" in body
    follow_up.refresh_from_db()
    call.refresh_from_db()
    assert (follow_up.status, call.status) == (TaskStatus.DONE, TaskStatus.OPEN)


def test_it_snoozes_skips_and_reassigns(rep, other_rep, client_for, make_task):
    snoozed, skipped, given = make_task(), make_task(), make_task()
    client = client_for(rep)

    with clock.frozen(at("2026-03-04 10:00")):
        client.post(f"/tasks/{snoozed.pk}/snooze/", {"until": "tomorrow"})
        client.post(f"/tasks/{skipped.pk}/skip/")
        client.post(f"/tasks/{given.pk}/reassign/", {"owner_id": other_rep.pk})

    for task in (snoozed, skipped, given):
        task.refresh_from_db()
    assert snoozed.due_at == at("2026-03-05 09:00")  # the rep's zone is UTC
    assert skipped.status == TaskStatus.SKIPPED
    assert given.owner == other_rep


def test_it_creates_a_task_due_in_the_users_time_zone(rep, client_for, make_contact):
    rep.time_zone = "Europe/Paris"
    rep.save()
    contact = make_contact()
    client = client_for(rep)

    refused = client.post(
        "/tasks/new/", {"kind": "follow_up", "contact": contact.pk, "title": "", "due_at": ""}
    )
    created = client.post(
        "/tasks/new/",
        {
            "kind": "call_reminder",
            "contact": contact.pk,
            "title": "Call about pricing",
            "due_at": "2026-03-05T14:30",
        },
    )

    assert refused.status_code == 422 and "This field is required." in text(refused)
    assert created.status_code == 302
    task = Task.objects.get()
    assert (task.owner, task.kind, task.contact) == (rep, TaskKind.CALL_REMINDER, contact)
    assert task.due_at == at("2026-03-05 13:30")  # 14:30 in Paris


def test_it_loads_the_dashboard_with_the_same_queries_for_many_rows(rep, client_for, make_contact, make_task):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_for(rep)

    def queries() -> int:
        with clock.frozen(at("2026-03-04 10:00")), CaptureQueriesContext(connection) as captured:
            assert client.get("/tasks/").status_code == 200
        return len(captured)

    make_task(title="Call {{ contact.first_name }}", contact=make_contact(first_name="Dana"))
    few = queries()
    for _ in range(10):
        make_task(kind=TaskKind.CALL_REMINDER, title="Call {{ contact.first_name }}")
    assert queries() == few
