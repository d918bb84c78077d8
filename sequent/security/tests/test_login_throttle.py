"""Password guessing: refused after the limit per account and per IP, with a clear
message; during the lockout even the right password is refused; spelling the email
differently or claiming another address in a header does not reset the count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from sequent.lib import clock

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.SEQUENT_LOGIN_MAX_FAILURES = 5
    settings.SEQUENT_LOGIN_MAX_FAILURES_PER_IP = 20
    settings.SEQUENT_LOGIN_WINDOW_SECONDS = 15 * 60
    clock.set_now(NOW)


def _login(email: str, password: str, ip: str = "203.0.113.7", **headers):
    return Client().post("/login/", {"username": email, "password": password}, REMOTE_ADDR=ip, **headers)


def _signed_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def test_it_locks_an_account_after_five_guesses_even_from_many_addresses(rep, other_rep):
    spellings = [
        "alice@example.com",
        "ALICE@example.com",
        " Alice@Example.com ",
        "alice@EXAMPLE.COM",
        "alice@example.com",
    ]
    for n, email in enumerate(spellings):
        response = _login(email, f"guess-{n}", ip=f"198.51.100.{n}")
        assert response.status_code == 200  # the form again, with "wrong email or password"

    refused = _login("alice@example.com", "pw-alice-123", ip="198.51.100.99")

    assert refused.status_code == 429
    assert "Too many failed log-in attempts. Try again in 15 minutes." in refused.content.decode()
    assert int(refused["Retry-After"]) > 0
    assert not _signed_in(refused)
    # Another account from the same addresses is not affected.
    assert _signed_in(_login("bob@example.com", "pw-bob-123", ip="198.51.100.1"))
    # After the window the right password works again.
    clock.set_now(NOW + dt.timedelta(minutes=16))
    assert _signed_in(_login("alice@example.com", "pw-alice-123", ip="198.51.100.99"))


def test_it_locks_an_address_that_guesses_across_many_accounts(rep, other_rep):
    for n in range(20):
        _login(f"nobody{n}@example.com", "guess", ip="203.0.113.7", HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")

    refused = _login("alice@example.com", "pw-alice-123", ip="203.0.113.7", HTTP_X_FORWARDED_FOR="10.9.9.9")

    assert refused.status_code == 429
    assert "Too many failed log-in attempts" in refused.content.decode()
    assert not _signed_in(refused)
    # The same account from another address still logs in.
    assert _signed_in(_login("alice@example.com", "pw-alice-123", ip="203.0.113.8"))
