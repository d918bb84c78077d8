"""Helpers shared by the `sequent user` and `sequent token` commands."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from sequent.users.models import ROLES, User


def canonical_role(text: str) -> str:
    """The role named by *text*, forgiving case and dashes ("sales-rep" is "Sales Rep").

    An unknown name is returned unchanged so the action refuses it with the list of roles.
    """
    wanted = " ".join(text.replace("-", " ").replace("_", " ").split()).lower()
    return next((role for role in ROLES if role.lower() == wanted), text)


def validation_message(exc: ValidationError) -> str:
    """'field: reason' for each problem, so the message names what to fix."""
    return "; ".join(f"{field}: {' '.join(reasons)}" for field, reasons in exc.message_dict.items())


def find_user(email: str) -> User:
    """The user with *email* (any case), or a CommandError naming the field."""
    try:
        return User.objects.get(email=email.strip().lower())
    except User.DoesNotExist:
        raise CommandError(f"email: no user {email}") from None
