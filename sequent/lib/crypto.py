"""Encryption of secrets at rest (mailbox passwords, provider credentials).

Fernet tokens (AES-128-CBC + HMAC-SHA256) from `cryptography`. The keys come from
the environment variable ``SEQUENT_FERNET_KEYS`` (comma-separated: the first one
encrypts, every one decrypts, so a key can be rotated in without losing old
secrets) or, when that is unset, from a key generated once under
``VAR_DIR/fernet.key`` (mode 0600).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

from sequent.lib.env import persistent_secret

KEYS_ENV = "SEQUENT_FERNET_KEYS"
KEY_FILE_NAME = "fernet.key"


class CryptoError(Exception):
    """A secret cannot be encrypted or decrypted; the message says why and what to check."""


class SecretText(str):
    """A decrypted secret: a plain ``str`` whose repr never shows the value.

    Debug pages, tracebacks and ``repr(model)`` show ``SecretText('***')``; code that
    needs the value (an SMTP login) uses it like any string.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "SecretText('***')"


def _key_source() -> tuple[str, str]:
    """What the keys are read from: the env value, or the key file path."""
    value = os.environ.get(KEYS_ENV, "").strip()
    if value:
        return ("env", value)
    return ("file", str(Path(settings.VAR_DIR) / KEY_FILE_NAME))


@functools.lru_cache(maxsize=8)
def _fernet_for(kind: str, source: str) -> MultiFernet:
    # Cached per source so a rotated env value (or a test's) takes effect at once.
    if kind == "env":
        raw_keys = [item.strip() for item in source.split(",") if item.strip()]
        where = KEYS_ENV
    else:
        raw_keys = [persistent_secret(Path(source), lambda: Fernet.generate_key().decode())]
        where = source
    fernets = []
    for position, raw in enumerate(raw_keys, start=1):
        try:
            fernets.append(Fernet(raw.encode()))
        except (ValueError, TypeError):
            raise CryptoError(
                f"{where}: key {position} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from None
    return MultiFernet(fernets)


def fernet() -> MultiFernet:
    """The MultiFernet built from the configured keys (first key encrypts)."""
    return _fernet_for(*_key_source())


def generate_key() -> str:
    """A fresh Fernet key, for a user who sets ``SEQUENT_FERNET_KEYS``."""
    return Fernet.generate_key().decode()


def encrypt(text: str) -> str:
    """Encrypt *text* with the first configured key; the token is ASCII."""
    return fernet().encrypt(str(text).encode("utf-8")).decode("ascii")


def decrypt(token: str) -> SecretText:
    """Decrypt a token made by `encrypt` with any configured key.

    Raises `CryptoError` when no configured key opens it (the key was changed or
    removed) or the stored value is not a token at all.
    """
    try:
        plain = fernet().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError):
        raise CryptoError(
            "cannot decrypt a stored secret: no configured key opens it. It was encrypted "
            f"with a key that is not in {KEYS_ENV} (or {KEY_FILE_NAME} under the var directory); "
            "put the old key back after the new one, or enter the secret again"
        ) from None
    return SecretText(plain.decode("utf-8"))


def rotate(token: str) -> str:
    """Re-encrypt *token* with the first (current) key, keeping the secret."""
    try:
        return fernet().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError):
        raise CryptoError(f"cannot rotate a stored secret: no key in {KEYS_ENV} opens it") from None


class EncryptedTextField(models.TextField):
    """A text column that stores a Fernet token and gives back the plain text.

    The Python value is the plain secret (a `SecretText`, whose repr is masked); the
    database only ever holds the token. Encrypted values cannot be searched: lookups
    other than ``isnull`` make no sense on them.
    """

    description = "Text encrypted at rest with Fernet"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> SecretText | None:
        """Decrypt what the database holds."""
        if value is None:
            return None
        return decrypt(value)

    def to_python(self, value: Any) -> SecretText | None:
        """Plain text in, plain text out (forms and deserialisation)."""
        if value is None:
            return None
        return value if isinstance(value, SecretText) else SecretText(value)

    def get_prep_value(self, value: Any) -> str | None:
        """Encrypt the plain value for the database."""
        value = super().get_prep_value(value)
        if value is None:
            return None
        return encrypt(str(value))
