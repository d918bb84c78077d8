import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sequent.lib import clock
from sequent.mail import catcher, smtp
from sequent.mail.building import BuildRequest, Mailbox, build_message, envelope_recipients, to_bytes
from sequent.mail.tests.servers import free_port

ROOT = Path(__file__).resolve().parents[3]
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def request(n, **overrides):
    values = dict(
        sender=Mailbox("sam@acme.test", "Sam Rep"),
        to=[Mailbox("dana@client.test", "Dana Lee")],
        subject=f"Message {n}",
        html=f"<p>Hi Dana, this is message {n}. <a href='https://app.test/c/tok'>Pricing</a></p>",
        message_id=f"<m{n}@acme.test>",
        date=T0,
    )
    values.update(overrides)
    return BuildRequest(**values)


def deliver(port, req):
    conn = smtp.open_connection(smtp.SmtpSettings("127.0.0.1", port, security="none", timeout=5))
    try:
        smtp.send(conn, req.sender.address, envelope_recipients(req), to_bytes(build_message(req)))
    finally:
        smtp.close(conn)


@pytest.fixture
def running(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    controller = catcher.make_controller(port=free_port())
    controller.start()
    yield controller.port
    controller.stop()


def test_it_keeps_each_caught_message_as_an_eml_file(running, tmp_path):
    deliver(running, request(1, bcc=[Mailbox("log@acme.test")]))
    files = sorted((tmp_path / "mail-catcher").iterdir())
    assert len(files) == 1 and files[0].suffix == ".eml"
    data = files[0].read_bytes()
    assert b"Message-ID: <m1@acme.test>" in data


def test_it_shows_a_caught_message_with_html_headers_and_envelope(running):
    deliver(running, request(1, bcc=[Mailbox("log@acme.test")], unsubscribe_url="https://app.test/u/x"))
    (summary,) = catcher.list_caught(limit=10, offset=0)
    assert summary.subject == "Message 1"
    assert summary.sender == "Sam Rep <sam@acme.test>"
    assert summary.to == "Dana Lee <dana@client.test>"
    assert summary.date == "Mon, 02 Mar 2026 09:00:00 +0000"
    message = catcher.read_caught(summary.name)
    assert '<a href="https://app.test/c/tok">Pricing</a>' in message.html
    assert "Hi Dana, this is message 1." in message.text
    assert message.envelope_from == "sam@acme.test"
    assert message.envelope_to == "dana@client.test, log@acme.test"
    assert ("List-Unsubscribe", "<https://app.test/u/x>") in message.headers
    assert ("Message-ID", "<m1@acme.test>") in message.headers


def test_it_lists_newest_first_one_page_at_a_time(running):
    for n in range(1, 4):
        with clock.frozen(T0 + dt.timedelta(minutes=n)):
            deliver(running, request(n))
    assert catcher.count_caught() == 3
    assert [s.subject for s in catcher.list_caught(limit=2, offset=0)] == ["Message 3", "Message 2"]
    assert [s.subject for s in catcher.list_caught(limit=2, offset=2)] == ["Message 1"]


def test_it_reads_only_files_it_wrote(running, tmp_path):
    (tmp_path / "secret_key").write_text("do not show")
    with pytest.raises(FileNotFoundError):
        catcher.read_caught("../secret_key")
    with pytest.raises(FileNotFoundError):
        catcher.read_caught("20260302T090000000000Z-" + "0" * 32 + ".eml")


def test_it_leaves_no_partial_files_behind(running, tmp_path):
    deliver(running, request(1))
    names = [p.name for p in (tmp_path / "mail-catcher").iterdir()]
    assert len(names) == 1 and not names[0].startswith(".")


def test_it_lists_nothing_before_any_mail_arrives(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert catcher.list_caught(limit=10, offset=0) == []
    assert catcher.count_caught() == 0


def test_it_runs_as_a_child_process_until_told_to_stop(tmp_path):
    port = free_port()
    env = dict(os.environ, SEQUENT_CATCHER_PORT=str(port), SEQUENT_VAR_DIR=str(tmp_path))
    child = subprocess.Popen(
        [sys.executable, "-m", "sequent.mail.catcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(200):  # up to ~10 s for Python and Django to start
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if child.poll() is not None:
                    pytest.fail(child.stderr.read().decode())
                time.sleep(0.05)
        deliver(port, request(7))
        assert len(list((tmp_path / "mail-catcher").glob("*.eml"))) == 1
    finally:
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=10)
    assert child.returncode == 0
    assert f"Mail catcher on 127.0.0.1:{port}" in out.decode()
