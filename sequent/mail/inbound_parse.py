"""Reading one inbound email: is it a reply, a bounce, an auto-reply, or nothing of ours?

Pure functions over the standard ``email`` package (no Django): the IMAP sync
(`sequent.mail.inbound`) decides what each kind changes. RFC 3464 delivery reports are
read directly; flufl.bounce is the fallback for reports that do not follow it.
RFC 3834 and vendor headers mark auto-replies, whose return date is looked for in the
English text with python-dateutil. Quoted history is cut from replies with quotequail.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.utils import getaddresses, parsedate_to_datetime
from typing import Literal

import quotequail
from dateutil import parser as date_parser
from dateutil.relativedelta import relativedelta
from flufl.bounce import all_failures

Kind = Literal["reply", "hard_bounce", "soft_bounce", "auto_reply", "unrelated"]

_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# Senders of delivery reports: only their mail goes through the non-standard fallback,
# which would otherwise read addresses out of any message.
_BOUNCE_SENDER = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mdaemon)@", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status notification|failure|has failed)|returned mail|failure notice|"
    r"mail delivery (failed|system)|could not be delivered",
    re.I,
)
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_UNSUBSCRIBE_LINE = re.compile(
    r"^(please[\s,]+)?(unsubscribe(\s+me)?|remove\s+me(\s+from\s+(your|this|the)\s+(mailing\s+)?list)?|stop)"
    r"(\s+please)?[\s.!]*$",
    re.I,
)


@dataclass(frozen=True)
class BounceReport:
    """What a delivery report says about one recipient."""

    action: str  # failed, delayed, delivered, relayed, expanded ("" when unknown)
    status: str  # the RFC 3463 code, e.g. "5.1.1" ("" when unknown)
    recipient: str  # the Final-Recipient (or Original-Recipient) address, lowercased
    diagnostic: str = ""

    @property
    def is_hard(self) -> bool:
        """A permanent failure: Action failed with a 5.x.x status."""
        return self.action == "failed" and self.status.startswith("5")


@dataclass(frozen=True)
class Inbound:
    """One inbound email, classified."""

    kind: Kind
    message_id: str  # the inbound Message-ID with its angle brackets ("" when it has none)
    from_address: str  # lowercased
    subject: str
    date: dt.datetime | None  # from the Date header, UTC
    # Our Message-IDs it may refer to: In-Reply-To first, then References (newest first),
    # and for a bounce the Message-ID of the returned original.
    referenced_ids: list[str] = field(default_factory=list)
    reply_text: str = ""  # the new text of a reply, without quoted history
    wants_unsubscribe: bool = False
    return_date: dt.date | None = None  # auto-replies: when the person is back
    bounces: list[BounceReport] = field(default_factory=list)


def parse_bytes(raw: bytes) -> EmailMessage:
    """Parse raw RFC 5322 bytes (headers only is fine) with the modern policy."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _header(message: Message, name: str) -> str:
    try:
        value = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header the modern parser cannot read
        return ""
    return str(value).strip() if value is not None else ""


def message_ids_in(value: str) -> list[str]:
    """The ``<id>`` tokens of an In-Reply-To or References value, in order."""
    return _MESSAGE_ID.findall(value or "")


def parse_address(value: str) -> str:
    """The lowercased address of a From-like header value ("" when none)."""
    pairs = getaddresses([value]) if value else []
    return pairs[0][1].strip().lower() if pairs else ""


