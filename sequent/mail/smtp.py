"""The SMTP adapter: connect, send one message, and say what a failure means.

Every failure is one of a small hierarchy the delivery code acts on:

- `TemporaryFailure`: 4xx replies, timeouts, a connection lost before the end of
  DATA was sent. Retry later with back-off.
- `AuthFailure`: the login was refused (535 ...). Pause the mailbox.
- `QuotaExceeded`: the provider's sending limit (5.4.5, 5.2.0, "daily limit").
  Pause the mailbox until the window clears.
- `RecipientRejected`: the recipient address does not exist (5.1.x). Bounce it.
- `PermanentFailure`: any other 5xx. Do not retry this message.
- `UncertainDelivery`: the whole message was sent but the connection died before
  the server's final reply. It may have been delivered: never resend blindly.
"""

from __future__ import annotations

import re
import select
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError

Security = Literal["ssl", "starttls", "none"]

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Phrases providers use for their own sending limits (not the recipient's full mailbox).
_QUOTA_PHRASES = (
    "daily limit",
    "daily sending quota",
    "sending limit",
    "sending quota",
    "submissionquotaexceeded",
    "message limit exceeded",
    "too many messages",
)
_QUOTA_CODES = ("5.4.5", "5.2.0")
# How a stream of data ends in SMTP; lines starting with a dot get one more (RFC 5321 4.5.2).
_DOT_LINE = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach and log in to an SMTP server."""

    host: str
    port: int
    security: Security = "starttls"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    helo_name: str | None = None  # the name sent in EHLO; the local FQDN when None
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ImapSettings:
    """How to reach and log in to an IMAP server."""

    host: str
    port: int
    security: Security = "ssl"
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class SendResult:
    """What the server said when it took the message."""

    code: int
    reply: str
    accepted: list[str]
    refused: dict[str, tuple[int, str]]


class SmtpFailure(Exception):
    """A send or login that did not succeed. ``connection_lost`` tells the caller
    to open a new connection before the next message."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        enhanced: str | None = None,
        stage: str = "",
        connection_lost: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.enhanced = enhanced
        self.stage = stage
        self.connection_lost = connection_lost


class TemporaryFailure(SmtpFailure):
    """Try again later (4xx, timeout, connection lost before the message was complete)."""


class AuthFailure(SmtpFailure):
    """The server refused the login: the mailbox's credentials need fixing."""


class QuotaExceeded(SmtpFailure):
    """The provider's sending limit is reached: wait until its window clears."""


class PermanentFailure(SmtpFailure):
    """The server refused the message for good."""


class RecipientRejected(PermanentFailure):
    """The server says the recipient address does not exist (5.1.x)."""

    def __init__(
        self,
        message: str,
        *,
        recipient: str,
        code: int | None = None,
        enhanced: str | None = None,
        stage: str = "",
    ) -> None:
        super().__init__(message, code=code, enhanced=enhanced, stage=stage)
        self.recipient = recipient


class UncertainDelivery(SmtpFailure):
    """The message was fully sent but no final reply came: it may have been delivered."""


def _text(reply: bytes | str) -> str:
    if isinstance(reply, bytes):
        return reply.decode("utf-8", "replace")
    return reply


def enhanced_code(reply: str) -> str | None:
    """The RFC 3463 enhanced status code at the start of a reply text ("5.1.1"), if any."""
    match = _ENHANCED.match(reply)
    return ".".join(match.groups()) if match else None


def classify(code: int, reply: bytes | str, *, stage: str, recipient: str | None = None) -> SmtpFailure:
    """The failure an SMTP reply *code* and text mean at *stage* (mail, rcpt, data, auth ...).

    ``recipient`` is the address of a RCPT reply; 5.1.x there means the address is bad.
    """
    text = _text(reply).strip()
    enhanced = enhanced_code(text)
    detail = f"{code} {text}".strip()
    lower = text.lower()
    lost = code == 421  # the server closes the connection after a 421

    def make(kind: type[SmtpFailure], message: str) -> SmtpFailure:
        return kind(message, code=code, enhanced=enhanced, stage=stage, connection_lost=lost)

    if code in (530, 534, 535) or (stage == "auth" and code >= 500):
        return make(AuthFailure, f"login refused: {detail}")
    if code >= 500 and (enhanced in _QUOTA_CODES or any(phrase in lower for phrase in _QUOTA_PHRASES)):
        return make(QuotaExceeded, f"sending limit reached: {detail}")
    if 400 <= code < 500:
        return make(TemporaryFailure, f"temporary failure at {stage}: {detail}")
    if recipient is not None and code >= 500:
        if (enhanced or "").startswith("5.1.") or (enhanced is None and code in (550, 551, 553)):
            return RecipientRejected(
                f"recipient {recipient} rejected: {detail}",
                recipient=recipient,
                code=code,
                enhanced=enhanced,
                stage=stage,
            )
    if code >= 500:
        return make(PermanentFailure, f"refused at {stage}: {detail}")
    return make(TemporaryFailure, f"unexpected reply at {stage}: {detail}")


def _where(settings: SmtpSettings) -> str:
    return f"{settings.host}:{settings.port}"


def _context(custom: ssl.SSLContext | None) -> ssl.SSLContext:
    return custom if custom is not None else ssl.create_default_context()


def open_connection(settings: SmtpSettings) -> smtplib.SMTP:
    """A connected (and, with a username, logged-in) SMTP client.

    Raises `AuthFailure` when the login is refused and `TemporaryFailure` when the
    server cannot be reached, does not answer, or the TLS handshake fails.
    """
    where = _where(settings)
    conn: smtplib.SMTP | None = None
    try:
        if settings.security == "ssl":
            conn = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                local_hostname=settings.helo_name,
                timeout=settings.timeout,
                context=_context(settings.ssl_context),
            )
        else:
            conn = smtplib.SMTP(
                settings.host, settings.port, local_hostname=settings.helo_name, timeout=settings.timeout
            )
        conn.ehlo()
        if settings.security == "starttls":
            conn.starttls(context=_context(settings.ssl_context))
            conn.ehlo()
        if settings.username:
            conn.login(settings.username, settings.password)
        return conn
    except smtplib.SMTPAuthenticationError as exc:
        _close(conn)
        raise classify(exc.smtp_code, exc.smtp_error, stage="auth") from None
    except smtplib.SMTPNotSupportedError as exc:
        _close(conn)
        raise AuthFailure(
            f"{where}: {exc}; check the security setting (STARTTLS or SSL) and the port", stage="connect"
        ) from None
    except smtplib.SMTPResponseException as exc:
        _close(conn)
        raise classify(exc.smtp_code, exc.smtp_error, stage="connect") from None
    except ssl.SSLError as exc:
        _close(conn)
        raise TemporaryFailure(
            f"{where}: TLS failed ({exc.reason or exc}); check the security setting and the port",
            stage="connect",
            connection_lost=True,
        ) from None
    except TimeoutError:
        _close(conn)
        raise TemporaryFailure(
            f"{where}: no answer within {settings.timeout:g} s", stage="connect", connection_lost=True
        ) from None
    except smtplib.SMTPException as exc:
        _close(conn)
        raise TemporaryFailure(f"{where}: {exc}", stage="connect", connection_lost=True) from None
    except OSError as exc:
        _close(conn)
        raise TemporaryFailure(
            f"{where}: cannot connect ({exc.strerror or exc})", stage="connect", connection_lost=True
        ) from None


