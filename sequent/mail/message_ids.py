"""Message-IDs for outbound email, generated when the outbox row is created."""

from __future__ import annotations

from email.utils import make_msgid
from urllib.parse import urlparse

from django.conf import settings


def message_id_domain() -> str:
    """The domain on the right of our Message-IDs: ``SEQUENT_MESSAGE_ID_DOMAIN``, else the
    host of ``SEQUENT_BASE_URL``. Never the machine's name, which leaks and is slow to look up."""
    configured = getattr(settings, "SEQUENT_MESSAGE_ID_DOMAIN", "")
    if configured:
        return str(configured)
    host = urlparse(getattr(settings, "SEQUENT_BASE_URL", "")).hostname
    return host or "sequent.local"


def new_message_id(domain: str | None = None) -> str:
    """A fresh, globally unique Message-ID such as ``<1719.42.1@example.com>``."""
    return make_msgid(idstring="sq", domain=domain or message_id_domain())
