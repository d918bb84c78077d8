"""A local mail catcher for `make run`: an SMTP server on 127.0.0.1 that keeps every
message it receives as an .eml file, so a newcomer can read what a sequence sent.

Files go to ``VAR_DIR/mail-catcher/`` (written to a temporary name, then renamed,
so a reader never sees half a message). Each file starts with two
``X-Catcher-Envelope-*`` headers recording the SMTP envelope, which is where BCC
recipients show. Run it with ``python -m sequent.mail.catcher``; the port comes
from ``SEQUENT_CATCHER_PORT`` (default 1025).
"""

from __future__ import annotations

import email.policy
import os
import re
import signal
import threading
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from django.conf import settings

from sequent.lib import clock

DEFAULT_PORT = 1025
HOST = "127.0.0.1"
ENVELOPE_FROM_HEADER = "X-Catcher-Envelope-From"
ENVELOPE_TO_HEADER = "X-Catcher-Envelope-To"
# Names the catcher writes: <UTC timestamp>-<random hex>.eml; nothing else is read.
_NAME = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{32}\.eml")


def catcher_dir() -> Path:
    """Where caught messages are kept."""
    return Path(settings.VAR_DIR) / "mail-catcher"


def catcher_port() -> int:
    """The port from ``SEQUENT_CATCHER_PORT``, or 1025."""
    value = os.environ.get("SEQUENT_CATCHER_PORT", "").strip()
    return int(value) if value else DEFAULT_PORT


def _envelope_line(name: str, value: str) -> bytes:
    # Envelope addresses come from SMTP command lines and cannot hold CR/LF; strip anyway.
    clean = value.replace("\r", " ").replace("\n", " ")
    return f"{name}: {clean}\r\n".encode("utf-8", "replace")


def store_message(directory: Path, mail_from: str, rcpt_tos: list[str], content: bytes) -> Path:
    """Write one caught message atomically; the file name sorts by arrival time."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = clock.now().strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}-{uuid.uuid4().hex}.eml"
    data = (
        _envelope_line(ENVELOPE_FROM_HEADER, mail_from)
        + _envelope_line(ENVELOPE_TO_HEADER, ", ".join(rcpt_tos))
        + content
    )
    temporary = directory / f".{name}.tmp"
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    final = directory / name
    os.replace(temporary, final)
    return final


class CatcherHandler:
    """aiosmtpd handler that stores every message in *directory*."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Store the message and accept it."""
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8")
        store_message(self.directory, envelope.mail_from or "", list(envelope.rcpt_tos), content)
        return "250 Message caught"


def make_controller(directory: Path | None = None, port: int | None = None) -> Controller:
    """An unstarted aiosmtpd Controller for the catcher on 127.0.0.1."""
    return Controller(
        CatcherHandler(directory or catcher_dir()),
        hostname=HOST,
        port=catcher_port() if port is None else port,
        server_hostname="sequent-mail-catcher",
        enable_SMTPUTF8=True,
    )


@dataclass(frozen=True)
class CaughtSummary:
    """One line of the caught-mail list."""

    name: str
    subject: str
    sender: str
    to: str
    date: str
    size: int


@dataclass(frozen=True)
class CaughtMessage:
    """A caught message, parsed for a page."""

    name: str
    subject: str
    sender: str
    to: str
    cc: str
    date: str
    envelope_from: str
    envelope_to: str
    html: str | None
    text: str | None
    headers: list[tuple[str, str]]


def _caught_names(directory: Path) -> list[str]:
    if not directory.is_dir():
        return []
    return sorted((entry.name for entry in directory.iterdir() if _NAME.fullmatch(entry.name)), reverse=True)


def _parse(path: Path) -> EmailMessage:
    with open(path, "rb") as handle:
        message = BytesParser(policy=email.policy.default).parse(handle)
    assert isinstance(message, EmailMessage)
    return message


def _header(message: EmailMessage, name: str) -> str:
    value = message.get(name)
    return str(value) if value is not None else ""


def count_caught() -> int:
    """How many messages the catcher holds."""
    return len(_caught_names(catcher_dir()))


def list_caught(limit: int = 50, offset: int = 0) -> list[CaughtSummary]:
    """Caught messages, newest first, for one page."""
    directory = catcher_dir()
    summaries = []
    for name in _caught_names(directory)[offset : offset + limit]:
        path = directory / name
        message = _parse(path)
        summaries.append(
            CaughtSummary(
                name=name,
                subject=_header(message, "Subject"),
                sender=_header(message, "From"),
                to=_header(message, "To"),
                date=_header(message, "Date"),
                size=path.stat().st_size,
            )
        )
    return summaries


def read_caught(name: str) -> CaughtMessage:
    """One caught message by file name; `FileNotFoundError` for any other name."""
    if not _NAME.fullmatch(name):
        raise FileNotFoundError(name)
    path = catcher_dir() / name
    message = _parse(path)
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    return CaughtMessage(
        name=name,
        subject=_header(message, "Subject"),
        sender=_header(message, "From"),
        to=_header(message, "To"),
        cc=_header(message, "Cc"),
        date=_header(message, "Date"),
        envelope_from=_header(message, ENVELOPE_FROM_HEADER),
        envelope_to=_header(message, ENVELOPE_TO_HEADER),
        html=html_part.get_content() if isinstance(html_part, EmailMessage) else None,
        text=text_part.get_content() if isinstance(text_part, EmailMessage) else None,
        headers=[(key, str(value)) for key, value in message.items()],
    )


def run_catcher(port: int | None = None) -> None:
    """Run the catcher until SIGINT or SIGTERM (the serve command's child process)."""
    controller = make_controller(port=port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    controller.start()
    print(f"Mail catcher on {HOST}:{controller.port}, keeping messages in {catcher_dir()}", flush=True)
    try:
        stop.wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequent.settings")
    run_catcher()
