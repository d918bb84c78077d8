import datetime as dt
import email
import email.policy

import pytest

from sequent.lib import clock
from sequent.mail import smtp
from sequent.mail.building import (
    BuildRequest,
    Mailbox,
    MessageBuildError,
    build,
    build_message,
    envelope_recipients,
    envelope_sender,
    html_to_text,
    reply_subject,
    to_bytes,
)
from sequent.mail.tests.servers import RecordingHandler, smtp_server

T0 = dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC)

HTML = """<html><head><style>
p { color: #112233; }
@media (max-width: 600px) { p { font-size: 18px; } }
</style></head>
<body><p>Hi Dana,</p><p>Have a look at <a href="https://acme.test/pricing">our pricing</a>.</p></body></html>"""


def request(**overrides):
    values = dict(
        sender=Mailbox("sam@acme.test", "Sam Söderberg"),
        to=[Mailbox("dana@client.test", "Dana Lee")],
        subject="Quick question",
        html=HTML,
        message_id="<first@acme.test>",
        date=T0,
    )
    values.update(overrides)
    return BuildRequest(**values)


def parse(data: bytes):
    return email.message_from_bytes(data, policy=email.policy.default)


@pytest.fixture
def sent():
    """Send a request through a real SMTP server; returns (parsed message, raw, envelope)."""
    handler = RecordingHandler()
    with smtp_server(handler) as (host, port):

        def send(req):
            conn = smtp.open_connection(smtp.SmtpSettings(host, port, security="none", timeout=5))
            smtp.send(conn, envelope_sender(req), envelope_recipients(req), to_bytes(build_message(req)))
            smtp.close(conn)
            received = handler.received[-1]
            return parse(received.data), received.data, received.rcpt_tos

        yield send


def test_it_puts_every_header_on_the_received_message(sent):
    req = request(
        cc=[Mailbox("boss@client.test", "Boss")],
        bcc=[Mailbox("log@acme.test")],
        reply_to=[Mailbox("replies@acme.test", "Sam")],
        unsubscribe_url="https://app.acme.test/u/abc:def",
    )
    msg, raw, rcpt_tos = sent(req)
    assert msg["From"] == "Sam Söderberg <sam@acme.test>"
    assert msg["To"] == "Dana Lee <dana@client.test>"
    assert msg["Cc"] == "Boss <boss@client.test>"
    assert msg["Reply-To"] == "Sam <replies@acme.test>"
    assert msg["Subject"] == "Quick question"
    assert msg["Date"].datetime == T0
    assert msg["Message-ID"] == "<first@acme.test>"
    assert msg["List-Unsubscribe"] == "<https://app.acme.test/u/abc:def>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["Bcc"] is None and b"log@acme.test" not in raw
    assert rcpt_tos == ["dana@client.test", "boss@client.test", "log@acme.test"]
    assert msg["In-Reply-To"] is None and msg["References"] is None
    # Non-ASCII names travel encoded: the wire stays 7-bit.
    assert raw.isascii()


def test_it_sends_a_text_part_and_an_html_part_with_css_inlined(sent):
    msg, _, _ = sent(request())
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    assert "Hi Dana," in text
    assert "[our pricing](https://acme.test/pricing)" in text
    assert "<p" in html and 'style="color: #112233;"' in html
    assert "@media (max-width: 600px)" in html  # kept: cannot be inlined


def test_it_threads_a_follow_up_under_the_previous_email(sent):
    req = request(
        subject="ignored for a reply",
        message_id="<third@acme.test>",
        thread_parent_message_id="<second@acme.test>",
        thread_references=["<first@acme.test>"],
        thread_subject="Re: RE: Quick question",
    )
    msg, _, _ = sent(req)
    assert msg["In-Reply-To"] == "<second@acme.test>"
    assert msg["References"] == "<first@acme.test> <second@acme.test>"
    assert msg["Subject"] == "Re: Quick question"
    assert msg["Message-ID"] == "<third@acme.test>"


def test_it_uses_the_own_subject_for_a_reply_without_a_thread_subject():
    msg = build_message(request(thread_parent_message_id="first@acme.test"))
    assert msg["Subject"] == "Re: Quick question"
    assert msg["In-Reply-To"] == "<first@acme.test>"
    assert msg["References"] == "<first@acme.test>"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Intro", "Re: Intro"),
        ("Re: Intro", "Re: Intro"),
        ("RE: re:Intro", "Re: Intro"),
        ("Re : Re: Intro", "Re: Intro"),
        ("Regarding the demo", "Re: Regarding the demo"),
    ],
)
def test_it_never_stacks_re_prefixes(subject, expected):
    assert reply_subject(subject) == expected


