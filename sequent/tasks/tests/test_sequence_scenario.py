"""Acceptance: a classic sequence with email, email reminder, call reminder, follow-up and
SMS steps, run across simulated days; the rep works the dashboard between runs."""

from __future__ import annotations

import email
import email.policy
import io

from django.core.management import call_command

from sequent.crm.models import Activity, ActivityKind, LastContactedMode
from sequent.lib import clock
from sequent.mail.models import Mailbox, MessageStatus, OutboundMessage, Security
from sequent.sequences.metrics import refresh_metrics
from sequent.sequences.models import Enrollment, EnrollmentStatus, StepMetrics
from sequent.sequences.tests.conftest import at, executions, run_due
from sequent.sms.models import RecordedSms, SmsMessage, SmsStatus
from sequent.tasks.models import Task, TaskKind, TaskStatus

STEPS = [
    {"kind": "email", "day": 1, "subject": "Quick question", "body": "<p>Hi {{ contact.first_name }}</p>"},
    {
        "kind": "email_reminder",
        "day": 2,
        "subject": "Idea for {{ account.name | default: 'your team' }}",
        "body": "<p>Hi {{ contact.first_name }}, a thought.</p>",
    },
    {"kind": "call_reminder", "day": 3, "task_notes": "Ask about the pilot"},
    {"kind": "follow_up", "day": 4, "task_title": "Send {name} the case study"},
    {"kind": "sms", "day": 5, "sms_body": "Hi {{ contact.first_name }}, did the case study help?"},
]


def deliver(when: str) -> None:
    call_command("send_due", now=at(when).isoformat(), stdout=io.StringIO())


def send_sms(when: str) -> None:
    call_command("send_sms_due", now=at(when).isoformat(), stdout=io.StringIO())


def subjects(handler) -> list[str]:
    return [
        str(email.message_from_bytes(r.data, policy=email.policy.default)["Subject"])
        for r in handler.received
    ]


def test_it_runs_every_manual_and_phone_step_and_the_rep_completes_them(
    settings, recorder, rep, api, make_contact, make_sequence
):
    settings.SEQUENT_BASE_URL = "https://sequent.example.com"
    handler, host, port = recorder
    Mailbox.objects.create(
        owner=rep,
        smtp_host=host,
        smtp_port=port,
        email_address="alice@acme.example",
        display_name="Alice Rep",
        smtp_security=Security.NONE,
        per_minute_limit=100,
    )
    contact = make_contact(first_name="Dana", last_name="Cruz", mobile="(415) 555-0123", country="US")
    sequence = make_sequence(STEPS, contacts=[contact])

    # Monday: the automatic email goes out.
    run_due("2026-03-02 09:05")
    deliver("2026-03-02 09:06")
    assert subjects(handler) == ["Quick question"]

    # Tuesday: the email reminder waits as a draft, rendered for the contact, and is not sent.
    run_due("2026-03-03 09:05")
    deliver("2026-03-03 09:06")
    assert len(handler.received) == 1
    with clock.frozen(at("2026-03-03 10:00")):
        listed = api.get("tasks", {"kind": "email_reminder"}).json()
        [item] = listed["items"]
        detail = api.get(f"tasks/{item['id']}").json()
    assert detail["draft"] == {
        "subject": "Idea for your team",
        "body": "<p>Hi Dana, a thought.</p>",
        "error": None,
    }
    assert detail["overdue"] is True
    with clock.frozen(at("2026-03-04 08:00")):
        overdue = api.get("tasks", {"due": "overdue"}).json()
    assert [t["id"] for t in overdue["items"]] == [item["id"]]

    # Wednesday morning the rep personalises and sends it; delivery sends it as written.
    with clock.frozen(at("2026-03-04 08:30")):
        sent = api.post(
            f"tasks/{item['id']}/send",
            {"subject": "Dana, one idea", "body": "<p>Hi Dana, I wrote this myself.</p>"},
        )
    assert sent.status_code == 200, sent.content
    assert sent.json()["status"] == TaskStatus.DONE
    deliver("2026-03-04 08:31")
    assert subjects(handler) == ["Quick question", "Dana, one idea"]
    assert b"I wrote this myself" in handler.received[1].data
    reminder_email = OutboundMessage.objects.get(step__kind="email_reminder")
    assert reminder_email.status == MessageStatus.SENT

    # Wednesday: the call reminder; completing it needs the outcome and records the call.
    run_due("2026-03-04 09:05")
    call_task = Task.objects.get(kind=TaskKind.CALL_REMINDER)
    assert (call_task.owner, call_task.notes, call_task.due_at) == (
        rep,
        "Ask about the pilot",
        at("2026-03-04 09:00"),
    )
    with clock.frozen(at("2026-03-04 11:00")):
        refused = api.post(f"tasks/{call_task.pk}/complete", {})
        done = api.post(
            f"tasks/{call_task.pk}/complete", {"outcome": "left_voicemail", "notes": "Call back Friday"}
        )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "outcome"
    assert done.json()["outcome"] == "left_voicemail"
    contact.refresh_from_db()
    assert contact.last_contacted_mode == LastContactedMode.OUTGOING_CALL
    assert contact.last_activity_type == "Call"
    assert contact.last_contacted_at == at("2026-03-04 11:00")
    call = Activity.objects.get(contact=contact, kind=ActivityKind.CALL_OUTGOING)
    assert (call.outcome, call.body, call.user) == ("left_voicemail", "Call back Friday", rep)

    # Thursday: the follow-up task; completing it records a task activity.
    run_due("2026-03-05 09:05")
    follow_up = Task.objects.get(kind=TaskKind.FOLLOW_UP)
    assert follow_up.title == "Send Dana Cruz the case study"
    with clock.frozen(at("2026-03-05 12:00")):
        assert api.post(f"tasks/{follow_up.pk}/complete", {}).status_code == 200
    contact.refresh_from_db()
    assert contact.last_activity_type == "Task"
    assert Activity.objects.filter(contact=contact, kind=ActivityKind.TASK).count() == 1

    # Friday: the SMS goes out through the development provider, rendered, to the E.164 number.
    run_due("2026-03-06 09:05")
    send_sms("2026-03-06 09:06")
    recorded = RecordedSms.objects.get()
    assert (recorded.to_number, recorded.body) == ("+14155550123", "Hi Dana, did the case study help?")
    assert SmsMessage.objects.get().status == SmsStatus.DELIVERED
    contact.refresh_from_db()
    assert contact.last_activity_type == "SMS"
    assert contact.last_contacted_at == at("2026-03-06 09:06")

    enrollment = Enrollment.objects.get(contact=contact)
    assert [status for _, status, _ in executions(enrollment)] == ["executed"] * 5
    assert enrollment.status == EnrollmentStatus.COMPLETED
    metrics = refresh_metrics(sequence)
    assert (metrics.sent, metrics.executed, metrics.completed) == (2, 5, 1)
    reminder_step = StepMetrics.objects.get(step__kind="email_reminder")
    assert (reminder_step.sent, reminder_step.executed) == (1, 1)
    with clock.frozen(at("2026-03-06 10:00")):
        counts = api.get("tasks/counts").json()
    assert counts["status"] == {"open": 0, "done": 3, "skipped": 0}
