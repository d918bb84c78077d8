"""Mail faults not covered in sequent/mail/tests/test_delivery_faults.py: an SMTP server
that stalls after DATA, and an IMAP connection that drops in the middle of a FETCH.
(SMTP 4xx then 2xx, 5xx and a connection dropped after DATA are tested there.)"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading

import pytest

from sequent.lib import clock
from sequent.mail.delivery import deliver_due
from sequent.mail.models import EmailEvent, EmailEventKind, Mailbox, MessageStatus
from sequent.mail.tests.conftest import NOW, parse
from sequent.mail.tests.dovecot import dovecot, imap_user  # noqa: F401 (fixtures)
from sequent.mail.tests.test_inbound import LATER, counts, sync_now, world  # noqa: F401

pytestmark = pytest.mark.usefixtures("delivery_env")


def send_all():
    while deliver_due("w1"):
        pass


def test_it_marks_a_send_uncertain_when_the_server_stalls_after_data_and_never_resends_it(
    settings, fault_server, make_mailbox, make_sequence, make_contact, queue
):
    settings.SEQUENT_SMTP_TIMEOUT = 1
    stalled, host, port = fault_server("data", "hang")
    sequence, (step,) = make_sequence([{}], mailbox=make_mailbox(host, port))
    row = queue(sequence, step, make_contact())

    send_all()

    row.refresh_from_db()
    assert row.status == MessageStatus.UNCERTAIN
    for days in (1, 3):
        clock.set_now(NOW + dt.timedelta(days=days))
        send_all()
    row.refresh_from_db()
    assert row.status == MessageStatus.UNCERTAIN
    # The server had the whole message when it stalled: it holds exactly one copy.
    assert [parse(r.data)["Message-ID"] for r in stalled.received] == [row.message_id]
    assert not EmailEvent.objects.filter(kind=EmailEventKind.SENT).exists()


class CuttingProxy:
    """A TCP proxy in front of the IMAP server. While ``cut_at`` is set, the next
    connection is closed in the middle of the first server answer containing it."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.cut_at: bytes | None = None
        self.cuts = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            cut, self.cut_at = self.cut_at, None
            threading.Thread(target=self._pump, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, cut), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, cut: bytes | None) -> None:
        seen = b""
        try:
            while data := source.recv(65536):
                if cut is not None:
                    seen += data
                    at = seen.find(cut)
                    if at >= 0:
                        # Part of the FETCH answer goes through, then the line drops.
                        sink.sendall(data[: max(0, len(data) - (len(seen) - at) + len(cut) + 40)])
                        self.cuts += 1
                        break
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize("cut_at", [b"BODY[HEADER]", b"BODY[] "])
def test_it_resumes_after_imap_drops_mid_fetch_without_duplicate_events(world, dovecot, cut_at):  # noqa: F811
    (replied, _), (bounced, _), (away, _) = world["sent"](3)
    world["append"]("gmail_reply.eml", replied)
    world["append"]("postfix_bounce.eml", bounced)
    world["append"]("gmail_auto_reply.eml", away)
    proxy = CuttingProxy((dovecot.host, dovecot.port))
    Mailbox.objects.filter(pk=world["mailbox"].pk).update(imap_port=proxy.port)
    try:
        proxy.cut_at = cut_at
        sync_now(LATER)
        assert proxy.cuts == 1
        after_cut = counts()
        assert after_cut.get("replied", 0) + after_cut.get("bounced", 0) + after_cut.get("auto_reply", 0) < 3
        for minutes in (2, 4, 6):  # a mailbox is read at most once a minute
            sync_now(LATER + dt.timedelta(minutes=minutes))
    finally:
        proxy.close()
    assert counts() == {"sent": 3, "replied": 1, "bounced": 1, "auto_reply": 1}
