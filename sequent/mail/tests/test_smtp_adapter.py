import email
import email.policy

import pytest

from sequent.mail import smtp
from sequent.mail.building import BuildRequest, Mailbox, build_message, envelope_recipients, to_bytes
from sequent.mail.tests.servers import (
    PASSWORD,
    USERNAME,
    FaultHandler,
    RecordingHandler,
    SlowHandler,
    free_port,
    imap_server,
    self_signed_tls,
    smtp_server,
)


def message(n=1, to="dana@client.test"):
    return to_bytes(
        build_message(
            BuildRequest(
                sender=Mailbox(USERNAME, "Rep"),
                to=[Mailbox(to)],
                subject=f"Hello {n}",
                html=f"<p>Message {n}</p>",
                message_id=f"<m{n}@acme.test>",
            )
        )
    )


def settings_for(host, port, **overrides):
    values = dict(host=host, port=port, security="none", username=USERNAME, password=PASSWORD, timeout=5)
    values.update(overrides)
    return smtp.SmtpSettings(**values)


@pytest.fixture
def recording():
    handler = RecordingHandler()
    with smtp_server(handler, auth=True) as (host, port):
        yield handler, settings_for(host, port)


def fault_server(stage, reply, **kwargs):
    handler = FaultHandler(stage=stage, reply=reply, **kwargs)
    return handler, smtp_server(handler)


def test_it_logs_in_and_sends_several_messages_over_one_connection(recording):
    handler, settings = recording
    conn = smtp.open_connection(settings)
    try:
        first = smtp.send(conn, USERNAME, ["dana@client.test"], message(1))
        second = smtp.send(conn, USERNAME, ["eve@client.test"], message(2))
    finally:
        smtp.close(conn)
    assert first.code == 250 and "queued as TEST123" in first.reply
    assert second.accepted == ["eve@client.test"]
    assert [r.rcpt_tos for r in handler.received] == [["dana@client.test"], ["eve@client.test"]]
    assert handler.received[0].mail_from == USERNAME
    parsed = email.message_from_bytes(handler.received[1].data, policy=email.policy.default)
    assert parsed["Message-ID"] == "<m2@acme.test>"


def test_it_sends_a_lone_dot_line_without_ending_the_message_early(recording):
    handler, settings = recording
    # A line holding only "." would end DATA; ".hidden" would lose its dot. Both must survive.
    body_with_dot = message(1).replace(b"\r\n\r\n--", b"\r\n.\r\n.hidden\r\n\r\n--", 1)
    conn = smtp.open_connection(settings)
    smtp.send(conn, USERNAME, ["dana@client.test"], body_with_dot)
    smtp.close(conn)
    assert handler.received[0].data.replace(b"\r\n", b"\n") == body_with_dot.replace(b"\r\n", b"\n")


def test_it_classifies_a_refused_login_as_an_auth_failure(recording):
    _, settings = recording
    with pytest.raises(smtp.AuthFailure) as caught:
        smtp.open_connection(settings_for(settings.host, settings.port, password="wrong"))
    assert caught.value.code == 535
    assert "535" in caught.value.message


def test_it_reports_a_server_that_is_not_there_as_temporary():
    port = free_port()
    with pytest.raises(smtp.TemporaryFailure, match="cannot connect") as caught:
        smtp.open_connection(settings_for("127.0.0.1", port))
    assert caught.value.connection_lost


