"""An enrollment's timeline: what happened at each step and why, or what it waits for."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from sequent.lib import clock
from sequent.mail.models import EmailEvent, MessageStatus, OutboundMessage
from sequent.sequences import actions, runs
from sequent.sequences.models import Enrollment
from sequent.sequences.tests.conftest import at, run_due
from sequent.sequences.timeline import build_timeline

CEO_ONLY = [{"field": "job_title", "op": "contains", "value": "ceo"}]
STEPS = [
    {"kind": "email", "day": 1, "subject": "Quick question"},
    {"kind": "follow_up", "day": 2, "conditions": CEO_ONLY},
    {"kind": "sms", "day": 3},
    {"kind": "call_reminder", "day": 4},
    {"kind": "email", "day": 6, "thread": "reply"},
]


def timeline(api, enrollment: Enrollment, when: str) -> dict:
    with clock.frozen(at(when)):
        response = api.get(f"sequences/{enrollment.sequence_id}/enrollments/{enrollment.pk}/timeline")
    assert response.status_code == 200, response.content
    return response.json()


def states(body: dict) -> list[tuple[int, str]]:
    return [(entry["position"], entry["state"]) for entry in body["entries"]]


def test_it_tells_what_each_step_did_and_when_the_rest_are_due(api, make_sequence, make_contact):
    contact = make_contact(job_title="Engineer")  # no mobile, not a CEO
    make_sequence(STEPS, contacts=[contact])  # weekends excluded; first run Monday 2026-03-02
    run_due("2026-03-02 09:05")
    run_due("2026-03-03 09:05")
    run_due("2026-03-04 09:05")
    enrollment = Enrollment.objects.get()

    body = timeline(api, enrollment, "2026-03-04 12:00")
    assert body["enrollment"]["status"] == "active"
    assert body["enrollment"]["run_count"] == 3
    assert body["next_run_at"] == "2026-03-05T09:00:00Z"
    assert states(body) == [(1, "executed"), (2, "skipped"), (3, "skipped"), (4, "waiting"), (5, "waiting")]
    email, follow_up, sms, call, reply = body["entries"]

    assert (email["at"], email["run_date"], email["reason"]) == (
        "2026-03-02T09:05:00Z",
        "2026-03-02",
        "email queued for 2026-03-02T09:00:00+00:00",
    )
    [queued] = email["produced"]
    message = OutboundMessage.objects.get()
    assert (queued["type"], queued["id"], queued["status"], queued["to"], queued["message_id"]) == (
        "email",
        message.pk,
        "queued",
        contact.email,
        message.message_id,
    )
    assert follow_up["reason"] == 'condition 1 failed: job_title contains "ceo" does not hold'
    assert (follow_up["run_date"], follow_up["produced"]) == ("2026-03-03", [])
    assert sms["reason"] == "contact has no mobile number"
    # Day 4 is the next run; day 6 skips the weekend to Monday.
    assert call["at"] == "2026-03-05T09:00:00Z"
    assert reply["at"] == "2026-03-09T09:00:00Z"
    assert reply["reason"].startswith("waiting until 2026-03-09T09:00:00+00:00: day 6")

    # The engine then runs them when the timeline said it would.
    for day in ("2026-03-05", "2026-03-06", "2026-03-09"):
        run_due(f"{day} 09:05")
    done = timeline(api, enrollment, "2026-03-09 12:00")["entries"]
    assert [(e["state"], e["run_date"]) for e in done[3:]] == [
        ("executed", "2026-03-05"),
        ("executed", "2026-03-09"),
    ]


def test_it_shows_the_task_a_step_created_and_the_email_events(api, make_sequence, make_contact):
    contact = make_contact(job_title="CEO")
    make_sequence(STEPS[:2], contacts=[contact])
    run_due("2026-03-02 09:05")
    message = OutboundMessage.objects.get()
    OutboundMessage.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENT, sent_at=at("2026-03-02 09:06")
    )
    EmailEvent.objects.create(
        message=message,
        contact=contact,
        enrollment=message.enrollment,
        step=message.step,
        kind="opened",
        occurred_at=at("2026-03-02 10:00"),
        dedupe_key="open-1",
    )
    run_due("2026-03-03 09:05")

    body = timeline(api, Enrollment.objects.get(), "2026-03-03 12:00")
    assert body["enrollment"]["status"] == "completed"
    assert body["next_run_at"] is None
    email, follow_up = body["entries"]
    assert (email["state"], email["reason"]) == ("executed", "email sent at 2026-03-02T09:06:00+00:00")
    assert email["produced"][0]["events"] == [{"kind": "opened", "occurred_at": "2026-03-02T10:00:00Z"}]
    [task] = follow_up["produced"]
    assert (task["type"], task["status"], task["due_at"]) == ("task", "open", "2026-03-03T09:00:00Z")
    assert follow_up["reason"] == f"task {task['title']!r} created (open)"


def test_it_says_an_email_was_deferred_by_a_limit(api, make_sequence, make_contact):
    make_sequence(STEPS[:1], contacts=[make_contact()])
    run_due("2026-03-02 09:05")
    OutboundMessage.objects.update(
        status=MessageStatus.DEFERRED,
        reason_code="user_daily_limit",
        last_error="daily limit of 500 sequence emails reached",
        not_before=at("2026-03-03 09:00"),
    )
    [entry] = timeline(api, Enrollment.objects.get(), "2026-03-02 12:00")["entries"]
    assert entry["state"] == "deferred"
    assert (entry["produced"][0]["status"], entry["produced"][0]["reason_code"]) == (
        "deferred",
        "user_daily_limit",
    )
    assert entry["reason"] == (
        "email deferred: daily limit of 500 sequence emails reached; next attempt at 2026-03-03T09:00:00+00:00"
    )


def test_it_says_which_steps_an_exit_kept_from_happening(api, make_sequence, make_contact):
    contact = make_contact(job_title="CEO")
    sequence = make_sequence(STEPS, contacts=[contact])
    run_due("2026-03-02 09:05")
    enrollment = Enrollment.objects.get()
    with clock.frozen(at("2026-03-02 15:00")):
        api.delete(f"sequences/{sequence.pk}/enrollments/{enrollment.pk}")

    body = timeline(api, enrollment, "2026-03-03 12:00")
    assert (body["enrollment"]["exit_reason"], body["next_run_at"]) == ("removed", None)
    assert states(body) == [
        (1, "cancelled"),
        (2, "not_reached"),
        (3, "not_reached"),
        (4, "not_reached"),
        (5, "not_reached"),
    ]
    assert (
        body["entries"][0]["reason"]
        == "the email was cancelled before it left: the enrollment exited (Removed by hand)"
    )
    assert (
        body["entries"][1]["reason"] == "not reached: the enrollment exited on 2026-03-02 (Removed by hand)"
    )
    assert body["entries"][1]["at"] is None


def test_it_shows_a_run_in_progress_and_a_run_not_yet_made(api, make_sequence, make_contact):
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}], contacts=[make_contact()]
    )
    run_due("2026-03-02 09:05")
    enrollment = Enrollment.objects.get()
    # Tuesday's slot has come but no worker ran it: the step is expected at that slot.
    late = timeline(api, enrollment, "2026-03-03 09:30")["entries"][1]
    assert (late["state"], late["at"]) == ("waiting", "2026-03-03T09:00:00Z")
    # A worker claimed the run but has not processed the enrollment yet.
    runs.start_run(sequence.pk, "worker-1", at("2026-03-03 09:31"))
    due = timeline(api, Enrollment.objects.get(), "2026-03-03 09:32")["entries"][1]
    assert (due["state"], due["at"]) == ("due", "2026-03-03T09:00:00Z")


def test_it_says_a_paused_sequence_holds_every_waiting_step(api, make_sequence, make_contact):
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}], contacts=[make_contact()]
    )
    run_due("2026-03-02 09:05")
    with clock.frozen(at("2026-03-02 12:00")):
        actions.do_pause(sequence)
    body = timeline(api, Enrollment.objects.get(), "2026-03-02 13:00")
    assert body["next_run_at"] is None
    assert body["entries"][1]["state"] == "waiting"
    assert (
        body["entries"][1]["reason"] == "waiting: the sequence is paused; it goes on from here when resumed"
    )


def test_it_says_a_smart_step_waits_for_its_conditions(api, make_sequence, make_contact):
    opened = [{"field": "email.opened", "op": "is_true", "value": None, "of": "previous"}]
    make_sequence(
        [
            {"kind": "email", "subject": "Hi"},
            {"kind": "follow_up", "conditions": opened},
            {"kind": "call_reminder"},
        ],
        contacts=[make_contact()],
        kind="smart",
    )
    run_due("2026-03-02 09:05")
    body = timeline(api, Enrollment.objects.get(), "2026-03-02 12:00")
    assert body["expires_on"] == "2026-05-31"
    assert states(body) == [(1, "executed"), (2, "waiting"), (3, "waiting")]
    conditioned, unconditioned = body["entries"][1:]
    assert conditioned["at"] == "2026-03-03T09:00:00Z"
    assert conditioned["reason"].startswith("waiting for its conditions; checked at every run")
    assert unconditioned["reason"].startswith("waiting for its turn: one step per run")


def test_it_keeps_a_deleted_steps_history(api, make_sequence, make_contact):
    sequence = make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}], contacts=[make_contact()]
    )
    run_due("2026-03-02 09:05")
    first, second = sequence.steps.order_by("position")
    actions.do_delete_step(first)
    entries = timeline(api, Enrollment.objects.get(), "2026-03-02 12:00")["entries"]
    assert [(e["step_id"], e["deleted"], e["state"]) for e in entries] == [
        (first.pk, True, "executed"),
        (second.pk, False, "waiting"),
    ]


def test_it_reads_the_timeline_in_the_same_queries_whatever_the_number_of_steps(make_sequence, make_contact):
    few, many = make_contact(), make_contact()
    make_sequence([{"kind": "email", "day": 1}, {"kind": "follow_up", "day": 2}], contacts=[few], name="Few")
    make_sequence(
        [
            {"kind": kind, "day": day}
            for kind, day in [
                ("email", 1),
                ("follow_up", 1),
                ("call_reminder", 1),
                ("email", 2),
                ("follow_up", 3),
                ("email", 4),
                ("call_reminder", 5),
            ]
        ],
        contacts=[many],
        name="Many",
    )
    run_due("2026-03-02 09:05")
    counts = []
    for contact in (few, many):
        enrollment = Enrollment.objects.select_related("sequence").get(contact=contact)
        with CaptureQueriesContext(connection) as captured:
            entries = build_timeline(enrollment, at("2026-03-02 12:00")).entries
        counts.append(len(captured))
        assert entries[0].state == "executed" and entries[-1].state == "waiting"
    assert counts[0] == counts[1]


def test_it_expects_the_next_step_after_an_out_of_office_pause(api, make_sequence, make_contact):
    make_sequence(
        [{"kind": "follow_up", "day": 1}, {"kind": "follow_up", "day": 2}], contacts=[make_contact()]
    )
    run_due("2026-03-02 09:05")
    Enrollment.objects.update(status="paused", paused_until=at("2026-03-05 12:00"))  # back Thursday noon

    body = timeline(api, Enrollment.objects.get(), "2026-03-03 12:00")
    entry = body["entries"][1]
    # Thursday's 09:00 run comes before the return; Friday's is the first it takes part in.
    assert (entry["state"], entry["at"]) == ("waiting", "2026-03-06T09:00:00Z")
    assert entry["reason"].endswith("(the enrollment is paused until 2026-03-05T12:00:00+00:00)")
    assert body["next_run_at"] == "2026-03-06T09:00:00Z"
    # The engine agrees with the prediction.
    run_due("2026-03-05 09:05")
    run_due("2026-03-06 09:05")
    assert (
        timeline(api, Enrollment.objects.get(), "2026-03-06 12:00")["entries"][1]["run_date"] == "2026-03-06"
    )
