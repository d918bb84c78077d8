"""Shared fixtures: two users of each kind, an API client with a token, the clock."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequent.settings")


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Every user fixture hashes a password; the default hasher costs ~0.3 s each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _reset_clock():
    from sequent.lib import clock

    clock.set_now(None)
    yield
    clock.set_now(None)


@pytest.fixture
def rep(db):
    from sequent.users.actions import do_create_user

    user, _ = do_create_user("alice@example.com", "Sales Rep", "pw-alice-123", "Alice", "Rep")
    return user


@pytest.fixture
def other_rep(db):
    from sequent.users.actions import do_create_user

    user, _ = do_create_user("bob@example.com", "Sales Rep", "pw-bob-123", "Bob", "Rep")
    return user


@pytest.fixture
def admin_user(db):
    from sequent.users.actions import do_create_user

    user, _ = do_create_user("admin@example.com", "Administrator", "pw-admin-123", "Ada", "Admin")
    return user


class ApiClient:
    """A Django test client that sends a bearer token and JSON."""

    def __init__(self, user):
        from django.test import Client

        from sequent.users.actions import do_create_token

        self.user = user
        _, self.token = do_create_token(user)
        self.client = Client()

    def _call(self, method, path, data=None, **extra):
        import json

        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.token}", **extra}
        url = path if path.startswith("/") else f"/api/v1/{path}"
        if method in ("get", "delete") and data is None:
            return getattr(self.client, method)(url, **headers)
        if method == "get":
            return self.client.get(url, data, **headers)
        return getattr(self.client, method)(
            url, json.dumps(data) if data is not None else "", content_type="application/json", **headers
        )

    def get(self, path, data=None, **extra):
        return self._call("get", path, data, **extra)

    def post(self, path, data=None, **extra):
        return self._call("post", path, data, **extra)

    def put(self, path, data=None, **extra):
        return self._call("put", path, data, **extra)

    def patch(self, path, data=None, **extra):
        return self._call("patch", path, data, **extra)

    def delete(self, path, **extra):
        return self._call("delete", path, None, **extra)


@pytest.fixture
def api(rep):
    return ApiClient(rep)


@pytest.fixture
def other_api(other_rep):
    return ApiClient(other_rep)


@pytest.fixture
def api_for():
    return ApiClient


def pytest_collection_modifyitems(config, items):
    """Skip tests marked postgres_only when the suite runs on SQLite."""
    from django.conf import settings

    if "postgresql" in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL pass of make test)")
    for item in items:
        if item.get_closest_marker("postgres_only"):
            item.add_marker(skip)
