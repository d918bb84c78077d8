"""Inbound sync against a real Dovecot: replies, bounces and out-of-office messages
appended to the rep's mailbox change contacts and enrollments once, however often the
mailbox is read; a rebuilt folder counts nothing twice; a refused login pauses the
mailbox until the new password is saved."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from sequent.crm.models import Activity, ActivityKind, EmailStatus, LastContactedMode
from sequent.lib import clock
from sequent.mail import actions, inbound
from sequent.mail.delivery import deliver_due
from sequent.mail.models import (
    EmailEvent,
    EmailEventKind,
    MailboxFolderState,
    MailboxStatus,
    MessageStatus,
    OutboundMessage,
    Security,
)
from sequent.mail.tests.conftest import NOW
from sequent.mail.tests.dovecot import dovecot, imap_user  # noqa: F401 (fixtures)
from sequent.mail.tests.test_inbound_parse import fixture
from sequent.sequences.models import Enrollment, EnrollmentStatus, ExitReason

pytestmark = pytest.mark.usefixtures("delivery_env")

LATER = NOW + dt.timedelta(days=1, hours=3)  # Tuesday 12:00 UTC, after the replies came


def send_all() -> None:
    while deliver_due("w1"):
        pass


def sync_now(at: dt.datetime) -> bool:
    clock.set_now(at)
    return inbound.sync_due("w1")


def counts() -> dict[str, int]:
    """Events by kind."""
    found: dict[str, int] = {}
    for kind in EmailEvent.objects.values_list("kind", flat=True):
        found[kind] = found.get(kind, 0) + 1
    return found


@pytest.fixture
def world(recorder, dovecot, imap_user, make_mailbox, make_sequence, make_contact, queue):  # noqa: F811
    """A rep's mailbox on the recording SMTP server and Dovecot, a two-email sequence,
    and *sent(n)*: n contacts whose first email went out (second one still queued)."""
    handler, host, port = recorder
    name, password = imap_user
    mailbox = make_mailbox(
        host,
        port,
        imap_host=dovecot.host,
        imap_port=dovecot.port,
        imap_security=Security.NONE,
        imap_username=name,
        imap_password=password,
    )
    sequence, (first, second) = make_sequence([{}, {}], mailbox=mailbox)

    def sent(n: int) -> list[tuple[OutboundMessage, OutboundMessage]]:
        rows = []
        for _ in range(n):
            contact = make_contact()
            rows.append((queue(sequence, first, contact), contact))
        send_all()
        made = []
        for row, contact in rows:
            row.refresh_from_db()
            assert row.status == MessageStatus.SENT
            made.append((row, queue(sequence, second, contact, not_before=NOW + dt.timedelta(days=3))))
        return made

    def append(name: str, row: OutboundMessage, folder: str = "INBOX") -> None:
        raw = fixture(name, message_id=row.message_id, contact=row.to_email)
        with dovecot.client(*imap_user) as client:
            client.append(folder, raw)

    return {
        "mailbox": mailbox,
        "sequence": sequence,
        "sent": sent,
        "append": append,
        "handler": handler,
        "imap_user": imap_user,
    }


def test_it_records_a_reply_a_bounce_and_an_out_of_office_once_each(world):
    (replied, replied_next), (bounced, bounced_next), (away, away_next) = world["sent"](3)
    world["append"]("gmail_reply.eml", replied)
    world["append"]("postfix_bounce.eml", bounced)
    world["append"]("gmail_auto_reply.eml", away)
    world["append"]("newsletter.eml", replied)
    before = Activity.objects.count()

    assert sync_now(LATER) is True

    assert counts() == {"sent": 3, "replied": 1, "bounced": 1, "auto_reply": 1}
    # The reply: recorded without its quoted history, the contact marked Replied, the
    # enrollment exited at once and its next email cancelled.
    activity = Activity.objects.get(kind=ActivityKind.EMAIL_REPLIED)
    assert activity.contact_id == replied.contact_id
    assert "Thursday afternoon works" in activity.body
    assert "15-minute demo" not in activity.body
    replied.contact.refresh_from_db()
    assert replied.contact.last_contacted_mode == LastContactedMode.REPLIED
    enrollment = Enrollment.objects.get(pk=replied.enrollment_id)
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.REPLIED)
    replied_next.refresh_from_db()
    assert replied_next.status == MessageStatus.CANCELLED
    # The bounce: contact bounced, enrollment exited, next email cancelled.
    bounced.contact.refresh_from_db()
    assert bounced.contact.email_status == EmailStatus.BOUNCED
    event = EmailEvent.objects.get(kind=EmailEventKind.BOUNCED)
    assert (event.message_id, event.metadata["status"]) == (bounced.pk, "5.1.1")
    assert Enrollment.objects.get(pk=bounced.enrollment_id).exit_reason == ExitReason.BOUNCED
    bounced_next.refresh_from_db()
    assert bounced_next.status == MessageStatus.CANCELLED
    # The out-of-office: not a reply; the enrollment rests until the day it names.
    enrollment = Enrollment.objects.get(pk=away.enrollment_id)
    assert enrollment.status == EnrollmentStatus.PAUSED
    assert enrollment.paused_until == dt.datetime(2026, 3, 9, tzinfo=dt.UTC)
    away_next.refresh_from_db()
    assert away_next.status == MessageStatus.QUEUED
    away.contact.refresh_from_db()
    assert away.contact.last_contacted_mode != LastContactedMode.REPLIED

    activities = Activity.objects.count()
    assert activities == before + 2  # the reply and the bounce
    # Read again a minute later: nothing new.
    assert sync_now(LATER + dt.timedelta(seconds=61)) is True
    assert counts() == {"sent": 3, "replied": 1, "bounced": 1, "auto_reply": 1}
    assert Activity.objects.count() == activities


def test_it_reads_a_mailbox_at_most_once_a_minute(world):
    world["sent"](1)

    assert sync_now(LATER) is True
    assert sync_now(LATER + dt.timedelta(seconds=30)) is False
    assert sync_now(LATER + dt.timedelta(seconds=60)) is True


def test_it_counts_nothing_twice_when_the_folder_is_rebuilt(world, dovecot):  # noqa: F811
    ((row, _),) = world["sent"](1)
    mailbox = world["mailbox"]
    mailbox.imap_folders = ["INBOX", "Sales"]
    mailbox.save(update_fields=["imap_folders"])
    with dovecot.client(*world["imap_user"]) as client:
        client.create_folder("Sales")
    world["append"]("outlook_reply.eml", row, folder="Sales")
    assert sync_now(LATER) is True
    first = MailboxFolderState.objects.get(mailbox=mailbox, folder="Sales")
    assert counts()["replied"] == 1

    # The folder is deleted and created again with the same message: a new UIDVALIDITY.
    with dovecot.client(*world["imap_user"]) as client:
        client.delete_folder("Sales")
        client.create_folder("Sales")
    world["append"]("outlook_reply.eml", row, folder="Sales")
    assert sync_now(LATER + dt.timedelta(minutes=2)) is True

    rebuilt = MailboxFolderState.objects.get(mailbox=mailbox, folder="Sales")
    assert rebuilt.uidvalidity != first.uidvalidity
    assert rebuilt.last_uid == 1
    assert counts()["replied"] == 1
    assert Activity.objects.filter(kind=ActivityKind.EMAIL_REPLIED).count() == 1


def test_it_takes_mail_from_a_contact_we_emailed_as_a_reply_and_ignores_strangers(world):
    ((row, _),) = world["sent"](1)
    world["append"]("plain_followup.eml", row)  # no In-Reply-To: matched by its sender
    world["append"]("newsletter.eml", row)

    assert sync_now(LATER + dt.timedelta(days=1)) is True

    event = EmailEvent.objects.get(kind=EmailEventKind.REPLIED)
    assert (event.message_id, event.enrollment_id) == (row.pk, row.enrollment_id)
    assert Enrollment.objects.get(pk=row.enrollment_id).exit_reason == ExitReason.REPLIED


def test_it_does_not_count_mail_a_contact_sent_before_our_first_email(world):
    ((row, _),) = world["sent"](1)
    # Our email left on Thursday; their note (no In-Reply-To) is dated Wednesday.
    OutboundMessage.objects.filter(pk=row.pk).update(sent_at=NOW + dt.timedelta(days=3))
    world["append"]("plain_followup.eml", row)

    assert sync_now(NOW + dt.timedelta(days=4)) is True

    assert "replied" not in counts()
    assert Enrollment.objects.get(pk=row.enrollment_id).status == EnrollmentStatus.ACTIVE


def test_it_does_not_take_our_own_emails_for_replies(world, dovecot):  # noqa: F811
    ((first, following),) = world["sent"](1)
    following.status, following.sent_at = MessageStatus.SENT, NOW + dt.timedelta(hours=1)
    following.save(update_fields=["status", "sent_at"])
    mailbox = world["mailbox"]
    mailbox.imap_folders = ["INBOX", "Sent"]
    mailbox.save(update_fields=["imap_folders"])
    # The follow-up as filed in Sent (it answers the first email), and a copy to self.
    own = (
        f"From: Alice Rep <{mailbox.email_address}>\r\nTo: {first.to_email}\r\n"
        f"Message-ID: {following.message_id}\r\nIn-Reply-To: {first.message_id}\r\n"
        f"References: {first.message_id}\r\nSubject: Re: Hello\r\n"
        "Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nJust following up.\r\n"
    ).encode()
    with dovecot.client(*world["imap_user"]) as client:
        client.append("Sent", own)
        client.append("INBOX", own.replace(b"Message-ID: <", b"Message-ID: <copy."))

    assert sync_now(LATER) is True

    assert "replied" not in counts()
    assert Enrollment.objects.get(pk=first.enrollment_id).status == EnrollmentStatus.ACTIVE


def test_it_opts_out_a_contact_whose_reply_says_remove_me(world):
    ((row, _),) = world["sent"](1)
    world["append"]("unsubscribe_reply.eml", row)

    assert sync_now(LATER) is True

    row.contact.refresh_from_db()
    assert row.contact.email_opt_out is True
    assert counts()["unsubscribed"] == 1
    assert counts()["replied"] == 1


def test_it_records_a_delayed_report_and_changes_nothing(world):
    ((row, following),) = world["sent"](1)
    world["append"]("postfix_delayed.eml", row)

    assert sync_now(LATER) is True

    assert counts() == {"sent": 1}
    row.contact.refresh_from_db()
    assert row.contact.email_status == EmailStatus.OK
    following.refresh_from_db()
    assert following.status == MessageStatus.QUEUED


@pytest.mark.slow
def test_it_pauses_on_a_changed_password_and_resumes_when_it_is_saved(world, dovecot, rep):  # noqa: F811
    ((_, following),) = world["sent"](1)
    mailbox = world["mailbox"]
    name, _ = world["imap_user"]
    assert sync_now(LATER) is True
    enrollments = Enrollment.objects.filter(status=EnrollmentStatus.ACTIVE).count()

    dovecot.set_password(name, "changed-at-the-provider")
    assert sync_now(LATER + dt.timedelta(minutes=1)) is True

    mailbox.refresh_from_db()
    assert mailbox.status == MailboxStatus.PAUSED_AUTH
    assert mailbox.last_error.startswith("IMAP: login refused")
    # Sending waits too; the mailbox is not tried again with the same password.
    following.not_before = LATER
    following.save(update_fields=["not_before"])
    clock.set_now(LATER + dt.timedelta(minutes=2))
    send_all()
    assert len(world["handler"].received) == 1
    assert sync_now(LATER + dt.timedelta(minutes=3)) is False

    clock.set_now(LATER + dt.timedelta(minutes=4))
    actions.do_update_mailbox(mailbox, rep, imap_password="changed-at-the-provider")
    assert sync_now(LATER + dt.timedelta(minutes=5)) is True

    mailbox.refresh_from_db()
    assert (mailbox.status, mailbox.last_error) == (MailboxStatus.ACTIVE, "")
    send_all()
    assert len(world["handler"].received) == 2
    following.refresh_from_db()
    assert following.status == MessageStatus.SENT
    assert Enrollment.objects.filter(status=EnrollmentStatus.ACTIVE).count() == enrollments


def test_it_syncs_every_due_mailbox_from_the_command_line(world, capsys):
    ((row, _),) = world["sent"](1)
    world["append"]("gmail_reply.eml", row)
    clock.set_now(LATER)

    call_command("sync_mail")

    assert "1 mailbox" in capsys.readouterr().out
    assert counts()["replied"] == 1