@pytest.mark.parametrize(
    ("stage", "reply", "expected", "enhanced"),
    [
        ("mail", "421 4.7.0 Too many connections, closing", smtp.TemporaryFailure, "4.7.0"),
        ("rcpt", "450 4.2.1 Mailbox busy, try later", smtp.TemporaryFailure, "4.2.1"),
        ("data", "451 4.3.0 Local error in processing", smtp.TemporaryFailure, "4.3.0"),
        ("mail", "530 5.7.0 Authentication required", smtp.AuthFailure, "5.7.0"),
        ("data", "552 5.2.0 Daily sending quota exceeded", smtp.QuotaExceeded, "5.2.0"),
        ("mail", "550 5.4.5 Daily user sending limit exceeded", smtp.QuotaExceeded, "5.4.5"),
        ("data", "550 Daily limit reached for this account", smtp.QuotaExceeded, None),
        ("data", "554 5.7.1 Message rejected as spam", smtp.PermanentFailure, "5.7.1"),
        ("mail", "553 5.1.8 Sender address rejected: domain not found", smtp.PermanentFailure, "5.1.8"),
    ],
)
def test_it_classifies_each_refusal_and_delivers_nothing(stage, reply, expected, enhanced):
    handler, server = fault_server(stage, reply)
    with server as (host, port):
        conn = smtp.open_connection(settings_for(host, port, username=""))
        with pytest.raises(smtp.SmtpFailure) as caught:
            smtp.send(conn, USERNAME, ["dana@client.test"], message())
        smtp.close(conn)
    assert type(caught.value) is expected
    assert caught.value.code == int(reply[:3])
    assert caught.value.enhanced == enhanced
    assert caught.value.stage == ("data-end" if stage == "data" else stage)
    assert caught.value.connection_lost == reply.startswith("421")
    assert handler.received == []


def test_it_names_the_rejected_recipient_of_a_5_1_1():
    handler, server = fault_server("rcpt", "550 5.1.1 <nobody@client.test>: Recipient address rejected")
    with server as (host, port):
        conn = smtp.open_connection(settings_for(host, port, username=""))
        with pytest.raises(smtp.RecipientRejected) as caught:
            smtp.send(conn, USERNAME, ["nobody@client.test"], message())
        # The failed transaction was reset: the same connection carries the next message.
        handler.stage = "none"
        result = smtp.send(conn, USERNAME, ["dana@client.test"], message(2))
        smtp.close(conn)
    assert caught.value.recipient == "nobody@client.test"
    assert caught.value.enhanced == "5.1.1"
    assert isinstance(caught.value, smtp.PermanentFailure)
    assert result.code == 250
    assert [r.rcpt_tos for r in handler.received] == [["dana@client.test"]]


def test_it_delivers_to_the_accepted_recipients_and_lists_the_refused_ones():
    handler, server = fault_server("rcpt", "550 5.1.1 User unknown", bad_recipients=("gone@client.test",))
    with server as (host, port):
        conn = smtp.open_connection(settings_for(host, port, username=""))
        result = smtp.send(conn, USERNAME, ["dana@client.test", "gone@client.test"], message())
        smtp.close(conn)
    assert result.accepted == ["dana@client.test"]
    assert result.refused == {"gone@client.test": (550, "5.1.1 User unknown")}
    assert [r.rcpt_tos for r in handler.received] == [["dana@client.test"]]


def test_it_calls_a_connection_lost_before_the_message_was_sent_temporary():
    handler, server = fault_server("rcpt", "drop")
    with server as (host, port):
        conn = smtp.open_connection(settings_for(host, port, username=""))
        with pytest.raises(smtp.TemporaryFailure) as caught:
            smtp.send(conn, USERNAME, ["dana@client.test"], message())
    assert caught.value.connection_lost
    assert "nothing was delivered" in caught.value.message
    assert handler.received == []


def test_it_calls_a_connection_lost_after_the_whole_message_uncertain():
    handler, server = fault_server("data", "drop")
    with server as (host, port):
        conn = smtp.open_connection(settings_for(host, port, username=""))
        with pytest.raises(smtp.UncertainDelivery) as caught:
            smtp.send(conn, USERNAME, ["dana@client.test"], message())
    assert caught.value.connection_lost
    assert "may have been delivered" in caught.value.message
    assert len(handler.received) == 1