def test_it_takes_the_date_from_the_clock_when_none_is_given():
    with clock.frozen(T0):
        msg = build_message(request(date=None))
    assert msg["Date"].datetime == T0


def test_it_keeps_every_line_within_smtp_limits(sent):
    long_word = "x" * 5000
    msg, raw, _ = sent(request(html=f"<p>{long_word}</p><p>{'é' * 3000}</p>"))
    lines = raw.split(b"\r\n")
    body = raw.split(b"\r\n\r\n", 1)[1]
    # RFC 5322 allows header lines up to 998 octets; body lines stay short (quoted-printable).
    assert max(len(line) for line in lines) <= 998
    assert max(len(line) for line in body.split(b"\r\n")) <= 78
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert long_word in msg.get_body(preferencelist=("html",)).get_content()
    assert "é" * 3000 in msg.get_body(preferencelist=("plain",)).get_content()


@pytest.mark.parametrize(
    ("overrides", "header"),
    [
        ({"subject": "Hello\r\nBcc: victim@evil.test"}, "Subject"),
        ({"subject": "Hello\nX-Injected: 1"}, "Subject"),
        ({"subject": "Hello\u2028X-Injected: 1"}, "Subject"),
        ({"to": [Mailbox("dana@client.test", "Dana\r\nBcc: victim@evil.test")]}, "To"),
        ({"to": [Mailbox("dana@client.test\r\nBcc: victim@evil.test")]}, "To"),
        ({"cc": [Mailbox("boss@client.test\nX-Injected: 1")]}, "Cc"),
        ({"bcc": [Mailbox("log@acme.test\rX-Injected: 1")]}, "Bcc"),
        ({"reply_to": [Mailbox("r@acme.test", "Sam\r\nX-Injected: 1")]}, "Reply-To"),
        ({"sender": Mailbox("sam@acme.test", "Sam\nX-Injected: 1")}, "From"),
        ({"unsubscribe_url": "https://app.test/u/x\r\nX-Injected: 1"}, "List-Unsubscribe"),
        ({"message_id": "<a@b>\r\nX-Injected: 1"}, "Message-ID"),
        ({"thread_parent_message_id": "<a@b>\nX-Injected: 1"}, "Message-ID"),
        ({"thread_parent_message_id": "<a@b>", "thread_subject": "Hi\r\nX-Injected: 1"}, "Subject"),
    ],
)
def test_it_refuses_a_line_break_in_any_header_naming_it(overrides, header):
    with pytest.raises(MessageBuildError) as caught:
        build_message(request(**overrides))
    assert str(caught.value).startswith(f"{header}:")


def test_it_sends_header_lookalikes_without_line_breaks_as_plain_text(sent):
    msg, _raw, rcpt_tos = sent(
        request(
            subject="Bcc: victim@evil.test X-Injected: 1", to=[Mailbox("dana@client.test", "X-Evil: yes")]
        )
    )
    assert msg["Subject"] == "Bcc: victim@evil.test X-Injected: 1"
    assert set(msg.keys()) == {
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "MIME-Version",
        "Content-Type",
    }
    assert rcpt_tos == ["dana@client.test"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"to": []}, "To: the message has no recipient"),
        ({"to": [Mailbox("not-an-address")]}, "To: 'not-an-address' is not a valid address"),
        ({"subject": "   "}, "Subject: the subject is empty"),
        ({"unsubscribe_url": "javascript:alert(1)"}, "List-Unsubscribe: the unsubscribe URL must be"),
        ({"message_id": "no-at-sign"}, "Message-ID: 'no-at-sign' is not of the form"),
    ],
)
def test_it_names_the_field_of_an_unusable_value(overrides, message):
    with pytest.raises(MessageBuildError, match=message.replace("(", r"\(")):
        build_message(request(**overrides))


def test_it_sends_an_international_domain_in_ascii(sent):
    msg, raw, rcpt_tos = sent(
        request(sender=Mailbox("sam@äcme.test"), to=[Mailbox("dana@clïent.test", "Dana")])
    )
    assert msg["To"] == "Dana <dana@xn--clent-dta.test>"
    assert raw.isascii()
    assert rcpt_tos == ["dana@xn--clent-dta.test"]
    assert envelope_sender(request(sender=Mailbox("sam@äcme.test"))) == "sam@xn--cme-pla.test"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("dänä@client.test", "has non-ASCII characters before the @"),
        ("dana @client.test", "is not a valid address"),
        ("dana@@client.test", "is not a valid address"),
        ("<dana@client.test>", "is not a valid address"),
    ],
)
def test_it_refuses_an_address_that_cannot_go_on_the_wire(address, reason):
    with pytest.raises(MessageBuildError, match=f"^Cc: .* {reason}"):
        build_message(request(cc=[Mailbox(address)]))
    with pytest.raises(MessageBuildError, match=f"^Bcc: .* {reason}"):
        envelope_recipients(request(bcc=[Mailbox(address)]))


