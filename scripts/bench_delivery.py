"""Measure email delivery (not a test; figures in docs/EMAIL.md, "Throughput").

    .venv/bin/python scripts/bench_delivery.py [--emails 2000] [--batch 100] [--profile]

In a fresh SQLite database under a temporary SEQUENT_VAR_DIR (or DATABASE_URL when
set; use an empty database), it queues N emails of one sequence step with tracking
and an unsubscribe link, starts an aiosmtpd server that accepts and discards in a
separate process, then in one run:

1. times ``deliver_due`` from one worker until the outbox is empty (gate, render,
   build, SMTP over one connection per batch, outcomes, events, activities);
2. times a bare smtplib loop sending the same messages, pre-built, over one connection.

``--profile`` prints the top of a cProfile of step 1.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SERVER = """
import asyncio, sys, signal
from aiosmtpd.controller import Controller

class Discard:
    async def handle_DATA(self, server, session, envelope):
        return "250 2.0.0 Ok"

controller = Controller(Discard(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
controller.stop()
"""

BODY = """<html><head><style>p { font-family: Arial; color: #222; }</style></head><body>
<p>Hi {{ contact.first_name | default: "there" }},</p>
<p>Teams like {{ account.name | default: "yours" }} use us to follow up with every lead.
Would a <a href="https://www.example.com/demo">15-minute demo</a> be useful? Our
<a href="https://www.example.com/pricing">pricing</a> is simple.</p>
<p>Best,<br>{{ sender.first_name }}</p>
<p style="font-size:12px"><a href="{{ unsubscribe_link }}">Unsubscribe</a></p>
</body></html>"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup_django() -> None:
    if not os.environ.get("DATABASE_URL"):
        os.environ["SEQUENT_VAR_DIR"] = tempfile.mkdtemp(prefix="sequent-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequent.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def queue_emails(count: int, port: int) -> None:
    """One user, mailbox, account, sequence and step; *count* contacts, each enrolled
    with one queued email, written as the engine writes them (bulk)."""
    from sequent.crm.models import Account, Contact
    from sequent.lib import clock
    from sequent.mail.message_ids import new_message_id
    from sequent.mail.models import Mailbox, OutboundMessage
    from sequent.sequences import actions
    from sequent.sequences.models import Enrollment, SequenceStatus
    from sequent.users.actions import do_create_user

    user, _ = do_create_user("bench@example.com", "Sales Rep", "bench-password-1", "Bea", "Bench")
    user.daily_email_limit = 10**9
    user.save(update_fields=["daily_email_limit"])
    mailbox = Mailbox.objects.create(
        owner=user,
        email_address="bea@acme.example",
        display_name="Bea Bench",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        per_minute_limit=10**9,
    )
    sequence = actions.do_create_sequence(user, "Bench", time_zone="UTC", mailbox=mailbox.pk)
    step = actions.do_add_step(
        sequence, "email", subject="Quick question, {{ contact.first_name }}", body=BODY
    )
    sequence.status = SequenceStatus.ACTIVE
    sequence.save(update_fields=["status"])
    account = Account.objects.create(name="Client Co", domain="client.example")
    Contact.objects.bulk_create(
        [
            Contact(
                first_name=f"Dana{n}", last_name="Client", email=f"dana{n}@client.example", account=account
            )
            for n in range(count)
        ]
    )
    contacts = list(Contact.objects.filter(account=account).values_list("pk", "email"))
    Enrollment.objects.bulk_create([Enrollment(sequence=sequence, contact_id=pk) for pk, _ in contacts])
    enrollments = dict(Enrollment.objects.filter(sequence=sequence).values_list("contact_id", "pk"))
    now = clock.now()
    OutboundMessage.objects.bulk_create(
        [
            OutboundMessage(
                enrollment_id=enrollments[pk],
                step=step,
                sequence=sequence,
                contact_id=pk,
                owner=user,
                mailbox=mailbox,
                to_email=email,
                message_id=new_message_id(),
                not_before=now,
            )
            for pk, email in contacts
        ]
    )


def deliver(batch: int) -> int:
    from sequent.mail.delivery import deliver_due
    from sequent.mail.models import MessageStatus, OutboundMessage

    while deliver_due("bench:1", batch):
        pass
    return OutboundMessage.objects.filter(status=MessageStatus.SENT).count()


def prebuilt() -> list[tuple[str, list[str], bytes]]:
    """The sent messages rebuilt from their stored subject and body (same size and shape)."""
    from sequent.mail import building
    from sequent.mail.models import OutboundMessage

    messages = []
    for row in OutboundMessage.objects.order_by("pk"):
        request = building.BuildRequest(
            sender=building.Mailbox(row.from_email, "Bea Bench"),
            to=[building.Mailbox(row.to_email)],
            subject=row.subject,
            html=row.body,
            message_id=row.message_id,
        )
        messages.append((row.from_email, [row.to_email], building.to_bytes(building.build_message(request))))
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    setup_django()
    from django.db import connection

    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == b"ready"
        queue_emails(args.emails, port)

        profiler = cProfile.Profile() if args.profile else None
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        sent = deliver(args.batch)
        if profiler:
            profiler.disable()
        delivery_seconds = time.perf_counter() - started
        delivery_cpu = time.process_time() - cpu_started

        messages = prebuilt()
        started, cpu_started = time.perf_counter(), time.process_time()
        conn = smtplib.SMTP("127.0.0.1", port)
        for envelope_from, recipients, data in messages:
            conn.sendmail(envelope_from, recipients, data)
        conn.quit()
        bare_seconds = time.perf_counter() - started
        bare_cpu = time.process_time() - cpu_started
    finally:
        server.terminate()
        server.wait()

    size = sum(len(data) for _, _, data in messages) / max(len(messages), 1)
    print(f"database: {connection.vendor}; {args.emails} emails of {size / 1024:.1f} KiB; batch {args.batch}")
    print(
        f"deliver_due, one worker: {sent} sent in {delivery_seconds:.2f} s = {sent / delivery_seconds:.0f} emails/s"
    )
    print(
        f"bare smtplib loop, one connection: {len(messages)} in {bare_seconds:.2f} s = {len(messages) / bare_seconds:.0f} emails/s"
    )
    # CPU time of this process per email: steadier than rates on a busy machine.
    print(
        f"CPU per email in this process: deliver_due {delivery_cpu / max(sent, 1) * 1000:.2f} ms, "
        f"bare loop {bare_cpu / max(len(messages), 1) * 1000:.2f} ms; "
        f"ratio of rates {bare_seconds / max(len(messages), 1) / (delivery_seconds / max(sent, 1)):.2f}"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)


if __name__ == "__main__":
    main()