def test_it_calls_a_server_silent_after_the_whole_message_uncertain():
    handler, server = fault_server("data", "hang")
    with server as (host, port):
        conn = smtp.open_connection(settings_for(host, port, username="", timeout=0.5))
        with pytest.raises(smtp.UncertainDelivery):
            smtp.send(conn, USERNAME, ["dana@client.test"], message())
    assert len(handler.received) == 1


def test_it_keeps_bcc_recipients_in_the_envelope_only(recording):
    handler, settings = recording
    request = BuildRequest(
        sender=Mailbox(USERNAME, "Rep"),
        to=[Mailbox("dana@client.test", "Dana")],
        cc=[Mailbox("boss@client.test")],
        bcc=[Mailbox("crm-log@acme.test")],
        subject="Hello",
        html="<p>Hi</p>",
        message_id="<bcc@acme.test>",
    )
    conn = smtp.open_connection(settings)
    smtp.send(conn, USERNAME, envelope_recipients(request), to_bytes(build_message(request)))
    smtp.close(conn)
    received = handler.received[0]
    assert received.rcpt_tos == ["dana@client.test", "boss@client.test", "crm-log@acme.test"]
    assert b"crm-log@acme.test" not in received.data
    assert b"\r\nBcc:" not in received.data and not received.data.startswith(b"Bcc:")


def test_it_says_nothing_is_wrong_with_a_good_smtp_and_imap_login(recording):
    _, settings = recording
    with imap_server() as (host, port):
        imap = smtp.ImapSettings(host, port, security="none", username=USERNAME, password=PASSWORD, timeout=5)
        assert smtp.test_connection(settings, imap) == []


def test_it_reports_the_exact_smtp_and_imap_failures(recording):
    _, settings = recording
    bad_smtp = settings_for(settings.host, settings.port, password="wrong")
    with imap_server() as (host, port):
        bad_imap = smtp.ImapSettings(
            host, port, security="none", username=USERNAME, password="nope", timeout=5
        )
        problems = smtp.test_connection(bad_smtp, bad_imap)
    assert len(problems) == 2
    assert problems[0].startswith("SMTP: login refused: 535")
    assert problems[1].startswith("IMAP: login refused by 127.0.0.1")
    assert "Invalid credentials" in problems[1]


def test_it_reports_servers_that_cannot_be_reached():
    smtp_port, imap_port = free_port(), free_port()
    problems = smtp.test_connection(
        settings_for("127.0.0.1", smtp_port),
        smtp.ImapSettings("127.0.0.1", imap_port, security="none", username="u", password="p", timeout=5),
    )
    assert problems == [
        f"SMTP: 127.0.0.1:{smtp_port}: cannot connect (Connection refused)",
        f"IMAP: cannot connect to 127.0.0.1:{imap_port} (Connection refused)",
    ]


def test_it_reports_tls_asked_of_a_plain_server(recording):
    _, settings = recording
    problems = smtp.test_connection(settings_for(settings.host, settings.port, security="ssl"))
    assert len(problems) == 1
    assert problems[0].startswith(f"SMTP: {settings.host}:{settings.port}: TLS failed")


def test_it_reports_starttls_asked_of_a_server_without_it(recording):
    _, settings = recording
    problems = smtp.test_connection(settings_for(settings.host, settings.port, security="starttls"))
    assert problems == [
        f"SMTP: {settings.host}:{settings.port}: STARTTLS extension not supported by server.; "
        "check the security setting (STARTTLS or SSL) and the port"
    ]


def test_it_refuses_a_non_ascii_envelope_address_before_starting_a_transaction(recording):
    handler, settings = recording
    conn = smtp.open_connection(settings)
    with pytest.raises(smtp.PermanentFailure, match="cannot be used in the SMTP envelope"):
        smtp.send(conn, USERNAME, ["dana@client.test", "dänä@client.test"], message(1))
    result = smtp.send(conn, USERNAME, ["dana@client.test"], message(2))
    smtp.close(conn)
    assert result.code == 250
    assert len(handler.received) == 1


