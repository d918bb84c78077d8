"""Build the MIME message of one outbound email (pure: no database, no network).

multipart/alternative: a plain-text part made from the HTML (inscriptis) and the
HTML part with its CSS inlined (css-inline), both quoted-printable so no line is
too long for SMTP. Headers: From, To, CC, Reply-To, Subject, Date, Message-ID,
threading (In-Reply-To, References, "Re: " subject) and the RFC 8058
unsubscribe headers. BCC recipients are only in the SMTP envelope. A header value
with a line break is refused, naming the header.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage

import css_inline
from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

from sequent.lib import clock

# Characters that end a line for str.splitlines() or for SMTP, plus NUL: none may
# reach a header, or a value could start a header of its own.
LINE_BREAKS = frozenset("\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")

# "Re:" prefixes a reply should not stack: "Re:", "RE :", "re:" repeated.
_REPLY_PREFIX = re.compile(r"^(\s*re\s*:\s*)+", re.IGNORECASE)

# RFC 5322 field name: printable ASCII except the colon.
_HEADER_NAME = re.compile(r"[!-9;-~]{1,76}")

_INLINER = css_inline.CSSInliner(
    # Never fetch a stylesheet over the network while sending; keep @media rules
    # (they cannot be inlined) so responsive layouts still work.
    load_remote_stylesheets=False,
    keep_at_rules=True,
)
_TEXT_CONFIG = ParserConfig(css=CSS_PROFILES["strict"], display_links=True, display_anchors=False)


class MessageBuildError(ValueError):
    """The message cannot be built; the message names the header or field."""


@dataclass(frozen=True)
class Mailbox:
    """A display name and an address."""

    address: str
    name: str = ""


@dataclass(frozen=True)
class BuildRequest:
    """Everything that goes into one email.

    ``thread_parent_message_id`` makes the email a reply in the thread of an earlier
    one: In-Reply-To names it, References lists ``thread_references`` then it, and
    the subject becomes ``Re: <thread_subject or subject>``.
    """

    sender: Mailbox
    to: Sequence[Mailbox]
    subject: str
    html: str
    message_id: str
    cc: Sequence[Mailbox] = ()
    bcc: Sequence[Mailbox] = ()
    reply_to: Sequence[Mailbox] = ()
    date: dt.datetime | None = None  # aware; clock.now() when None
    thread_parent_message_id: str | None = None
    thread_references: Sequence[str] = ()
    thread_subject: str | None = None
    unsubscribe_url: str | None = None
    extra_headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


def _check_header(header: str, value: str) -> str:
    if any(char in LINE_BREAKS for char in value):
        raise MessageBuildError(f"{header}: a header value cannot contain a line break (CR or LF)")
    return value


def _addr_spec(header: str, raw: str) -> str:
    """The address as it goes on the wire: no spaces, the domain in ASCII (IDNA)."""
    value = _check_header(header, raw).strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or any(char.isspace() for char in value):
        raise MessageBuildError(f"{header}: {raw!r} is not a valid address")
    if not local.isascii():
        # Would need SMTPUTF8, which most submission servers do not offer.
        raise MessageBuildError(f"{header}: {raw!r} has non-ASCII characters before the @")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise MessageBuildError(f"{header}: {raw!r} has an invalid domain") from None
    return f"{local}@{ascii_domain}"


def _address(header: str, mailbox: Mailbox) -> Address:
    _check_header(header, mailbox.name)
    addr_spec = _addr_spec(header, mailbox.address)
    try:
        address = Address(display_name=mailbox.name.strip(), addr_spec=addr_spec)
    except (HeaderParseError, ValueError, IndexError) as exc:
        raise MessageBuildError(f"{header}: {mailbox.address!r} is not a valid address ({exc})") from None
    if not address.username or not address.domain:
        raise MessageBuildError(f"{header}: {mailbox.address!r} is not a valid address")
    return address


def normalize_message_id(message_id: str) -> str:
    """``<id@domain>`` form of a Message-ID given with or without angle brackets."""
    value = _check_header("Message-ID", message_id).strip()
    if not value.startswith("<"):
        value = f"<{value}>"
    if "@" not in value or not value.endswith(">") or " " in value:
        raise MessageBuildError(f"Message-ID: {message_id!r} is not of the form <id@domain>")
    return value


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` without stacking "Re: Re:"."""
    return "Re: " + _REPLY_PREFIX.sub("", subject).strip()


