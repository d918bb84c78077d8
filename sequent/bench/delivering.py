"""Phase **deliver**: emails per second through the real sender, against the floor.

An SMTP server that accepts and discards runs in a separate process on 127.0.0.1
(``smtp_sink``). In one child, the real sender (``delivery.deliver_once``, what the
worker calls: gate, render, build, SMTP over one connection per batch, outcomes,
events) sends the first N queued emails of the run phase; then, against the same
server, the floor: a bare smtplib loop sending the same messages, pre-built, over one
connection. The ratio is sender / floor.

The same child then writes the tracking phase's request list (not measured): open
pixels of queued emails and clicks on the links of the emails just sent.
"""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sequent.bench.sizes import SIZES

WORKER_ID = "bench:deliver"


def measure(size: str, smtp_port: int, tokens_file: str = "", **_: Any) -> dict[str, Any]:
    """Deliver N emails with the real sender, then the floor; write the tracking requests."""
    cap = SIZES[size].emails
    sink = subprocess.Popen(
        [sys.executable, "-m", "sequent.bench.smtp_sink", str(smtp_port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None
        if sink.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP server did not start")
        outcomes, seconds = _deliver(cap)
        sent = outcomes["sent"]
        messages = _prebuilt()
        floor_seconds = _floor(smtp_port, messages)
    finally:
        sink.terminate()
        sink.wait()
    per_s = round(sent / seconds, 1) if seconds else None
    floor_per_s = round(len(messages) / floor_seconds, 1) if floor_seconds else None
    result: dict[str, Any] = {
        "emails": sent,
        "outcomes": outcomes,
        "seconds": round(seconds, 3),
        "emails_per_s": per_s,
        "floor_emails": len(messages),
        "floor_seconds": round(floor_seconds, 3),
        "floor_per_s": floor_per_s,
        "message_kib": round(sum(len(m[2]) for m in messages) / max(len(messages), 1) / 1024, 1),
    }
    if per_s and floor_per_s:
        result["ratio"] = round(per_s / floor_per_s, 3)
    if tokens_file:
        result["track_requests_written"] = write_requests(Path(tokens_file), SIZES[size].track_requests)
    return result


def _deliver(cap: int) -> tuple[dict[str, int], float]:
    """Deliver batches until *cap* emails are sent (or nothing is due); the outcome counts."""
    import dataclasses

    from sequent.mail import delivery

    total = delivery.BatchReport()
    started = time.perf_counter()
    while total.sent < cap:
        found, report = delivery.deliver_once(WORKER_ID, min(delivery.BATCH_SIZE, cap - total.sent))
        total.add(report)
        if not found:
            break
    return dataclasses.asdict(total), time.perf_counter() - started


def _prebuilt() -> list[tuple[str, list[str], bytes]]:
    """The sent emails rebuilt from their stored subject and body: same size and shape."""
    from sequent.mail import building
    from sequent.mail.models import MessageStatus, OutboundMessage

    messages = []
    for row in OutboundMessage.objects.filter(status=MessageStatus.SENT).order_by("pk").iterator():
        request = building.BuildRequest(
            sender=building.Mailbox(row.from_email),
            to=[building.Mailbox(row.to_email)],
            subject=row.subject,
            html=row.body,
            message_id=row.message_id,
        )
        data = building.to_bytes(building.build_message(request))
        messages.append((row.from_email, [row.to_email], data))
    return messages


def _floor(port: int, messages: list[tuple[str, list[str], bytes]]) -> float:
    started = time.perf_counter()
    conn = smtplib.SMTP("127.0.0.1", port)
    for envelope_from, recipients, data in messages:
        conn.sendmail(envelope_from, recipients, data)
    conn.quit()
    return time.perf_counter() - started


def write_requests(path: Path, count: int) -> int:
    """The tracking phase's requests, one URL path a line: half clicks on links of sent
    emails (each link once), the rest opens of other emails (each once), so each request
    should store exactly one event. Returns how many were written."""
    from django.urls import reverse

    from sequent.mail import tokens
    from sequent.mail.models import MessageStatus, OutboundMessage, TrackedLink

    clicks = list(TrackedLink.objects.order_by("pk").values_list("message_id", "index")[: count // 2])
    clicked = {message_id for message_id, _ in clicks}
    opens = list(
        OutboundMessage.objects.exclude(pk__in=clicked)
        .filter(status__in=[MessageStatus.QUEUED, MessageStatus.SENT])
        .order_by("pk")
        .values_list("pk", flat=True)[: count - len(clicks)]
    )
    lines = [reverse("mail:click", args=[tokens.make_click_token(pk, index)]) for pk, index in clicks]
    lines += [reverse("mail:open", args=[tokens.make_open_token(pk)]) for pk in opens]
    path.write_text("\n".join(lines) + "\n")
    return len(lines)
