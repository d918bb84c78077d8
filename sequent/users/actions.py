"""State changes for users and API tokens."""

from __future__ import annotations

import secrets
import zoneinfo
from collections.abc import Iterable, Mapping

from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q

from sequent.lib import clock
from sequent.users.models import ROLES, TOKEN_PREFIX_LENGTH, ApiToken, User

# A per-user ceiling far above any mailbox provider's own daily cap: a typo, not a plan.
MAX_DAILY_EMAIL_LIMIT = 100_000


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


def _ensure_someone_manages_users() -> None:
    # Run inside the transaction that made the change, so a refused change rolls back.
    managers = User.objects.filter(Q(groups__permissions__codename="manage_users") | Q(is_superuser=True))
    if not managers.filter(is_active=True).exists():
        raise ValidationError(
            {"manage_users": "at least one active user must keep the Manage users and roles permission"}
        )


def do_update_user(
    user: User,
    *,
    role: str | None = None,
    is_active: bool | None = None,
    daily_email_limit: int | None = None,
    time_zone: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> User:
    """Change what an administrator manages about a user; fields left as None stay.

    Refused when it would leave no active user able to manage users, so an
    administrator cannot lock the whole workspace out of this screen.
    """
    errors: dict[str, str] = {}
    if role is not None and role not in ROLES:
        errors["role"] = f"unknown role {role!r}; choose one of {', '.join(ROLES)}"
    if daily_email_limit is not None and not 0 <= daily_email_limit <= MAX_DAILY_EMAIL_LIMIT:
        errors["daily_email_limit"] = f"between 0 and {MAX_DAILY_EMAIL_LIMIT}"
    if time_zone is not None:
        time_zone = time_zone.strip()
        if time_zone not in zoneinfo.available_timezones():
            errors["time_zone"] = f"{time_zone!r} is not an IANA time zone such as Europe/London"
    for name, value in (("first_name", first_name), ("last_name", last_name)):
        if value is not None and len(value.strip()) > 150:
            errors[name] = "at most 150 characters"
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if role is not None:
            user.groups.set([Group.objects.get(name=role)])
            user.is_staff = role == "Administrator"
        if is_active is not None:
            user.is_active = is_active
        if daily_email_limit is not None:
            user.daily_email_limit = daily_email_limit
        if time_zone is not None:
            user.time_zone = time_zone
        if first_name is not None:
            user.first_name = first_name.strip()
        if last_name is not None:
            user.last_name = last_name.strip()
        user.save()
        _ensure_someone_manages_users()
    return user


def do_set_role_permissions(grants: Mapping[str, Iterable[str]]) -> None:
    """Replace what each named role grants with the workspace permissions listed for it.

    *grants* maps a role name to permission codenames; roles not named stay as they
    are. Unknown roles or codenames are refused, and so is a change that would leave
    no active user able to manage users.
    """
    permissions = {p.codename: p for p in Permission.objects.filter(content_type__app_label="users",
                                                                   content_type__model="workspace")}
    groups = {g.name: g for g in Group.objects.filter(name__in=list(grants))}
    errors: dict[str, str] = {}
    for role, codenames in grants.items():
        if role not in groups:
            errors[role] = f"unknown role {role!r}"
            continue
        unknown = sorted(set(codenames) - set(permissions))
        if unknown:
            errors[role] = f"unknown permission {', '.join(unknown)}"
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        for role, codenames in grants.items():
            groups[role].permissions.set([permissions[c] for c in set(codenames)])
        _ensure_someone_manages_users()
