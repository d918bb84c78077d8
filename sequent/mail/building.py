"""Build the MIME message of one outbound email (pure: no database, no network).

multipart/alternative: a plain-text part made from the HTML (inscriptis) and the
HTML part with its CSS inlined (css-inline), both quoted-printable so no line is
too long for SMTP. Headers: From, To, CC, Reply-To, Subject, Date, Message-ID,
threading (In-Reply-To, References, "Re: " subject) and the RFC 8058
unsubscribe headers. BCC recipients are only in the SMTP envelope. A header value
with a line break is refused, naming the header.

The bytes are written here rather than by `EmailMessage` (which spent about 5 ms an
email on header objects and its pure-Python quoted-printable): plain short ASCII
headers as they are, the rest through the email package's own encoder, bodies
through binascii (docs/EMAIL.md, "Throughput").
"""

from __future__ import annotations

import binascii
import datetime as dt
import email
import email.policy
import email.utils
import functools
import re
import uuid
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
_LINE_BREAK = re.compile("[" + re.escape("".join(sorted(LINE_BREAKS))) + "]")

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
    # The plain-text alternative when the caller made it already (``html_to_text(html)``).
    text: str | None = None


def _check_header(header: str, value: str) -> str:
    if _LINE_BREAK.search(value):
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
    return _wire_address("From", request.sender.name, request.sender.address)[0]


def envelope_recipients(request: BuildRequest) -> list[str]:
    """Every address the message goes to over SMTP: To, CC and BCC, without repeats."""
    seen: dict[str, None] = {}
    for header, mailboxes in (("To", request.to), ("Cc", request.cc), ("Bcc", request.bcc)):
        for mailbox in mailboxes:
            seen.setdefault(_wire_address(header, mailbox.name, mailbox.address)[0], None)
    return list(seen)


@dataclass(frozen=True)
class Built:
    """A built email: the wire bytes, the envelope, and the header values stored on the row."""

    data: bytes
    envelope_from: str
    recipients: list[str]
    subject: str
    in_reply_to: str
    references: str


# An address (dot-atom@dot-atom) and a display name (atext words) that go on the wire as
# they are; anything else (quoting, RFC 2047, folding) is left to the email package.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_ADDR_SPEC = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*")
_SIMPLE_NAME = re.compile(rf"(?:{_ATEXT}(?: {_ATEXT})*)?")


@functools.lru_cache(maxsize=4096)
def _wire_address(header: str, name: str, address: str) -> tuple[str, str | None]:
    """(addr-spec, the address as written in a header or None when the email package must
    write it). Cached: the sender and CC/BCC of a step repeat across a batch."""
    _check_header(header, name)
    addr_spec = _addr_spec(header, address)
    display = name.strip()
    if _SIMPLE_ADDR_SPEC.fullmatch(addr_spec):
        if _SIMPLE_NAME.fullmatch(display):
            return addr_spec, f"{display} <{addr_spec}>" if display else addr_spec
        return addr_spec, None
    parsed = _address(header, Mailbox(address, name))
    return parsed.addr_spec, None


def _fold(name: str, value: object) -> str:
    # The email package's own encoder and folder, for values that need it (RFC 2047
    # encoded words for non-ASCII text, quoting of display names, folding of long lines).
    return str(SERIALIZE_POLICY.header_factory(name, value).fold(policy=SERIALIZE_POLICY))


def _text_header(name: str, value: str) -> str:
    line = f"{name}: {value}\r\n"
    if len(line) <= 1000 and value.isascii() and value.isprintable() and "=?" not in value:
        return line
    return _fold(name, value)


def _address_header(header: str, mailboxes: Sequence[Mailbox]) -> str:
    written = [_wire_address(header, m.name, m.address)[1] for m in mailboxes]
    if all(item is not None for item in written):
        line = f"{header}: {', '.join(item for item in written if item is not None)}\r\n"
        if len(line) <= 1000:
            return line
    return _fold(header, [_address(header, mailbox) for mailbox in mailboxes])


