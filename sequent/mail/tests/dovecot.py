"""A private Dovecot IMAP server on 127.0.0.1 for the inbound tests.

One server per test session (starting Dovecot takes a moment); each test gets its
own user and maildir, so tests stay isolated. Users live in a passwd-file that
Dovecot re-reads when it changes, so a test can change a user's password.
"""

from __future__ import annotations

import contextlib
import grp
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from imapclient import IMAPClient

from sequent.mail.tests.servers import free_port

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = sequent-test-{port}
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
default_login_user = dovenull
default_internal_user = dovecot
default_internal_group = dovecot
log_path = {root}/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_uid = {uid}
mail_gid = {gid}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = create
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""

_numbers = itertools.count(1)
POOL_SIZE = 40
DEFAULT_PASSWORD = "secret-1"


def available() -> bool:
    """Whether Dovecot is installed here."""
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


@dataclass
class Dovecot:
    """A running Dovecot: its port, its folder, and its users file."""

    root: Path
    port: int
    uid: int
    gid: int
    host: str = "127.0.0.1"
    _stamp: int = 0
    _pool: list[str] = field(default_factory=list)

    def _lines(self) -> dict[str, str]:
        users = self.root / "users"
        lines = users.read_text().splitlines() if users.exists() else []
        return {line.split(":", 1)[0]: line for line in lines if line}

    def _write(self, lines: dict[str, str]) -> None:
        users = self.root / "users"
        staging = self.root / "users.new"
        staging.write_text("".join(line + "\n" for line in lines.values()))
        os.chmod(staging, 0o644)
        os.replace(staging, users)
        # Dovecot re-reads the file when its mtime (in seconds) changed, looking at most
        # once a second: give each version a later mtime, then let that second pass.
        # (Probing with logins instead would earn the address a failed-login penalty.)
        self._stamp = max(int(time.time()), self._stamp + 1)
        os.utime(users, (self._stamp, self._stamp))
        time.sleep(max(self._stamp + 1 - time.time(), 0) + 0.05)

    def add_user(self, password: str = "secret-1") -> tuple[str, str]:
        """A fresh user with an empty maildir: (username, password). Users are made in
        batches, so most tests do not wait for Dovecot to read its users file again."""
        if not self._pool:
            lines = self._lines()
            for _ in range(POOL_SIZE):
                name = f"rep{next(_numbers)}-{os.getpid()}@acme.test"
                home = self.root / "homes" / name
                home.mkdir(parents=True)
                os.chown(home, self.uid, self.gid)
                lines[name] = f"{name}:{{PLAIN}}{DEFAULT_PASSWORD}:{self.uid}:{self.gid}::{home}"
                self._pool.append(name)
            self._write(lines)
        name = self._pool.pop(0)
        if password != DEFAULT_PASSWORD:
            self.set_password(name, password)
        return name, password

    def set_password(self, name: str, password: str) -> None:
        """Change a user's password, as a rep would at their provider."""
        lines = self._lines()
        parts = lines[name].split(":")
        parts[1] = "{PLAIN}" + password
        lines[name] = ":".join(parts)
        self._write(lines)

    @contextlib.contextmanager
    def client(self, name: str, password: str) -> Iterator[IMAPClient]:
        """A logged-in IMAP session as *name*."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            client.login(name, password)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()


def _wait_for_port(port: int, log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"Dovecot did not start on port {port}: {log.read_text() if log.exists() else ''}")


@contextlib.contextmanager
def dovecot_server(root: Path) -> Iterator[Dovecot]:
    """Start Dovecot under *root* (a fresh folder) and stop it afterwards."""
    uid = pwd.getpwnam("dovecot").pw_uid
    gid = grp.getgrnam("dovecot").gr_gid
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    for name in ("run", "state", "homes"):
        (root / name).mkdir(exist_ok=True)
    # Dovecot's unprivileged processes must be able to walk to the users file and homes.
    for folder in (root, root / "homes"):
        os.chmod(folder, 0o755)
    # pytest's temporary folders are private (0700): let others traverse them, no more.
    top = Path(tempfile.gettempdir())
    parent = root.parent
    while top in parent.parents:
        os.chmod(parent, os.stat(parent).st_mode | 0o011)
        parent = parent.parent
    server = Dovecot(root=root, port=port, uid=uid, gid=gid)
    server._write({})
    config = root / "dovecot.conf"
    config.write_text(_CONFIG.format(root=root, port=port, uid=uid, gid=gid))
    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    # Dovecot forks into the background; its children must not hold our pipes open.
    with (root / "start.log").open("wb") as start_log:
        subprocess.run(
            [binary, "-c", str(config)],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=start_log,
            stderr=start_log,
        )
    try:
        _wait_for_port(port, root / "dovecot.log")
        yield server
    finally:
        pid_file = root / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """One private Dovecot for the session (tests take a fresh user each)."""
    if not available():
        pytest.skip("Dovecot is not installed (apt-get install dovecot-imapd)")
    with dovecot_server(tmp_path_factory.mktemp("dovecot") / "server") as server:
        yield server


@pytest.fixture
def imap_user(dovecot: Dovecot) -> tuple[str, str]:
    """A fresh Dovecot user with an empty maildir: (username, password)."""
    return dovecot.add_user()
