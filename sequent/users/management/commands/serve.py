"""`sequent serve`: the web app under gunicorn, plus the background processes it needs.

Gunicorn runs in this process (its ``BaseApplication``), so `sequent serve` is one
command on every platform gunicorn supports. Helper processes (the background
worker and the local mail catcher) are started once gunicorn has bound its
socket and stopped when it exits, whether by SIGTERM, SIGINT or an error.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from django.core.management import get_commands
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections
from gunicorn.app.base import BaseApplication

from sequent.users.demo import DEMO_EMAIL, demo_password
from sequent.users.models import User

STOP_TIMEOUT = 10
# Threads mostly wait on the database. Tracking hits waiting together in one process are
# stored in one transaction (sequent/mail/tracking.py), so fewer processes with more
# threads make larger groups: on 2 cores, 1 process x 16 threads answered more hits than
# 2 x 8 (SQLite +10-35%, PostgreSQL +25-80%) for 15-35% less server CPU per hit.
DEFAULT_THREADS = 16


def default_workers() -> int:
    """Web processes by default: one per two CPU cores (at least one), the other core
    being left to the background worker and the database."""
    return max(1, (os.cpu_count() or 2) // 2)


class ChildProcesses:
    """The helper processes `sequent serve` owns: started together, stopped together."""

    def __init__(self) -> None:
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Start *argv* as a child named *name* (the name is only for messages)."""
        process = subprocess.Popen(argv)
        self.running.append((name, process))
        return process

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Ask every child to finish (SIGTERM), then kill those still running after *timeout*."""
        for _, process in self.running:
            if process.poll() is None:
                process.terminate()
        for name, process in self.running:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop within {timeout:.0f} s; killing it", file=sys.stderr)
                process.kill()
                process.wait()
        self.running.clear()


def catcher_wanted() -> bool:
    """Whether `sequent serve` runs the local mail catcher: yes unless ``SEQUENT_CATCHER=0``."""
    return os.environ.get("SEQUENT_CATCHER", "1").strip().lower() not in ("0", "false", "no", "off")


def child_commands(*, worker: bool, catcher: bool = False) -> list[tuple[str, list[str]]]:
    """The helper processes to run beside the web app, as (name, argv) pairs: the
    background worker, and the local mail catcher the demo mailbox sends to."""
    commands: list[tuple[str, list[str]]] = []
    # The worker command arrives with the sequence engine; serve works without it.
    if worker and "worker" in get_commands():
        commands.append(("worker", [sys.executable, "-m", "sequent", "worker"]))
    if catcher:
        commands.append(("mail catcher", [sys.executable, "-m", "sequent.mail.catcher"]))
    return commands


class SequentServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn serving ``sequent.wsgi:application`` with settings given as a dict."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.settings.items():
            self.cfg.set(key, value)

    def load(self) -> Callable[..., Any]:
        from sequent.wsgi import application  # tracking front included

        return application


def demo_hint() -> str:
    """One line telling a newcomer how to log in."""
    try:
        seeded = User.objects.filter(email=DEMO_EMAIL).exists()
    except DatabaseError:
        return "The database is not set up: run `sequent migrate`, then `sequent seed_demo`."
    if seeded:
        return f"Demo login: {DEMO_EMAIL} / {demo_password()}"
    return "No demo workspace: run `sequent seed_demo`, or `sequent user create EMAIL --role ROLE`."


def check_bindable(host: str, port: int) -> None:
    """Refuse early, with a message a newcomer can act on, when the address is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise CommandError(f"host: cannot resolve {host!r} ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # The same option gunicorn sets, so a port in TIME_WAIT is not reported as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise CommandError(
                f"port: cannot listen on {host}:{port} ({exc.strerror}); is Sequent already running? "
                "Stop it or choose another port with --port."
            ) from None


def public_url(host: str, port: int) -> str:
    """The address to print for a bind address (a wildcard host is shown as 127.0.0.1)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - only compared
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


class Command(BaseCommand):
    help = "Serve the web app with gunicorn, with the background worker beside it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")
        parser.add_argument(
            "--workers",
            type=int,
            default=default_workers(),
            help="web worker processes (default: one per two CPU cores, at least one)",
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=DEFAULT_THREADS,
            help=f"threads per web worker (default {DEFAULT_THREADS})",
        )
        parser.add_argument(
            "--no-worker", action="store_true", help="do not start the background worker beside the web app"
        )
        parser.add_argument(
            "--no-catcher",
            action="store_true",
            help="do not start the local mail catcher (also SEQUENT_CATCHER=0)",
        )
        parser.add_argument("--access-log", action="store_true", help="log every request to stderr")

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        check_bindable(host, port)
        url = public_url(host, port)
        hint = demo_hint()
        # Forked web workers must not share the connection the hint above opened.
        connections.close_all()

        children = ChildProcesses()
        commands = child_commands(
            worker=not options["no_worker"], catcher=catcher_wanted() and not options["no_catcher"]
        )
        master_pid = os.getpid()

        def when_ready(server: Any) -> None:
            for name, argv in commands:
                process = children.start(name, argv)
                self.stdout.write(f"Started {name} (pid {process.pid})")
            if not any(name == "worker" for name, _ in commands):
                self.stdout.write(
                    "No background worker here: sequences run only where `sequent worker` runs."
                )
            self.stdout.write(self.style.SUCCESS(f"Sequent is running at {url}"))
            self.stdout.write(hint)
            self.stdout.write("Press Ctrl+C to stop.")
            self.stdout.flush()

        def on_exit(server: Any) -> None:
            children.stop()

        bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        server = SequentServer(
            {
                "bind": [bind],
                "workers": max(1, options["workers"]),
                "threads": max(1, options["threads"]),
                "worker_class": "gthread",
                "proc_name": "sequent",
                # Load Django once in this process; the forked workers share its memory.
                "preload_app": True,
                "graceful_timeout": STOP_TIMEOUT,
                # Several `sequent serve` may run on one machine; a shared control socket would clash.
                "control_socket_disable": True,
                "accesslog": "-" if options["access_log"] else None,
                "when_ready": when_ready,
                "on_exit": on_exit,
            }
        )
        try:
            server.run()
        finally:
            # Gunicorn's forked web workers leave through here too: only the master owns the children.
            if os.getpid() == master_pid:
                children.stop()
