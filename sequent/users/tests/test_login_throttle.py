import datetime as dt

import pytest
from django.contrib.auth import get_user

from sequent.lib import clock

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _fail(client, email="alice@example.com", ip="10.0.0.1"):
    return client.post("/login/", {"username": email, "password": "wrong"}, REMOTE_ADDR=ip)


def _login(client, email="alice@example.com", password="pw-alice-123", ip="10.0.0.1"):
    return client.post("/login/", {"username": email, "password": password}, REMOTE_ADDR=ip)


@pytest.fixture
def frozen():
    clock.set_now(START)
    return START


def test_it_refuses_even_the_right_password_after_five_failures(client, rep, frozen):
    for _ in range(5):
        assert _fail(client).status_code == 200
    response = _login(client)
    assert response.status_code == 429
    assert b"Too many failed log-in attempts. Try again in 15 minutes." in response.content
    assert not get_user(client).is_authenticated


def test_it_lets_the_account_in_again_once_the_window_has_passed(client, rep, frozen):
    for _ in range(5):
        _fail(client)
    clock.set_now(START + dt.timedelta(minutes=14))
    assert _login(client).status_code == 429
    clock.set_now(START + dt.timedelta(minutes=15, seconds=1))
    assert _login(client).status_code == 302
    assert get_user(client) == rep


def test_it_counts_failures_per_account_whatever_the_address(client, rep, frozen):
    for n in range(5):
        _fail(client, ip=f"10.0.0.{n}")
    assert _login(client, ip="10.9.9.9").status_code == 429


def test_it_counts_the_typed_email_in_any_case(client, rep, frozen):
    for _ in range(5):
        _fail(client, email=" ALICE@example.com")
    assert _login(client).status_code == 429


def test_it_refuses_an_address_that_guesses_across_many_accounts(client, rep, frozen, settings):
    settings.SEQUENT_LOGIN_MAX_FAILURES_PER_IP = 8
    for n in range(8):
        _fail(client, email=f"nobody{n}@example.com")
    assert _login(client).status_code == 429
    # Another address is not affected.
    assert _login(client, ip="10.0.0.2").status_code == 302


def test_it_keeps_the_address_counter_of_other_accounts_after_a_success(client, rep, other_rep, frozen, settings):
    settings.SEQUENT_LOGIN_MAX_FAILURES_PER_IP = 6
    for _ in range(4):
        _fail(client, email="bob@example.com")
    _fail(client)  # one failure for alice
    assert _login(client).status_code == 302  # alice gets in: her own failure is forgotten
    client.logout()
    _fail(client, email="carol@example.com")
    _fail(client, email="carol@example.com")  # 4 bob + 2 carol = 6 from this address
    assert _login(client).status_code == 429


def test_it_forgets_an_accounts_failures_after_it_logs_in(client, rep, frozen):
    for _ in range(4):
        _fail(client)
    assert _login(client).status_code == 302
    client.logout()
    for _ in range(4):
        _fail(client)
    assert _login(client).status_code == 302


def test_it_does_not_count_a_form_left_empty(client, rep, frozen):
    for _ in range(6):
        client.post("/login/", {"username": "alice@example.com", "password": ""}, REMOTE_ADDR="10.0.0.1")
    assert _login(client).status_code == 302
