"""Exit criteria applied at each run, and what an exit cancels."""

from __future__ import annotations

import pytest

from sequent.crm.models import Contact
from sequent.mail.models import EmailEvent, MessageStatus, OutboundMessage
from sequent.sequences import actions
from sequent.sequences.models import Enrollment, EnrollmentStatus, ExitReason, RunSlot
from sequent.sequences.tests.conftest import at, executions, run_due
from sequent.sms.models import SmsMessage, SmsStatus
from sequent.tasks.models import Task, TaskStatus

STEPS = [
    {"kind": "email", "day": 1},
    {"kind": "follow_up", "day": 1},
    {"kind": "sms", "day": 1},
    {"kind": "email", "day": 2, "thread": "reply"},
]


def record(
    contact, kind: str, *, linked: bool = True, automated: bool = False, when: str = "2026-03-02 15:00"
):
    message = OutboundMessage.objects.filter(contact=contact).first()
    return EmailEvent.objects.create(
        message=message if linked else None,
        contact=contact,
        enrollment=message.enrollment if linked else None,
        step=message.step if linked else None,
        kind=kind,
        occurred_at=at(when),
        is_automated=automated,
        dedupe_key=f"{kind}-{contact.pk}-{linked}-{automated}",
    )


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("replied", ExitReason.REPLIED),
        ("unsubscribed", ExitReason.UNSUBSCRIBED),
        ("bounced", ExitReason.BOUNCED),
    ],
)
def test_it_exits_on_an_email_event_and_cancels_what_was_pending(make_contact, make_sequence, kind, reason):
    contact, other = make_contact(mobile="+14155550123"), make_contact(mobile="+14155550124")
    make_sequence(STEPS, contacts=[contact, other])
    run_due("2026-03-02 09:05")
    record(contact, kind)
    run_due("2026-03-03 09:05")

    enrollment = Enrollment.objects.get(contact=contact)
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.EXITED, reason)
    assert enrollment.exited_at == at("2026-03-03 09:05")
    assert [e[0] for e in executions(enrollment)] == [1, 2, 3]  # step 4 never ran
    assert OutboundMessage.objects.get(contact=contact).status == MessageStatus.CANCELLED
    assert SmsMessage.objects.get(contact=contact).status == SmsStatus.CANCELLED
    assert Task.objects.get(contact=contact).status == TaskStatus.SKIPPED
    # The other contact is untouched: it went on to its last step.
    assert Enrollment.objects.get(contact=other).status == EnrollmentStatus.COMPLETED
    assert OutboundMessage.objects.filter(contact=other, status=MessageStatus.QUEUED).count() == 2
    assert Task.objects.get(contact=other).status == TaskStatus.OPEN


def test_it_exits_on_a_reply_not_linked_to_a_message(make_contact, make_sequence):
    contact = make_contact()
    make_sequence(STEPS, contacts=[contact])
    run_due("2026-03-02 09:05")
    record(contact, "replied", linked=False)
    run_due("2026-03-03 09:05")
    assert Enrollment.objects.get().exit_reason == ExitReason.REPLIED


def test_it_ignores_an_auto_reply_and_an_open(make_contact, make_sequence):
    contact = make_contact()
    make_sequence(STEPS, contacts=[contact])
    run_due("2026-03-02 09:05")
    record(contact, "replied", automated=True)
    record(contact, "opened")
    run_due("2026-03-03 09:05")
    enrollment = Enrollment.objects.get()
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert [e[0] for e in executions(enrollment)] == [1, 2, 3, 4]


def test_it_keeps_a_contact_who_replied_when_the_sequence_does_not_exit_on_reply(make_contact, make_sequence):
    contact = make_contact()
    make_sequence(STEPS, contacts=[contact], exit_on_reply=False)
    run_due("2026-03-02 09:05")
    record(contact, "replied")
    run_due("2026-03-03 09:05")
    assert Enrollment.objects.get().status == EnrollmentStatus.COMPLETED


def test_it_exits_contacts_who_opted_out_or_bounced_anywhere(make_contact, make_sequence):
    opted, bounced, fine = make_contact(), make_contact(), make_contact()
    make_sequence(STEPS, contacts=[opted, bounced, fine])
    run_due("2026-03-02 09:05")
    Contact.objects.filter(pk=opted.pk).update(email_opt_out=True)
    Contact.objects.filter(pk=bounced.pk).update(email_status="bounced")
    run_due("2026-03-03 09:05")
    reasons = dict(Enrollment.objects.values_list("contact_id", "exit_reason"))
    assert reasons == {opted.pk: ExitReason.UNSUBSCRIBED, bounced.pk: ExitReason.BOUNCED, fine.pk: ""}


