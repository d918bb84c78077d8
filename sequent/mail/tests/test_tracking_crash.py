"""An answered hit is a stored hit: `sequent serve` killed (SIGKILL, master and web
processes at once) while pixel hits are in flight loses none it had answered."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from sequent.mail import tokens
from sequent.reliability import harness

BROWSER = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15"
)
HITS, KILL_AFTER = 400, 150


def _stored_opens(url: str, message_ids: list[int]) -> set[int]:
    """The messages of *message_ids* with an open event, read by a fresh process."""
    script = (
        "import django, json, os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'sequent.settings'; "
        "django.setup(); "
        "from sequent.mail.models import EmailEvent; "
        "ids = json.loads(sys.stdin.read()); "
        "print(json.dumps(sorted(set(EmailEvent.objects.filter(kind='opened', message_id__in=ids)"
        ".values_list('message_id', flat=True)))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(message_ids),
        capture_output=True,
        text=True,
        env=harness.python_env(url),
        cwd=harness.ROOT,
        timeout=120,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_keeps_every_answered_hit_when_the_server_is_killed(tmp_path):
    with harness.worker_database(tmp_path) as url:
        seeded = harness.seed(url, contacts=10, smtp_port=harness.free_port(), sent=HITS)
        port = harness.free_port()
        web = subprocess.Popen(
            [
                *(sys.executable, "-m", "sequent", "serve", "--skip-checks", "--no-worker", "--no-catcher"),
                *("--port", str(port)),
            ],
            cwd=harness.ROOT,
            env=harness.python_env(url, SEQUENT_CATCHER="0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: killed as a whole below
        )
        answered: list[str] = []
        lock = threading.Lock()
        killed = threading.Event()

        def hit(path: str) -> None:
            if killed.is_set():
                return
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/{path}", headers={"User-Agent": BROWSER}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
                    status = response.status
            except (urllib.error.URLError, http.client.HTTPException, OSError):
                return  # in flight when the server died: no answer, no promise
            with lock:
                if status == 200 and not killed.is_set():
                    answered.append(path)
                    if len(answered) == KILL_AFTER:
                        os.killpg(web.pid, signal.SIGKILL)
                        killed.set()

        try:
            assert web.stdout is not None
            for line in web.stdout:
                if "Sequent is running" in line:
                    break
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(hit, seeded["open_paths"]))
        finally:
            if not killed.is_set():
                os.killpg(web.pid, signal.SIGKILL)
            web.communicate(timeout=30)
        assert killed.is_set(), "the server was not killed mid-load"
        answered_ids = [tokens.read_open_token(p.removeprefix("t/o/").removesuffix(".gif")) for p in answered]
        assert len(answered_ids) == KILL_AFTER
        assert _stored_opens(url, answered_ids) == set(answered_ids)
