"""Signed tokens for the open pixel, click redirects and unsubscribe links.

Django's `signing` (HMAC-SHA256 keyed by SECRET_KEY, with SECRET_KEY_FALLBACKS
accepted, signatures compared in constant time). Each purpose has its own salt,
so a token made for one purpose is refused as another. Tokens do not expire:
a link in an email must keep working for as long as the email is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.core import signing

_OPEN_SALT = "sequent.mail.open"
_CLICK_SALT = "sequent.mail.click"
_UNSUBSCRIBE_SALT = "sequent.mail.unsubscribe"


class BadToken(Exception):
    """The token was not made here for this purpose (tampered, truncated or forged)."""


@dataclass(frozen=True)
class UnsubscribeTarget:
    """Whom an unsubscribe token is for: the contact of a message, or a contact."""

    kind: Literal["message", "contact"]
    pk: int


def _load(token: str, salt: str) -> Any:
    try:
        return signing.loads(token, salt=salt)
    except (signing.BadSignature, ValueError, TypeError, UnicodeError):
        raise BadToken("the link is not valid") from None


def _pk(value: Any) -> int:
    # bool is an int subclass: a forged True must not pass as pk 1.
    if type(value) is not int or value < 1:
        raise BadToken("the link is not valid")
    return value


def _arg_pk(name: str, value: Any) -> int:
    if type(value) is not int or value < 1:
        raise ValueError(f"{name}: must be a positive integer")
    return value


def make_open_token(message_id: int) -> str:
    """Token for the open pixel of outbound message *message_id*."""
    return signing.dumps(_arg_pk("message_id", message_id), salt=_OPEN_SALT)


def read_open_token(token: str) -> int:
    """The outbound message pk of an open token; `BadToken` otherwise."""
    return _pk(_load(token, _OPEN_SALT))


def make_click_token(message_id: int, link_index: int) -> str:
    """Token for the click redirect of link *link_index* (0-based) of a message."""
    if type(link_index) is not int or link_index < 0:
        raise ValueError("link_index: must be a non-negative integer")
    return signing.dumps([_arg_pk("message_id", message_id), link_index], salt=_CLICK_SALT)


def read_click_token(token: str) -> tuple[int, int]:
    """(message pk, link index) of a click token; `BadToken` otherwise."""
    value = _load(token, _CLICK_SALT)
    if not isinstance(value, list) or len(value) != 2:
        raise BadToken("the link is not valid")
    index = value[1]
    if type(index) is not int or index < 0:
        raise BadToken("the link is not valid")
    return _pk(value[0]), index


def make_unsubscribe_token(*, message_id: int | None = None, contact_id: int | None = None) -> str:
    """Token for an unsubscribe link: for a message (its contact) or a contact; give one."""
    if (message_id is None) == (contact_id is None):
        raise ValueError("give exactly one of message_id and contact_id")
    if message_id is not None:
        payload = {"m": _arg_pk("message_id", message_id)}
    else:
        payload = {"c": _arg_pk("contact_id", contact_id)}
    return signing.dumps(payload, salt=_UNSUBSCRIBE_SALT)


def read_unsubscribe_token(token: str) -> UnsubscribeTarget:
    """Whom an unsubscribe token is for; `BadToken` otherwise."""
    value = _load(token, _UNSUBSCRIBE_SALT)
    if not isinstance(value, dict) or len(value) != 1:
        raise BadToken("the link is not valid")
    ((key, pk),) = value.items()
    if key == "m":
        return UnsubscribeTarget("message", _pk(pk))
    if key == "c":
        return UnsubscribeTarget("contact", _pk(pk))
    raise BadToken("the link is not valid")
