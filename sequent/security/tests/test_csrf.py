"""CSRF on every cookie-authenticated state change, generated from the resolver and the
OpenAPI schema: a signed-in browser session posting without the token gets 403 and
changes nothing. The exceptions are listed with their reason."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from sequent.security.routes import UNSAFE_METHODS, api_routes, page_routes
from sequent.security.tests.world import build_world, snapshot, values_for

# Routes that take a POST without the CSRF token, on purpose. None of them acts on a
# browser session: each checks its own key.
CSRF_EXEMPT = {
    "mail:unsubscribe": "RFC 8058 one-click POST from a mail provider; the signed token is the key",
    "sms:sms-twilio-status": "Twilio calls it; the request signature is the key",
    "sms:sms-twilio-inbound": "Twilio calls it; the request signature is the key",
}
PAGES = [route for route in page_routes() if route.name not in CSRF_EXEMPT]
API_WRITES = [route for route in api_routes() if route.method in UNSAFE_METHODS]


@pytest.fixture
def browser(admin_user) -> Client:
    # An administrator: every page and endpoint is open to them, so a refusal can only be CSRF.
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    return client


@pytest.fixture
def admin_world(admin_user):
    return build_world(admin_user, admin_user)


def test_it_exempts_only_routes_that_exist():
    assert set(CSRF_EXEMPT) <= {route.name for route in page_routes()}


@pytest.mark.parametrize("route", PAGES, ids=lambda r: r.name)
def test_it_refuses_every_page_post_without_the_csrf_token(route, admin_world, browser):
    url = route.url(values_for(route.name, route.params, admin_world)[0])
    before = snapshot()
    response = browser.post(url, {"name": "x", "body": "x", "subject": "x"})
    assert response.status_code == 403, (url, response.status_code)
    assert snapshot() == before


@pytest.mark.parametrize("route", API_WRITES, ids=lambda r: r.name)
def test_it_refuses_every_api_write_by_session_without_the_csrf_token(route, admin_world, browser):
    url = route.url(values_for(route.name, route.params, admin_world)[0])
    before = snapshot()
    response = browser.generic(route.method, url, json.dumps({}), content_type="application/json")
    assert response.status_code == 403, (route.name, response.status_code, response.content[:200])
    assert "CSRF" in response.json()["detail"]
    assert snapshot() == before


def test_it_accepts_a_session_write_with_the_csrf_token(admin_world, browser):
    browser.get("/contacts/")  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    response = browser.post(
        "/api/v1/contacts",
        json.dumps({"email": "new@example.com", "first_name": "New"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code == 201, response.content
