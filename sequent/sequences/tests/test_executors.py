"""What each step kind leaves behind, what it refuses, and how a failure is recorded."""

from __future__ import annotations

from sequent.mail.models import MessageStatus, OutboundMessage
from sequent.sequences import executors
from sequent.sequences.models import Enrollment, StepExecution
from sequent.sequences.tests.conftest import at, run_due
from sequent.sms.models import SmsMessage
from sequent.tasks.models import Task, TaskKind, TaskStatus


def outcome(contact) -> tuple[str, str]:
    execution = StepExecution.objects.get(enrollment__contact=contact)
    return execution.status, execution.reason


def test_it_drafts_an_email_reminder_and_asks_the_owner_to_send_it(make_contact, make_sequence, rep):
    contact = make_contact(first_name="Ola", last_name="Berg")
    make_sequence([{"kind": "email_reminder", "day": 1, "subject": "Custom intro"}], contacts=[contact])
    run_due("2026-03-02 09:05")
    draft = OutboundMessage.objects.get()
    assert (draft.status, draft.to_email, draft.owner) == (MessageStatus.DRAFT, contact.email, rep)
    task = Task.objects.get()
    assert (task.kind, task.message, task.owner, task.status) == (
        TaskKind.EMAIL_REMINDER,
        draft,
        rep,
        TaskStatus.OPEN,
    )
    assert task.title == "Personalise and send the email to Ola Berg"
    assert task.due_at == at("2026-03-02 09:00")


def test_it_skips_email_to_contacts_who_cannot_receive_it(make_contact, make_sequence):
    no_address = make_contact(email="")
    opted_out = make_contact(email_opt_out=True)
    fine = make_contact()
    make_sequence(
        [{"kind": "email", "day": 1}],
        contacts=[no_address, opted_out, fine],
        exit_on_unsubscribe=False,  # so the opted-out contact is enrolled at all
    )
    run_due("2026-03-02 09:05")
    assert outcome(no_address) == ("skipped", "contact has no email address")
    assert outcome(opted_out) == ("skipped", "contact opted out of email")
    assert outcome(fine) == ("executed", "")
    assert list(OutboundMessage.objects.values_list("contact_id", flat=True)) == [fine.pk]


def test_it_skips_sms_without_a_mobile_or_after_an_opt_out(make_contact, make_sequence):
    no_mobile = make_contact()
    opted_out = make_contact(mobile="+442071838750", sms_opt_out=True)
    fine = make_contact(mobile="+442071838751")
    make_sequence([{"kind": "sms", "day": 1, "sms_body": "Hi"}], contacts=[no_mobile, opted_out, fine])
    run_due("2026-03-02 09:05")
    assert outcome(no_mobile) == ("skipped", "contact has no mobile number")
    assert outcome(opted_out) == ("skipped", "contact opted out of SMS")
    assert outcome(fine) == ("executed", "")
    assert list(SmsMessage.objects.values_list("to_number", flat=True)) == ["+442071838751"]


class BrokenExecutor:
    def execute_batch(self, sequence, step, targets):
        raise RuntimeError("provider unreachable")


def test_it_records_a_failed_step_with_the_reason_and_goes_on(make_contact, make_sequence, monkeypatch):
    monkeypatch.setitem(executors.EXECUTORS, "call_reminder", BrokenExecutor())
    contact = make_contact()
    make_sequence(
        [{"kind": "call_reminder", "day": 1}, {"kind": "follow_up", "day": 1}],
        contacts=[contact],
    )
    run_due("2026-03-02 09:05")
    executions = {e.step.position: (e.status, e.reason) for e in StepExecution.objects.select_related("step")}
    assert executions == {1: ("failed", "RuntimeError: provider unreachable"), 2: ("executed", "")}
    assert list(Task.objects.values_list("kind", flat=True)) == ["follow_up"]
    assert Enrollment.objects.get().status == "completed"
