import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from django.core.management import CommandError, call_command, get_commands

from sequent.users.management.commands.serve import ChildProcesses, child_commands

ROOT = Path(__file__).resolve().parents[3]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers.get("Content-Type"), response.read()


def wait_until_serving(process, url, log):
    for _ in range(150):
        if process.poll() is not None:
            raise AssertionError(f"serve exited with {process.returncode}: {log.read_text()}")
        try:
            return get(url)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"serve did not answer: {log.read_text()}")


def test_it_serves_the_login_page_and_static_files_until_terminated(tmp_path):
    port = free_port()
    env = {**os.environ, "SEQUENT_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "sequent", "serve", "--port", str(port), "--workers", "1", "--no-worker"],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        status, _, body = wait_until_serving(process, f"http://127.0.0.1:{port}/login/", err)
        assert status == 200
        assert b'name="password"' in body
        status, content_type, body = get(f"http://127.0.0.1:{port}/static/sequent/app.css")
        assert status == 200
        assert content_type.startswith("text/css")
        assert b"--accent" in body
        web_workers = psutil.Process(process.pid).children(recursive=True)
        assert web_workers
    finally:
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=20)
    assert returncode == 0
    _, alive = psutil.wait_procs(web_workers, timeout=5)
    assert alive == []
    printed = out.read_text()
    assert f"Sequent is running at http://127.0.0.1:{port}/" in printed
    assert "sequent migrate" in printed  # the hint for a database not set up yet


def test_it_stops_its_child_processes_and_kills_one_that_ignores_sigterm():
    children = ChildProcesses()
    polite = children.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"])
    stubborn = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
    )
    children.running.append(("stubborn", stubborn))
    assert stubborn.stdout.readline() == b"ready\n"
    children.stop(timeout=1)
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert children.running == []


def test_it_runs_the_worker_beside_the_web_app_unless_told_not_to():
    assert child_commands(worker=False) == []
    names = [name for name, _ in child_commands(worker=True)]
    assert ("worker" in names) == ("worker" in get_commands())


def test_it_refuses_a_port_in_use_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            CommandError, match=rf"^port: cannot listen on 127.0.0.1:{port} .*already running"
        ):
            call_command("serve", "--port", str(port), "--no-worker")
