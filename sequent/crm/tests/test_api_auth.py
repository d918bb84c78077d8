"""Who may call the CRM API: bearer tokens, sessions with CSRF, and the OpenAPI document."""

import json

import pytest
from django.test import Client

from sequent.users.actions import do_create_token, do_revoke_token

CSRF = "k" * 32  # a CSRF secret as the browser would hold it in the csrftoken cookie


@pytest.fixture
def session(rep):
    client = Client(enforce_csrf_checks=True)
    client.force_login(rep)
    client.cookies["csrftoken"] = CSRF
    return client


def post_json(client, path, data, **headers):
    return client.post(path, json.dumps(data), content_type="application/json", **headers)


def test_it_refuses_a_session_post_without_the_csrf_token(session):
    response = post_json(session, "/api/v1/contacts", {"first_name": "Dana"})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_it_accepts_a_session_post_with_the_csrf_token(session):
    response = post_json(session, "/api/v1/contacts", {"first_name": "Dana"}, HTTP_X_CSRFTOKEN=CSRF)
    assert response.status_code == 201
    assert response.json()["owner"] == "alice@example.com"


def test_it_lets_a_session_read_without_the_csrf_token(session):
    assert session.get("/api/v1/contacts").status_code == 200


def test_it_answers_401_to_an_inactive_user_by_token_and_by_session(api, session, rep):
    rep.is_active = False
    rep.save()
    assert api.get("contacts").status_code == 401
    assert session.get("/api/v1/contacts").status_code == 401


def test_it_answers_401_to_a_revoked_token_even_on_a_post(rep):
    token, plain = do_create_token(rep)
    do_revoke_token(token)
    client = Client(enforce_csrf_checks=True)
    assert client.get("/api/v1/contacts", HTTP_AUTHORIZATION=f"Bearer {plain}").status_code == 401
    response = post_json(
        client, "/api/v1/contacts", {"first_name": "Dana"}, HTTP_AUTHORIZATION=f"Bearer {plain}"
    )
    assert response.status_code == 401


def test_it_needs_no_csrf_token_with_a_bearer_token(rep):
    _, plain = do_create_token(rep)
    client = Client(enforce_csrf_checks=True)
    response = post_json(
        client, "/api/v1/contacts", {"first_name": "Dana"}, HTTP_AUTHORIZATION=f"Bearer {plain}"
    )
    assert response.status_code == 201


def test_it_serves_an_openapi_document_listing_the_crm_paths(db):
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/contacts",
        "/api/v1/contacts/search",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/contacts/{contact_id}/activities",
        "/api/v1/accounts",
        "/api/v1/accounts/{account_id}",
        "/api/v1/custom-fields",
        "/api/v1/activity-types",
        "/api/v1/views",
        "/api/v1/views/preview",
        "/api/v1/views/{view_id}/preview",
        "/api/v1/fields/{record_type}",
    ):
        assert path in paths
    assert "page_size" in {p["name"] for p in paths["/api/v1/contacts"]["get"]["parameters"]}


def test_it_serves_the_docs_page(db):
    response = Client().get("/api/v1/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.content
