"""A local stand-in for Twilio's Messages API on 127.0.0.1, for the official SDK.

It answers ``POST /2010-04-01/Accounts/{sid}/Messages.json`` like Twilio: 201 with the
new message, or 400 with Twilio's error body for a number in ``refuse``. Each request's
form and Basic-auth user are recorded.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC\w+)/Messages\.json$")
_sids = itertools.count(1)


@dataclass
class FakeTwilio:
    """What the server received and which numbers it refuses (number -> (code, message))."""

    base_url: str = ""
    requests: list[dict[str, str]] = field(default_factory=list)
    users: list[str] = field(default_factory=list)
    refuse: dict[str, tuple[int, str]] = field(default_factory=dict)


def _handler(state: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, payload: dict[str, object]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            match = _PATH.match(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            auth = self.headers.get("Authorization", "")
            user = base64.b64decode(auth.split(" ", 1)[1]).decode().split(":")[0] if " " in auth else ""
            if match is None or user != match["account"]:
                self._answer(401, {"code": 20003, "message": "Authenticate", "status": 401})
                return
            state.requests.append(form)
            state.users.append(user)
            to = form.get("To", "")
            if to in state.refuse:
                code, message = state.refuse[to]
                self._answer(
                    400,
                    {
                        "code": code,
                        "message": message,
                        "more_info": f"https://www.twilio.com/docs/errors/{code}",
                        "status": 400,
                    },
                )
                return
            sid = f"SM{next(_sids):032x}"
            self._answer(
                201,
                {
                    "sid": sid,
                    "account_sid": match["account"],
                    "to": to,
                    "from": form.get("From"),
                    "messaging_service_sid": form.get("MessagingServiceSid"),
                    "body": form.get("Body", ""),
                    "status": "queued",
                    "num_segments": "1",
                    "direction": "outbound-api",
                    "api_version": "2010-04-01",
                    "uri": f"/2010-04-01/Accounts/{match['account']}/Messages/{sid}.json",
                },
            )

    return Handler


@contextmanager
def fake_twilio() -> Iterator[FakeTwilio]:
    """Run the stand-in on a free port of 127.0.0.1 for the duration of the block."""
    state = FakeTwilio()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
