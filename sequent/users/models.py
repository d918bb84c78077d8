"""Users, the permissions that roles grant, and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models

from sequent.lib import clock

ROLE_ADMINISTRATOR = "Administrator"
ROLE_SALES_MANAGER = "Sales Manager"
ROLE_SALES_REP = "Sales Rep"
ROLES = (ROLE_ADMINISTRATOR, ROLE_SALES_MANAGER, ROLE_SALES_REP)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        if not email:
            raise ValueError("email: a user needs an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    """A person who logs in: a rep, a manager or an administrator."""

    username = None  # type: ignore[assignment,misc]
    email = models.EmailField("email address", unique=True)
    daily_email_limit = models.PositiveIntegerField(
        default=500, help_text="Sequence emails this user may send per day."
    )
    time_zone = models.CharField(max_length=64, default="UTC")

    USERNAME_FIELD = "email"  # type: ignore[misc]
    REQUIRED_FIELDS: list[str] = []  # type: ignore[misc]

    objects = UserManager()  # type: ignore[misc,assignment]

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.get_full_name() or self.email


class Workspace(models.Model):
    """Holder of the workspace-wide permissions that roles grant.

    It has no rows; it exists so the permissions have a content type of their own.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_sales_sequences", "View Sales Sequences"),
            ("create_sales_sequences", "Create Sales Sequences"),
            ("edit_sales_sequences", "Edit Sales Sequences"),
            ("delete_sales_sequences", "Delete Sales Sequences"),
            ("import_records", "Import contacts and accounts"),
            ("export_records", "Export contacts and accounts"),
            ("manage_users", "Manage users and roles"),
            ("manage_workspace", "Manage workspace settings"),
        ]

    def __str__(self) -> str:
        return "workspace"


TOKEN_PREFIX_LENGTH = 8


def _hash_token(token: str) -> str:
    # Tokens are 256 bits of randomness: a fast hash is enough, no salt needed.
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet["ApiToken"]):
    def active(self) -> ApiTokenQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)


class ApiToken(models.Model):
    """A bearer token for the API. Only its hash is kept; the token is shown once."""

    owner_lookup = "user"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="API token")
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def generate() -> str:
        return "sq_" + secrets.token_urlsafe(32)

    @staticmethod
    def hash(token: str) -> str:
        return _hash_token(token)


class LoginFailure(models.Model):
    """One failed log-in, kept for the throttling window (see ``users.throttle``).

    A table rather than a per-process cache, so every web process on every machine
    counts the same failures.
    """

    email = models.CharField(max_length=254)
    ip = models.CharField(max_length=45)
    at = models.DateTimeField(default=clock.now)

    class Meta:
        indexes = [
            models.Index(fields=["email", "at"], name="login_failure_email_at"),
            models.Index(fields=["ip", "at"], name="login_failure_ip_at"),
            models.Index(fields=["at"], name="login_failure_at"),
        ]

    def __str__(self) -> str:
        return f"failed log-in for {self.email} from {self.ip}"
