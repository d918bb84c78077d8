"""Task fixtures: the engine's contact and sequence helpers, and a real SMTP server."""

from __future__ import annotations

import pytest

from sequent.mail.tests.servers import RecordingHandler, smtp_server
from sequent.sequences.tests.conftest import make_contact, make_sequence  # noqa: F401


@pytest.fixture
def recorder():
    """A recording SMTP server: (handler, host, port)."""
    handler = RecordingHandler()
    with smtp_server(handler) as (host, port):
        yield handler, host, port
