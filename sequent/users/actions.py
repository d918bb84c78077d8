"""State changes for users and API tokens."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from sequent.lib import clock
from sequent.users.models import ROLES, TOKEN_PREFIX_LENGTH, ApiToken, User


def do_create_user(
    email: str,
    role: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
) -> tuple[User, str]:
    """Create a user with *role*; returns the user and the password (generated when none given)."""
    email = email.strip().lower()
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ValidationError({"email": f"{email!r} is not a valid email address"}) from exc
    if role not in ROLES:
        raise ValidationError({"role": f"unknown role {role!r}; choose one of {', '.join(ROLES)}"})
    if User.objects.filter(email=email).exists():
        raise ValidationError({"email": f"a user with email {email} already exists"})
    password = password or secrets.token_urlsafe(12)
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email,
                password,
                first_name=first_name,
                last_name=last_name,
                is_staff=role == "Administrator",
            )
            user.groups.add(Group.objects.get(name=role))
    except IntegrityError as exc:
        # Another request created the same email between the check above and the insert.
        raise ValidationError({"email": f"a user with email {email} already exists"}) from exc
    return user, password


def do_set_role(user: User, role: str) -> None:
    """Replace the user's role."""
    if role not in ROLES:
        raise ValidationError({"role": f"unknown role {role!r}; choose one of {', '.join(ROLES)}"})
    with transaction.atomic():
        user.groups.set([Group.objects.get(name=role)])


def do_set_active(user: User, active: bool) -> None:
    """Let a user in again, or keep them out: an inactive user cannot log in and
    their API tokens stop working, but what they own stays in place."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(is_active=active)
    user.is_active = active


def do_create_token(user: User, name: str = "API token") -> tuple[ApiToken, str]:
    """Create an API token; the plain token is returned once and never stored."""
    plain = ApiToken.generate()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        prefix=plain[3 : 3 + TOKEN_PREFIX_LENGTH],
        token_hash=ApiToken.hash(plain),
    )
    return token, plain


def do_revoke_token(token: ApiToken) -> None:
    """Revoke a token; requests carrying it are refused from now on."""
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=clock.now())


def check_token(plain: str) -> User | None:
    """The active user a bearer token belongs to, or None."""
    if not plain or not plain.startswith("sq_"):
        return None
    token = ApiToken.objects.active().select_related("user").filter(token_hash=ApiToken.hash(plain)).first()
    if token is None:
        return None
    now = clock.now()
    # Touch at most once a minute: a busy client should not write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