def test_it_lists_each_envelope_recipient_once():
    req = request(cc=[Mailbox("dana@client.test")], bcc=[Mailbox("log@acme.test"), Mailbox("log@acme.test")])
    assert envelope_recipients(req) == ["dana@client.test", "log@acme.test"]


def test_it_turns_html_into_readable_text():
    text = html_to_text("<h1>Hello</h1><ul><li>one</li><li>two</li></ul><p>Bye <b>now</b></p>")
    assert "Hello" in text and "* one" in text and "* two" in text and "Bye now" in text
    assert "<" not in text


def test_it_keeps_a_long_unsubscribe_url_as_plain_text_on_the_wire(sent):
    # Real unsubscribe URLs carry a signed token and run past 78 characters; mail clients
    # read the header as <URL> and ignore an RFC 2047 encoded word.
    url = "https://sequent.acme.test/u/eyJtIjoxMjM0NX0:1xWrt6:uFrFkYNkFgsYBKV0ekzqIlMNx-TUAbQ8LzLfJdxdRVo"
    _msg, raw, _ = sent(request(unsubscribe_url=url))
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in raw
    assert b"=?utf-8?" not in raw.split(b"\r\n\r\n", 1)[0].split(b"List-Unsubscribe:", 1)[1].split(b"\r\n")[0]


@pytest.mark.parametrize(
    ("name", "subject"),
    [
        ("Dana Lee", "Quick question"),
        ("Søren Ærø", "Årets tilbud: 20 % på alt"),
        ("Lee, Dana", "Re: your order (#1234); “quoted”"),
        ('Dana "DJ" Lee', "100% =?not encoded"),
        ("李 小龍", "会議の件について " * 12),
        ("O'Brien-Smith", "word " * 220),
        ("Dana\tLee", "tab\tinside"),
        ("", "x" * 1200),
    ],
)
def test_it_writes_headers_every_mail_reader_decodes_to_the_same_text(sent, name, subject):
    # Plain ASCII headers are written directly, the rest by the email package; either way a
    # reader decodes exactly what was asked for, on lines within 998 octets, 7-bit.
    req = request(to=[Mailbox("dana@client.test", name)], subject=subject)
    msg, raw, _ = sent(req)
    assert msg["Subject"] == subject.strip()
    assert msg["To"].addresses[0].display_name == name.replace("\t", " ")
    assert msg["To"].addresses[0].addr_spec == "dana@client.test"
    assert raw.isascii()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_it_writes_plain_headers_as_they_are():
    data = build(request(subject="Quick question", unsubscribe_url="https://app.acme.test/u/x")).data
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    assert "\r\nTo: Dana Lee <dana@client.test>\r\n" in head
    assert "\r\nSubject: Quick question\r\n" in head
    assert "\r\nList-Unsubscribe: <https://app.acme.test/u/x>\r\n" in head


def test_it_round_trips_any_body_through_quoted_printable(sent):
    html = "<p>a=b  </p><p>.</p><p>tab\there é 😀 " + "long " * 60 + "</p><pre>\r\n lone\rcr </pre>"
    msg, raw, _ = sent(request(html=html))
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 78
    assert b"\n" not in raw.replace(b"\r\n", b"")
    # The parser keeps the wire's CRLF; a reader shows line breaks either way.
    text = msg.get_body(preferencelist=("plain",)).get_content().replace("\r\n", "\n")
    sent_html = msg.get_body(preferencelist=("html",)).get_content()
    assert text == html_to_text(html).replace("\r\n", "\n").replace("\r", "\n")
    assert "a=b" in sent_html and "😀" in sent_html and "long " * 60 in sent_html


def test_it_uses_a_new_boundary_for_each_message():
    first = build_message(request())
    second = build_message(request())
    assert first.get_boundary() != second.get_boundary()
    assert [part.get_content_type() for part in first.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize("name", ["Dana\r\nBcc: x@evil.test", "Søren\nX: 1", "Dana\x00"])
def test_it_refuses_a_line_break_in_a_non_ascii_or_plain_name(name):
    with pytest.raises(MessageBuildError, match=r"^To: "):
        build(request(to=[Mailbox("dana@client.test", name)]))
