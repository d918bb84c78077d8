"""Real servers on 127.0.0.1 for the mail tests: SMTP (aiosmtpd) with handlers that
record what they receive or answer with a chosen fault, and a minimal IMAP
responder for login checks."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USERNAME = "rep@acme.test"
PASSWORD = "app-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


@dataclass
class RecordingHandler:
    """Accepts every message and keeps it, envelope and raw bytes."""

    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 Ok: queued as TEST123"


@dataclass
class SlowHandler(RecordingHandler):
    """Accepts and keeps every message, taking *delay* seconds over each command, as a
    server across a network does."""

    delay: float = 0.02

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await asyncio.sleep(self.delay)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.sleep(self.delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@dataclass
class FaultHandler(RecordingHandler):
    """Answers *reply* at *stage* ("mail", "rcpt", "data"); reply "drop" closes the
    connection there instead. Recipients in *bad_recipients* get *reply* at RCPT."""

    stage: str = "data"
    reply: str = "451 4.3.0 Try again later"
    bad_recipients: tuple[str, ...] = ()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.stage == "mail":
            return self._fault(server)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.stage == "rcpt" and (not self.bad_recipients or address in self.bad_recipients):
            return self._fault(server)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.stage == "data":
            if self.reply in ("drop", "hang"):
                # The whole message arrived: a server may have delivered it before dying.
                self.received.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
                )
            if self.reply == "hang":
                await asyncio.sleep(30)
            return self._fault(server)
        return await super().handle_DATA(server, session, envelope)

    def _fault(self, server):
        if self.reply == "drop":
            server.transport.close()
            return "250 never seen"
        return self.reply


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USERNAME
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)


def self_signed_tls(tmp_path):
    """A certificate for 127.0.0.1: (server SSLContext, client SSLContext trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


@contextlib.contextmanager
def smtp_server(handler, *, auth: bool = False, tls=None, implicit_tls=None) -> Iterator[tuple[str, int]]:
    """Run *handler* on a free port of 127.0.0.1 for the block; yields (host, port).

    *tls* (a server SSLContext) offers STARTTLS; *implicit_tls* wraps the port in TLS."""
    kwargs = {"authenticator": _authenticate, "auth_require_tls": tls is not None} if auth else {}
    if tls is not None:
        kwargs.update(tls_context=tls, require_starttls=True)
    if implicit_tls is not None:
        kwargs["ssl_context"] = implicit_tls
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), server_hostname="test-smtp", **kwargs
    )
    controller.start()
    try:
        yield controller.hostname, controller.port
    finally:
        controller.stop()


class _ImapResponder(socketserver.StreamRequestHandler):
    """Just enough IMAP4rev1 for a login check: CAPABILITY, LOGIN, LOGOUT."""

    def handle(self):
        self.wfile.write(b"* OK IMAP4rev1 test server ready\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            tag, _, rest = line.decode().strip().partition(" ")
            command, _, args = rest.partition(" ")
            command = command.upper()
            if command == "CAPABILITY":
                self.wfile.write(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n".encode())
            elif command == "LOGIN":
                user, _, password = args.partition(" ")
                if user.strip('"') == USERNAME and password.strip('"') == PASSWORD:
                    self.wfile.write(f"{tag} OK [CAPABILITY IMAP4rev1] logged in\r\n".encode())
                else:
                    self.wfile.write(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials\r\n".encode())
            elif command == "LOGOUT":
                self.wfile.write(f"* BYE\r\n{tag} OK bye\r\n".encode())
                return
            else:
                self.wfile.write(f"{tag} BAD unknown command\r\n".encode())


@contextlib.contextmanager
def imap_server() -> Iterator[tuple[str, int]]:
    """A minimal IMAP server on a free port of 127.0.0.1; yields (host, port)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _ImapResponder)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[0], server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
