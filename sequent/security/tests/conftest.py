"""The mail tests' fixtures (a real SMTP server, mailboxes, sequences, queued outbox
rows), reused for send-time checks."""

from sequent.mail.tests.conftest import (  # noqa: F401
    delivery_env,
    make_contact,
    make_mailbox,
    make_sequence,
    queue,
    recorder,
)