def test_it_closes_the_connection_after_a_421():
    handler, server = fault_server("mail", "421 4.3.2 Service shutting down")
    with server as (host, port):
        conn = smtp.open_connection(settings_for(host, port, username=""))
        with pytest.raises(smtp.TemporaryFailure):
            smtp.send(conn, USERNAME, ["dana@client.test"], message())
        with pytest.raises(smtp.TemporaryFailure) as again:
            smtp.send(conn, USERNAME, ["dana@client.test"], message())
    assert again.value.connection_lost and again.value.stage == "mail"
    assert handler.received == []


def test_it_logs_in_and_sends_over_starttls(tmp_path):
    server_tls, client_tls = self_signed_tls(tmp_path)
    handler = RecordingHandler()
    with smtp_server(handler, auth=True, tls=server_tls) as (host, port):
        settings = settings_for(host, port, security="starttls", ssl_context=client_tls)
        assert smtp.test_connection(settings) == []
        conn = smtp.open_connection(settings)
        smtp.send(conn, USERNAME, ["dana@client.test"], message())
        smtp.close(conn)
        # Without TLS the server refuses to go on, and the login never happens in clear.
        problems = smtp.test_connection(settings_for(host, port, security="none"))
    assert len(handler.received) == 1
    assert len(problems) == 1 and "AUTH extension not supported" in problems[0]


def test_it_logs_in_and_sends_over_implicit_tls(tmp_path):
    server_tls, client_tls = self_signed_tls(tmp_path)
    handler = RecordingHandler()
    with smtp_server(handler, auth=True, implicit_tls=server_tls) as (host, port):
        settings = settings_for(host, port, security="ssl", ssl_context=client_tls)
        conn = smtp.open_connection(settings)
        smtp.send(conn, USERNAME, ["dana@client.test"], message())
        smtp.close(conn)
        # A certificate the client does not trust is a TLS failure, reported as such.
        untrusted = smtp.test_connection(settings_for(host, port, security="ssl"))
    assert len(handler.received) == 1
    assert (
        len(untrusted) == 1 and "TLS failed" in untrusted[0] and "CERTIFICATE_VERIFY_FAILED" in untrusted[0]
    )


@pytest.mark.parametrize("security", ["none", "ssl"])
def test_it_does_other_work_while_the_server_answers_and_sends_the_message_intact(tmp_path, security):
    server_tls, client_tls = self_signed_tls(tmp_path)
    handler = SlowHandler()
    tls = {"implicit_tls": server_tls} if security == "ssl" else {}
    work = ["render", "build", "store"]
    done = []

    def idle():
        if work:
            done.append(work.pop(0))
        return bool(work)

    with smtp_server(handler, auth=True, **tls) as (host, port):
        conn = smtp.open_connection(settings_for(host, port, security=security, ssl_context=client_tls))
        data = message(7)
        result = smtp.send(conn, USERNAME, ["dana@client.test"], data, idle=idle)
        # With no work to do, waiting is plain waiting.
        smtp.send(conn, USERNAME, ["eve@client.test"], message(8), idle=lambda: False)
        smtp.close(conn)
    assert result.code == 250
    assert done == ["render", "build", "store"]  # all done while the server took its time
    assert [r.rcpt_tos for r in handler.received] == [["dana@client.test"], ["eve@client.test"]]
    assert handler.received[0].data.replace(b"\r\n", b"\n") == data.replace(b"\r\n", b"\n")


def test_it_refuses_an_envelope_address_with_a_space(recording):
    handler, settings = recording
    conn = smtp.open_connection(settings)
    with pytest.raises(smtp.PermanentFailure, match="cannot be used in the SMTP envelope"):
        smtp.send(conn, USERNAME, ["dana @client.test"], message(1))
    smtp.close(conn)
    assert handler.received == []
