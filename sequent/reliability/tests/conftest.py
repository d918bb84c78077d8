"""The mail tests' fixtures (real SMTP servers, mailboxes, queued outbox rows), shared here."""

from sequent.mail.tests.conftest import (  # noqa: F401
    delivery_env,
    fault_server,
    make_contact,
    make_mailbox,
    make_sequence,
    queue,
    recorder,
)
