"""Phase **track**: open-pixel and click requests against the app as `sequent serve` runs it.

The parent starts ``sequent serve`` (gunicorn, its default workers and threads; no
background worker, no mail catcher) on a free port of 127.0.0.1 with the workspace's
environment, runs the load generator (``loadgen``) in a separate process over the
requests the deliver child wrote, stops the server, then counts the stored events in
a child: every request must have become exactly one event (``lost`` = requests -
events; a negative value would mean duplicates).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sequent.bench import child
from sequent.bench.workspace import Workspace

CONNECTIONS = 8
START_TIMEOUT = 120


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, server: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise child.ChildFailed(f"`sequent serve` exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise child.ChildFailed(f"`sequent serve` did not listen on port {port} within {timeout:.0f} s")


def measure(workspace: Workspace, requests_file: Path, timeout: float | None = None) -> dict[str, Any]:
    """Parent side: serve, load, stop, count."""
    port = free_port()
    log = (workspace.dir / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "sequent", "serve", "--no-worker", "--no-catcher", "--port", str(port)],
        env=workspace.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_listening(port, server, START_TIMEOUT)
        load = subprocess.run(
            [
                sys.executable,
                "-m",
                "sequent.bench.loadgen",
                "127.0.0.1",
                str(port),
                str(requests_file),
                str(CONNECTIONS),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if load.returncode != 0:
            raise child.ChildFailed(f"the load generator failed:\n{load.stderr[-2000:]}")
        figures = json.loads(load.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    stored = child.call(workspace, "track-count", requests_file=str(requests_file))
    figures.update(stored)
    figures["lost"] = figures["requests"] - stored["events_stored"]
    return figures


def count_events(requests_file: str, **_: Any) -> dict[str, Any]:
    """Child: the stored open and click events the requests of *requests_file* made (an
    implied open of a clicked email is not one of them)."""
    from django.urls import reverse

    from sequent.mail import tokens
    from sequent.mail.models import EmailEvent, EmailEventKind

    prefix = reverse("mail:click", args=["-"]).removesuffix("-")
    clicked: set[int] = set()
    for line in Path(requests_file).read_text().split():
        if line.startswith(prefix):
            clicked.add(tokens.read_click_token(line.removeprefix(prefix))[0])
    events = EmailEvent.objects.filter(kind__in=[EmailEventKind.OPENED, EmailEventKind.CLICKED])
    clicks = events.filter(kind=EmailEventKind.CLICKED).count()
    opens = events.filter(kind=EmailEventKind.OPENED).exclude(message_id__in=clicked).count()
    return {"events_stored": clicks + opens, "opens_stored": opens, "clicks_stored": clicks}