def _quoted_printable(text: str) -> bytes:
    # Lines as the email package splits them (CR, LF or CRLF), then binascii's encoder:
    # lines of at most 76 characters, "=" and non-ASCII escaped, trailing blanks kept.
    lines = text.encode("utf-8").splitlines()
    return binascii.b2a_qp(b"\n".join(lines) + b"\n", istext=True).replace(b"\n", b"\r\n")


def _text_part(subtype: str, text: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + _quoted_printable(text)


def build(request: BuildRequest) -> Built:
    """The wire form of *request*; raises `MessageBuildError` naming a bad header.

    Headers that are plain ASCII and short are written as they are; the others go
    through the email package's encoder (RFC 2047, quoting, folding to 998 octets).
    Both parts are quoted-printable (lines of at most 76 characters), so the boundary
    ``=_...`` cannot occur in them (RFC 2045).
    """
    if not request.to:
        raise MessageBuildError("To: the message has no recipient")
    envelope_from = _wire_address("From", request.sender.name, request.sender.address)[0]
    head = [_address_header("From", [request.sender]), _address_header("To", request.to)]
    if request.cc:
        head.append(_address_header("Cc", request.cc))
    if request.reply_to:
        head.append(_address_header("Reply-To", request.reply_to))
    recipients = envelope_recipients(request)

    subject = _check_header("Subject", request.subject).strip()
    in_reply_to = references = ""
    if request.thread_parent_message_id:
        in_reply_to = normalize_message_id(request.thread_parent_message_id)
        refs = [normalize_message_id(ref) for ref in request.thread_references]
        if in_reply_to not in refs:
            refs.append(in_reply_to)
        references = " ".join(refs)
        head.append(_text_header("In-Reply-To", in_reply_to))
        head.append(_text_header("References", references))
        subject = reply_subject(_check_header("Subject", request.thread_subject or subject))
    if not subject:
        raise MessageBuildError("Subject: the subject is empty")
    head.append(_text_header("Subject", subject))

    when = request.date if request.date is not None else clock.now()
    head.append(_text_header("Date", email.utils.format_datetime(when)))
    head.append(_text_header("Message-ID", normalize_message_id(request.message_id)))

    if request.unsubscribe_url:
        url = _check_header("List-Unsubscribe", request.unsubscribe_url).strip()
        if not url.startswith("https://") and not url.startswith("http://"):
            raise MessageBuildError("List-Unsubscribe: the unsubscribe URL must be an http(s) URL")
        # Never encoded: RFC 8058 clients read <URL> and ignore an encoded word.
        head.append(f"List-Unsubscribe: <{url}>\r\n")
        head.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")

    for name, value in request.extra_headers:
        if not _HEADER_NAME.fullmatch(name):
            raise MessageBuildError(f"{name!r}: not a valid header name")
        head.append(_text_header(name, _check_header(name, value)))

    boundary = f"=_{uuid.uuid4().hex}"
    head.append("MIME-Version: 1.0\r\n")
    head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n')
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    data = b"".join(
        (
            "".join(head).encode("ascii"),
            delimiter[2:],
            _text_part("plain", request.text if request.text is not None else html_to_text(request.html)),
            delimiter,
            _text_part("html", inline_css(request.html)),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        )
    )
    return Built(data, envelope_from, recipients, subject, in_reply_to, references)


def build_message(request: BuildRequest) -> EmailMessage:
    """The EmailMessage of `build` (parsed back from its bytes); raises `MessageBuildError`."""
    message = email.message_from_bytes(build(request).data, policy=email.policy.SMTP)
    assert isinstance(message, EmailMessage)
    return message


# Bodies are already quoted-printable or base64 (76-character lines); the longer header
# limit keeps a long List-Unsubscribe URL as one plain <...> value, which RFC 8058 clients
# parse, instead of folding it into an RFC 2047 encoded word, which they do not.
SERIALIZE_POLICY = email.policy.SMTP.clone(max_line_length=998)


def to_bytes(msg: EmailMessage) -> bytes:
    """The wire form: CRLF line endings, lines within SMTP limits."""
    return msg.as_bytes(policy=SERIALIZE_POLICY)