def _date(message: Message) -> dt.datetime | None:
    value = _header(message, "Date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def referenced_ids(message: Message) -> list[str]:
    """Message-IDs this message answers: In-Reply-To, then References from the newest."""
    found = message_ids_in(_header(message, "In-Reply-To"))
    for ref in reversed(message_ids_in(_header(message, "References"))):
        if ref not in found:
            found.append(ref)
    return found


def is_auto_reply(message: Message) -> bool:
    """RFC 3834 and vendor auto-reply headers.

    Exchange marks its automatic replies with X-Auto-Response-Suppress *and*
    X-MS-Exchange-Inbox-Rules-Loop; the first alone is on ordinary Outlook mail too.
    """
    auto_submitted = _header(message, "Auto-Submitted").lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return True
    if message.get("X-Autoreply") is not None or message.get("X-Autorespond") is not None:
        return True
    if _header(message, "Precedence").lower() == "auto_reply":
        return True
    return (
        message.get("X-Auto-Response-Suppress") is not None
        and message.get("X-MS-Exchange-Inbox-Rules-Loop") is not None
    )


def looks_like_bounce(message: Message) -> bool:
    """A delivery report, judged from headers alone (the sync fetches its body then)."""
    content_type = message.get_content_type()
    if content_type == "multipart/report":
        return True
    return bool(_BOUNCE_SENDER.match(parse_address(_header(message, "From")))) or (
        _header(message, "Return-Path") == "<>" and bool(_BOUNCE_SUBJECT.search(_header(message, "Subject")))
    )


# --- delivery reports ------------------------------------------------------------------------


def _field_value(block: Message, name: str) -> str:
    # "rfc822; someone@example.com" -> "someone@example.com"; "smtp; 550 5.1.1 ..." -> "550 5.1.1 ..."
    value = str(block.get(name, "") or "").strip()
    return value.split(";", 1)[1].strip() if ";" in value else value


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    # Some generators send the fields as plain text: parse the blank-line separated blocks.
    text = payload if isinstance(payload, str) else ""
    return [
        HeaderParser().parsestr(chunk.strip() + "\n") for chunk in re.split(r"\n\s*\n", text) if chunk.strip()
    ]


def _returned_message_id(report: Message) -> str:
    for part in report.walk():
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message):
                ids = message_ids_in(str(inner.get("Message-ID", "") or ""))
                if ids:
                    return ids[0]
        elif content_type == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(part.get_payload())
            ids = message_ids_in(str(HeaderParser().parsestr(text).get("Message-ID", "") or ""))
            if ids:
                return ids[0]
    return ""


def rfc3464_reports(message: Message) -> list[BounceReport]:
    """The per-recipient fields of a multipart/report delivery-status message ([] if none)."""
    reports: list[BounceReport] = []
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = _status_blocks(part)
        for block in blocks:
            recipient = _field_value(block, "Final-Recipient") or _field_value(block, "Original-Recipient")
            action = str(block.get("Action", "") or "").strip().lower()
            if not recipient and not action:
                continue  # the per-message block (Reporting-MTA, Arrival-Date ...)
            status_match = _STATUS.search(str(block.get("Status", "") or ""))
            reports.append(
                BounceReport(
                    action=action,
                    status=".".join(status_match.groups()) if status_match else "",
                    recipient=parse_address(recipient),
                    diagnostic=" ".join(_field_value(block, "Diagnostic-Code").split())[:500],
                )
            )
    return reports


def _fallback_reports(message: Message) -> list[BounceReport]:
    temporary, permanent = all_failures(message)
    reports = [
        BounceReport("failed", "5.0.0", address.decode("utf-8", "replace").lower()) for address in permanent
    ]
    reports += [
        BounceReport("delayed", "4.0.0", address.decode("utf-8", "replace").lower())
        for address in temporary - permanent
    ]
    return reports


# --- replies ------------------------------------------------------------------------------


def _text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        # Cut the quoted history in the HTML, then keep the words.
        parts = quotequail.quote_html(content, quote_intro_line=True)
        kept = parts[0][1] if parts and parts[0][0] else content
        text = re.sub(r"<(br|/p|/div)[^>]*>", "\n", kept, flags=re.I)
        return html.unescape(re.sub(r"<[^>]+>", "", text))
    return content.replace("\r\n", "\n")


def reply_text(message: EmailMessage) -> str:
    """The new text of a reply: the body without the quoted history below it."""
    body = _text_body(message)
    if not body:
        return ""
    kept: list[str] = []
    for expanded, text in quotequail.quote(body, quote_intro_line=True):
        if not expanded:
            break
        kept.append(text)
    return "\n".join(kept).strip()


def asks_to_unsubscribe(text: str) -> bool:
    """Whether the first line of a reply asks to be removed ("unsubscribe", "remove me", "stop")."""
    for line in text.splitlines():
        if line.strip():
            return bool(_UNSUBSCRIBE_LINE.match(line.strip()))
    return False


# --- return dates -----------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAY = r"(?:mon|tue|tues|wed|wednes|thu|thur|thurs|fri|sat|satur|sun)(?:day)?"
_ORDINAL = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = (
    rf"(?P<named>(?:{_WEEKDAY},?\s+)?(?:{_MONTH}\s+{_ORDINAL}|(?:the\s+)?{_ORDINAL}\s+(?:of\s+)?{_MONTH})"
    r"(?:,?\s+\d{4})?)"
    r"|(?P<iso>\d{4}-\d{2}-\d{2})"
    r"|(?P<numeric>\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?)"
    rf"|(?P<weekday>{_WEEKDAY})\b"
)
_RETURN = re.compile(
    r"\b(?:back|return|returning|returns|until|till|through|in\s+the\s+office)\b"
    rf"[^.\n]{{0,40}}?\b(?:{_DATE})",
    re.I,
)
# A return date further away than this is more likely a misreading than a holiday.
_MAX_ABSENCE = dt.timedelta(days=180)