def html_to_text(html: str) -> str:
    """The plain-text alternative of an HTML body; links shown as ``[text](url)``."""
    return get_text(html, _TEXT_CONFIG).strip() + "\n"


def inline_css(html: str) -> str:
    """The HTML with its <style> rules moved into style attributes."""
    return _INLINER.inline(html)


def envelope_sender(request: BuildRequest) -> str:
    """The SMTP envelope sender (MAIL FROM): the From address, as on the wire."""
    return _address("From", request.sender).addr_spec


def envelope_recipients(request: BuildRequest) -> list[str]:
    """Every address the message goes to over SMTP: To, CC and BCC, without repeats."""
    seen: dict[str, None] = {}
    for header, mailboxes in (("To", request.to), ("Cc", request.cc), ("Bcc", request.bcc)):
        for mailbox in mailboxes:
            seen.setdefault(_address(header, mailbox).addr_spec, None)
    return list(seen)


def build_message(request: BuildRequest) -> EmailMessage:
    """The EmailMessage for *request*; raises `MessageBuildError` naming a bad header."""
    if not request.to:
        raise MessageBuildError("To: the message has no recipient")
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = _address("From", request.sender)
    msg["To"] = [_address("To", mailbox) for mailbox in request.to]
    if request.cc:
        msg["Cc"] = [_address("Cc", mailbox) for mailbox in request.cc]
    for mailbox in request.bcc:
        _address("Bcc", mailbox)  # validated; BCC goes only into the envelope
    if request.reply_to:
        msg["Reply-To"] = [_address("Reply-To", mailbox) for mailbox in request.reply_to]

    subject = _check_header("Subject", request.subject).strip()
    if request.thread_parent_message_id:
        parent = normalize_message_id(request.thread_parent_message_id)
        references = [normalize_message_id(ref) for ref in request.thread_references]
        if parent not in references:
            references.append(parent)
        msg["In-Reply-To"] = parent
        msg["References"] = " ".join(references)
        subject = reply_subject(_check_header("Subject", request.thread_subject or subject))
    if not subject:
        raise MessageBuildError("Subject: the subject is empty")
    msg["Subject"] = subject

    when = request.date if request.date is not None else clock.now()
    msg["Date"] = email.utils.format_datetime(when)
    msg["Message-ID"] = normalize_message_id(request.message_id)

    if request.unsubscribe_url:
        url = _check_header("List-Unsubscribe", request.unsubscribe_url).strip()
        if not url.startswith("https://") and not url.startswith("http://"):
            raise MessageBuildError("List-Unsubscribe: the unsubscribe URL must be an http(s) URL")
        msg["List-Unsubscribe"] = f"<{url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

    for name, value in request.extra_headers:
        if not _HEADER_NAME.fullmatch(name):
            raise MessageBuildError(f"{name!r}: not a valid header name")
        msg[name] = _check_header(name, value)

    msg.set_content(html_to_text(request.html), subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(inline_css(request.html), subtype="html", charset="utf-8", cte="quoted-printable")
    return msg


# Bodies are already quoted-printable or base64 (76-character lines); the longer header
# limit keeps a long List-Unsubscribe URL as one plain <...> value, which RFC 8058 clients
# parse, instead of folding it into an RFC 2047 encoded word, which they do not.
SERIALIZE_POLICY = email.policy.SMTP.clone(max_line_length=998)


def to_bytes(msg: EmailMessage) -> bytes:
    """The wire form: CRLF line endings, lines within SMTP limits."""
    return msg.as_bytes(policy=SERIALIZE_POLICY)
