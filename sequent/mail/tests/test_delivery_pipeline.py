"""Delivery against a server that takes its time over each command, as one across a
network does: the sender prepares and stores the next emails while it waits, and
every email still goes out once, as stored, with its links."""

import re

from sequent.mail.delivery import deliver_due
from sequent.mail.models import MessageStatus, OutboundMessage, TrackedLink
from sequent.mail.tests.conftest import parse
from sequent.mail.tests.servers import SlowHandler, smtp_server

BODY = (
    '<p>Hi {{ contact.first_name }}, here is our <a href="https://www.example.com/pricing">pricing</a>'
    ' and a <a href="https://www.example.com/demo">demo</a>.</p>'
)


def test_a_slow_server_gets_every_email_once_as_stored_with_its_links(
    delivery_env, make_mailbox, make_sequence, make_contact, queue
):
    handler = SlowHandler(delay=0.002)
    with smtp_server(handler) as (host, port):
        mailbox = make_mailbox(host, port)
        sequence, (step,) = make_sequence([{"body": BODY}], mailbox=mailbox)
        # More than one store chunk (25), so some rows are prepared while the server works.
        rows = [queue(sequence, step, make_contact(first_name=f"Dana{n}")) for n in range(40)]
        while deliver_due("w1"):
            pass

    assert len(handler.received) == 40
    by_message_id = {parse(r.data)["Message-ID"]: parse(r.data) for r in handler.received}
    assert len(by_message_id) == 40  # no email twice
    for row in rows:
        row.refresh_from_db()
        assert row.status == MessageStatus.SENT
        msg = by_message_id[row.message_id]
        assert msg["Subject"] == row.subject
        html = msg.get_body(("html",)).get_content()
        assert f"Hi {row.contact.first_name}," in html and f"Hi {row.contact.first_name}," in row.body
        clicks = re.findall(r'href="(https://sequent\.example\.com/t/c/[^"]+)"', html)
        assert len(clicks) == 2
        assert list(
            TrackedLink.objects.filter(message=row).order_by("index").values_list("url", flat=True)
        ) == [
            "https://www.example.com/pricing",
            "https://www.example.com/demo",
        ]
    assert not OutboundMessage.objects.exclude(status=MessageStatus.SENT).exists()