def _numeric_date(text: str, today: dt.date) -> dt.date | None:
    numbers = [int(n) for n in re.split(r"[/.]", text)]
    year = numbers[2] if len(numbers) == 3 else None
    if year is not None and year < 100:
        year += 2000
    candidates: list[dt.date] = []
    # Month first (US) and day first (elsewhere): the sooner plausible reading wins,
    # an out-of-office being short.
    for month, day in ((numbers[0], numbers[1]), (numbers[1], numbers[0])):
        for y in (year,) if year else (today.year, today.year + 1):
            try:
                candidate = dt.date(y, month, day)
            except ValueError:
                continue
            if candidate >= today:
                candidates.append(candidate)
    return min(candidates) if candidates else None


def _named_date(text: str, today: dt.date) -> dt.date | None:
    cleaned = re.sub(rf"^{_WEEKDAY},?\s+", "", text.strip(), flags=re.I)
    cleaned = re.sub(r"\b(the|of)\b", " ", cleaned, flags=re.I)
    try:
        parsed = date_parser.parse(cleaned, default=dt.datetime(today.year, today.month, today.day)).date()
    except (ValueError, OverflowError):
        return None
    if parsed < today and not re.search(r"\d{4}", cleaned):
        parsed = parsed.replace(year=parsed.year + 1)
    return parsed


def _weekday_date(text: str, today: dt.date) -> dt.date:
    index = _WEEKDAYS.index(text[:3].lower())
    # The next such day after today ("returning Monday" said on a Monday is next week).
    return today + relativedelta(days=1, weekday=index)


def return_date(text: str, today: dt.date) -> dt.date | None:
    """The day an out-of-office says the person is back, from English text, or None.

    Reads "back on March 9", "returning Monday", "until 12/03/2026", "back 2026-03-09",
    "return on the 9th of March"; a date already past or half a year away is ignored.
    """
    for match in _RETURN.finditer(text):
        found: dt.date | None
        if match.group("iso"):
            try:
                found = dt.date.fromisoformat(match.group("iso"))
            except ValueError:
                found = None
        elif match.group("numeric"):
            found = _numeric_date(match.group("numeric"), today)
        elif match.group("named"):
            found = _named_date(match.group("named"), today)
        else:
            found = _weekday_date(match.group("weekday"), today)
        if found is not None and today <= found <= today + _MAX_ABSENCE:
            return found
    return None


# --- classification ----------------------------------------------------------------------


def classify(raw: bytes, *, today: dt.date | None = None) -> Inbound:
    """Classify a complete inbound message.

    A delivery report is a bounce (hard when some recipient failed with 5.x.x, soft
    otherwise); an auto-reply is never a reply; anything else is a candidate reply,
    kind "reply" — whether it answers one of our emails is for the caller to decide
    from ``referenced_ids`` and ``from_address``.
    """
    message = parse_bytes(raw)
    received = _date(message)
    base = {
        "message_id": (message_ids_in(_header(message, "Message-ID")) or [""])[0],
        "from_address": parse_address(_header(message, "From")),
        "subject": _header(message, "Subject")[:998],
        "date": received,
    }
    referenced = referenced_ids(message)
    if looks_like_bounce(message):
        reports = rfc3464_reports(message)
        if not reports and message.get_content_type() != "multipart/report":
            reports = _fallback_reports(message)
        if reports:
            original = _returned_message_id(message)
            hard = any(report.is_hard for report in reports)
            return Inbound(
                kind="hard_bounce" if hard else "soft_bounce",
                referenced_ids=list(dict.fromkeys([original, *referenced] if original else referenced)),
                bounces=reports,
                **base,  # type: ignore[arg-type]
            )
    text = reply_text(message)
    if is_auto_reply(message):
        day = today or (received.date() if received else dt.datetime.now(dt.UTC).date())
        body = _text_body(message)
        return Inbound(
            kind="auto_reply",
            referenced_ids=referenced,
            return_date=return_date(f"{base['subject']}\n{body}", day),
            **base,  # type: ignore[arg-type]
        )
    return Inbound(
        kind="reply",
        referenced_ids=referenced,
        reply_text=text,
        wants_unsubscribe=asks_to_unsubscribe(text),
        **base,  # type: ignore[arg-type]
    )