def test_it_exits_on_a_property_change(make_contact, make_sequence):
    contact = make_contact(job_title="Manager")
    make_sequence(
        STEPS,
        contacts=[contact],
        exit_conditions=[{"field": "job_title", "op": "contains", "value": "director"}],
    )
    run_due("2026-03-02 09:05")
    contact.job_title = "Sales Director"
    contact.save()
    run_due("2026-03-03 09:05")
    enrollment = Enrollment.objects.get()
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.CONDITION)


def test_it_does_not_enroll_contacts_who_would_leave_at_once(make_contact, make_sequence):
    ok = make_contact(job_title="Manager")
    make_contact(job_title="Director")
    make_contact(email_opt_out=True)
    make_contact(email_status="bounced")
    make_sequence(
        [{"kind": "follow_up", "day": 1}],
        audience_conditions=[{"field": "last_name", "op": "equals", "value": "Lee"}],
        exit_conditions=[{"field": "job_title", "op": "equals", "value": "Director"}],
    )
    run_due("2026-03-02 09:05")
    assert list(Enrollment.objects.values_list("contact_id", flat=True)) == [ok.pk]


def test_it_removes_an_enrollment_by_hand_for_good(make_contact, make_sequence):
    contact = make_contact()
    make_sequence(STEPS, contacts=[contact])
    run_due("2026-03-02 09:05")
    actions.do_remove_enrollment(Enrollment.objects.get())
    run_due("2026-03-03 09:05")
    enrollment = Enrollment.objects.get()
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.REMOVED)
    assert OutboundMessage.objects.get().status == MessageStatus.CANCELLED
    assert [e[0] for e in executions(enrollment)] == [1, 2, 3]  # and no re-enrollment


def test_it_exits_everyone_when_the_sequence_is_archived(make_contact, make_sequence):
    contacts = [make_contact(), make_contact()]
    sequence = make_sequence(STEPS, contacts=contacts)
    run_due("2026-03-02 09:05")
    actions.do_archive(sequence)
    run_due("2026-03-03 09:05")
    assert set(Enrollment.objects.values_list("exit_reason", flat=True)) == {ExitReason.ARCHIVED}
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {MessageStatus.CANCELLED}
    assert RunSlot.objects.count() == 1


@pytest.mark.parametrize("account_wide", [True, False])
def test_it_takes_the_whole_account_out_on_a_reply_when_asked(make_contact, make_sequence, account_wide):
    from sequent.crm.models import Account

    acme, globex = Account.objects.create(name="Acme"), Account.objects.create(name="Globex")
    ceo, cfo = make_contact(account=acme), make_contact(account=acme)
    elsewhere = make_contact(account=globex)
    steps = [*STEPS, {"kind": "follow_up", "day": 3}]  # keeps the others in flight after day 2
    make_sequence(steps, contacts=[ceo, cfo, elsewhere], exit_account_on_reply=account_wide)
    run_due("2026-03-02 09:05")
    record(ceo, "replied")
    run_due("2026-03-03 09:05")

    def state(contact):
        enrollment = Enrollment.objects.get(contact=contact)
        return enrollment.status, enrollment.exit_reason

    assert state(ceo) == (EnrollmentStatus.EXITED, ExitReason.REPLIED)
    if account_wide:
        assert state(cfo) == (EnrollmentStatus.EXITED, ExitReason.ACCOUNT_REPLIED)
        assert OutboundMessage.objects.filter(contact=cfo, status=MessageStatus.QUEUED).count() == 0
    else:
        assert state(cfo) == (EnrollmentStatus.ACTIVE, "")
    assert state(elsewhere) == (EnrollmentStatus.ACTIVE, "")


def test_it_takes_the_account_out_as_soon_as_the_reply_is_read(make_contact, make_sequence):
    from sequent.crm.models import Account
    from sequent.mail.inbound import do_record_reply
    from sequent.mail.inbound_parse import Inbound

    acme = Account.objects.create(name="Acme")
    ceo, cfo = make_contact(account=acme), make_contact(account=acme)
    make_sequence(STEPS, contacts=[ceo, cfo], exit_account_on_reply=True)
    run_due("2026-03-02 09:05")
    message = OutboundMessage.objects.get(contact=ceo)
    reply = Inbound(
        kind="reply",
        message_id="<reply-1@client.example>",
        from_address=ceo.email,
        subject="Re: Hello",
        date=at("2026-03-02 15:00"),
        referenced_ids=[message.message_id],
        reply_text="Let's talk.",
    )
    assert do_record_reply(message, reply, "reply-1") == (1, 0)

    cfo_enrollment = Enrollment.objects.get(contact=cfo)
    assert (cfo_enrollment.status, cfo_enrollment.exit_reason) == (
        EnrollmentStatus.EXITED,
        ExitReason.ACCOUNT_REPLIED,
    )
    assert Enrollment.objects.get(contact=ceo).exit_reason == ExitReason.REPLIED