def _close(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.close()
    except OSError:
        pass


def close(conn: smtplib.SMTP) -> None:
    """Say QUIT and close, ignoring a connection that is already gone."""
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        _close(conn)


def _reset(conn: smtplib.SMTP) -> None:
    # End a failed transaction so the connection can carry the next message.
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        _close(conn)


def _after(conn: smtplib.SMTP, failure: SmtpFailure) -> SmtpFailure:
    # A 421 means the server is closing; anything else leaves a transaction to reset.
    if failure.connection_lost:
        _close(conn)
    else:
        _reset(conn)
    return failure


def _lost(conn: smtplib.SMTP, stage: str, exc: BaseException) -> TemporaryFailure:
    _close(conn)
    return TemporaryFailure(
        f"connection lost at {stage} ({exc}); nothing was delivered", stage=stage, connection_lost=True
    )


def _ascii(address: str, stage: str) -> str:
    """The address as it goes between the envelope's angle brackets."""
    value = address.strip()
    if not value.isascii() or any(char in value for char in "<> \t\r\n"):
        raise PermanentFailure(f"{address!r} cannot be used in the SMTP envelope", stage=stage)
    return value


def _answered(conn: smtplib.SMTP) -> bool:
    """Whether the server's reply has arrived (bytes to read on the socket)."""
    sock = conn.sock
    if sock is None:
        return True
    pending = getattr(sock, "pending", None)  # TLS: bytes already decrypted
    if pending is not None and pending():
        return True
    return bool(select.select([sock], [], [], 0)[0])


# A server that answers faster than this leaves no room for other work: a step of it
# (a render, a store: a tenth of a millisecond or so) would only hold up the next
# command. Across a network, replies take milliseconds and the work fits in them.
IDLE_MIN_WAIT = 0.0005
_WAIT_ATTR = "_sequent_typical_wait"


def _command(conn: smtplib.SMTP, cmd: str, args: str, idle: Callable[[], bool] | None) -> tuple[int, bytes]:
    """Send a command and read its reply (see `_reply`)."""
    conn.putcmd(cmd, args)
    return _reply(conn, idle)


def _reply(conn: smtplib.SMTP, idle: Callable[[], bool] | None) -> tuple[int, bytes]:
    """Read the server's reply. Until it arrives, run *idle* (a small piece of other
    work per call, False when there is none left), if this server's replies usually
    take long enough for it (`IDLE_MIN_WAIT`); each wait updates that estimate."""
    started = time.perf_counter()
    if idle is not None and getattr(conn, _WAIT_ATTR, 0.0) >= IDLE_MIN_WAIT:
        while not _answered(conn) and idle():
            pass
    reply = conn.getreply()
    waited = time.perf_counter() - started
    setattr(conn, _WAIT_ATTR, 0.7 * getattr(conn, _WAIT_ATTR, waited) + 0.3 * waited)
    return reply


def send(
    conn: smtplib.SMTP,
    envelope_from: str,
    recipients: Sequence[str],
    data: bytes,
    idle: Callable[[], bool] | None = None,
) -> SendResult:
    """Send *data* (CRLF bytes from `building.to_bytes`) in one SMTP transaction.

    Recipients refused while at least one is accepted are listed in
    ``SendResult.refused``; when every recipient is refused the first refusal is
    raised. A lost connection before the final dot is a `TemporaryFailure`
    (nothing can have been delivered); after it, an `UncertainDelivery`.

    *idle*, when given, is called while a reply is awaited, as long as the reply has not
    arrived and it returns True, with a server whose replies take long enough
    (`IDLE_MIN_WAIT`): the sender prepares the next emails there, so the server's work
    and the sender's overlap. It must not raise.
    """
    if not recipients:
        raise PermanentFailure("the message has no recipient", stage="rcpt")
    sender = _ascii(envelope_from, "mail")
    addresses = [_ascii(recipient, "rcpt") for recipient in recipients]
    try:
        code, reply = _command(conn, "MAIL", f"FROM:<{sender}>", idle)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _lost(conn, "mail", exc) from None
    if code != 250:
        raise _after(conn, classify(code, reply, stage="mail"))

    accepted: list[str] = []
    refused: dict[str, tuple[int, str]] = {}
    first_refusal: SmtpFailure | None = None
    for recipient in addresses:
        try:
            code, reply = _command(conn, "RCPT", f"TO:<{recipient}>", idle)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _lost(conn, "rcpt", exc) from None
        if code in (250, 251):
            accepted.append(recipient)
            continue
        refused[recipient] = (code, _text(reply))
        failure = classify(code, reply, stage="rcpt", recipient=recipient)
        first_refusal = first_refusal or failure
        if failure.connection_lost:
            raise _after(conn, failure)
    if not accepted:
        assert first_refusal is not None
        raise _after(conn, first_refusal)

    try:
        code, reply = _command(conn, "DATA", "", idle)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _lost(conn, "data", exc) from None
    if code != 354:
        raise _after(conn, classify(code, reply, stage="data"))

    payload = _DOT_LINE.sub(b"..", data)
    if not payload.endswith(b"\r\n"):
        payload += b"\r\n"
    try:
        conn.send(payload + b".\r\n")
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        # The final dot never left: the server cannot treat the message as complete.
        raise _lost(conn, "data", exc) from None
    try:
        code, reply = _reply(conn, idle)
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        _close(conn)
        raise UncertainDelivery(
            f"the connection was lost after the whole message was sent ({exc}); it may have been delivered",
            stage="data-end",
            connection_lost=True,
        ) from None
    if code != 250:
        only = accepted[0] if len(accepted) == 1 else None
        failure = classify(code, reply, stage="data-end", recipient=only)
        if failure.connection_lost:
            _close(conn)
        raise failure
    return SendResult(code=code, reply=_text(reply), accepted=accepted, refused=refused)


def _imap_check(imap: ImapSettings) -> str | None:
    where = f"{imap.host}:{imap.port}"
    client: IMAPClient | None = None
    try:
        client = IMAPClient(
            imap.host,
            port=imap.port,
            ssl=imap.security == "ssl",
            ssl_context=_context(imap.ssl_context) if imap.security == "ssl" else None,
            timeout=imap.timeout,
        )
        if imap.security == "starttls":
            client.starttls(_context(imap.ssl_context))
        client.login(imap.username, imap.password)
        return None
    except LoginError as exc:
        return f"IMAP: login refused by {where} ({_text(exc.args[0]) if exc.args else exc})"
    except ssl.SSLError as exc:
        return f"IMAP: TLS failed with {where} ({exc.reason or exc}); check the security setting and the port"
    except TimeoutError:
        return f"IMAP: no answer from {where} within {imap.timeout:g} s"
    except IMAPClientError as exc:
        return f"IMAP: {where} refused the session ({exc})"
    except OSError as exc:
        return f"IMAP: cannot connect to {where} ({exc.strerror or exc})"
    finally:
        if client is not None:
            try:
                client.logout()
            except (IMAPClientError, OSError):
                pass


def test_connection(smtp: SmtpSettings, imap: ImapSettings | None = None) -> list[str]:
    """Log in over SMTP (and IMAP when given); the exact failures, or [] when all is well."""
    problems: list[str] = []
    try:
        conn = open_connection(smtp)
    except SmtpFailure as exc:
        problems.append(f"SMTP: {exc.message}")
    else:
        close(conn)
    if imap is not None:
        problem = _imap_check(imap)
        if problem:
            problems.append(problem)
    return problems


# pytest would collect a module-level `test_*` function from an import; it is not a test.
test_connection.__test__ = False  # type: ignore[attr-defined]
