"""Sending limits: per mailbox per minute, and per user per day in the user's time zone."""

from __future__ import annotations

import datetime as dt

import pytest

from sequent.lib import clock
from sequent.mail.delivery import deliver_due
from sequent.mail.models import MessageStatus, OutboundMessage
from sequent.mail.tests.conftest import NOW
from sequent.sequences.timeline import DEFERRED, build_timeline

pytestmark = pytest.mark.usefixtures("delivery_env")


def send_all():
    while deliver_due("w1"):
        pass


def statuses(rows):
    return [OutboundMessage.objects.get(pk=row.pk).status for row in rows]


def test_it_sends_at_most_the_mailbox_limit_per_minute(
    recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port, per_minute_limit=3))
    rows = [queue(sequence, step, make_contact()) for _ in range(7)]

    send_all()
    assert len(handler.received) == 3
    assert statuses(rows).count(MessageStatus.QUEUED) == 4  # they wait in the queue, not dropped

    clock.set_now(NOW + dt.timedelta(seconds=30))
    send_all()
    assert len(handler.received) == 3
    clock.set_now(NOW + dt.timedelta(seconds=61))
    send_all()
    assert len(handler.received) == 6
    clock.set_now(NOW + dt.timedelta(seconds=122))
    send_all()
    assert statuses(rows) == [MessageStatus.SENT] * 7
    assert len(handler.received) == 7


def test_it_defers_emails_over_the_daily_limit_to_the_next_run_and_the_timeline_says_why(
    recorder, make_mailbox, make_sequence, make_contact, queue, rep
):
    handler, host, port = recorder
    rep.daily_email_limit = 2
    rep.save(update_fields=["daily_email_limit"])
    sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port), send_time="08:30")
    rows = [queue(sequence, step, make_contact()) for _ in range(3)]

    send_all()

    assert len(handler.received) == 2
    late = OutboundMessage.objects.get(pk=rows[2].pk)
    assert late.status == MessageStatus.DEFERRED
    assert late.reason_code == "daily_limit"
    # The next run of the sequence after the rep's day ends: Tuesday 08:30 UTC.
    assert late.not_before == dt.datetime(2026, 3, 3, 8, 30, tzinfo=dt.UTC)
    entry = build_timeline(late.enrollment).entries[0]
    assert entry.state == DEFERRED
    assert "daily sending limit (2 emails a day)" in entry.reason

    clock.set_now(dt.datetime(2026, 3, 3, 8, 30, tzinfo=dt.UTC))
    send_all()
    assert statuses(rows) == [MessageStatus.SENT] * 3


def test_it_counts_the_daily_limit_in_the_users_time_zone(
    recorder, make_mailbox, make_sequence, make_contact, queue, rep
):
    handler, host, port = recorder
    # 09:00 UTC on Monday is 01:00 in Los Angeles: the rep's Monday began at 08:00 UTC.
    rep.daily_email_limit, rep.time_zone = 1, "America/Los_Angeles"
    rep.save(update_fields=["daily_email_limit", "time_zone"])
    sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port))
    yesterday_local = queue(sequence, step, make_contact(), status=MessageStatus.SENT)
    OutboundMessage.objects.filter(pk=yesterday_local.pk).update(sent_at=NOW - dt.timedelta(hours=2))
    today = queue(sequence, step, make_contact())

    send_all()
    assert statuses([today]) == [MessageStatus.SENT]  # the 07:00 UTC send was the rep's Sunday

    another = queue(sequence, step, make_contact())
    send_all()
    assert statuses([another]) == [MessageStatus.DEFERRED]
    assert len(handler.received) == 1


def test_it_counts_each_users_daily_limit_on_a_shared_mailbox(
    recorder, make_mailbox, make_sequence, make_contact, queue, rep, other_rep
):
    handler, host, port = recorder
    rep.daily_email_limit = 1
    rep.save(update_fields=["daily_email_limit"])
    shared = make_mailbox(host, port, owner=other_rep, is_workspace_default=True)
    mine, (my_step,) = make_sequence([{}], name="Mine")
    theirs, (their_step,) = make_sequence([{}], owner=other_rep, mailbox=shared, name="Theirs")
    my_rows = [queue(mine, my_step, make_contact()) for _ in range(2)]
    their_rows = [queue(theirs, their_step, make_contact()) for _ in range(2)]

    send_all()

    assert sorted(statuses(my_rows)) == [MessageStatus.DEFERRED, MessageStatus.SENT]
    assert statuses(their_rows) == [MessageStatus.SENT] * 2
    assert len(handler.received) == 3
