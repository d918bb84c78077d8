import pytest
from django.contrib.auth import get_user


@pytest.fixture
def contact_of(rep):
    from sequent.crm.models import Account, Contact

    account = Account.objects.create(name="Acme", domain="acme.example")
    return Contact.objects.create(
        owner=rep, first_name="Zoe", last_name="Quill", email="zoe@acme.example", account=account
    )


def test_it_shows_the_login_form(client, db):
    response = client.get("/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content
    assert b'name="password"' in response.content
    assert b"csrfmiddlewaretoken" in response.content


def test_it_logs_in_with_the_right_password_and_lands_home(client, rep):
    response = client.post("/login/", {"username": "alice@example.com", "password": "pw-alice-123"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert get_user(client) == rep
    assert b"Welcome, Alice Rep" in client.get("/").content


def test_it_accepts_the_email_in_any_case(client, rep):
    response = client.post("/login/", {"username": " Alice@Example.COM ", "password": "pw-alice-123"})
    assert response.status_code == 302
    assert get_user(client) == rep


def test_it_refuses_a_wrong_password(client, rep):
    response = client.post("/login/", {"username": "alice@example.com", "password": "wrong"})
    assert response.status_code == 200
    assert b'role="alert"' in response.content
    assert b"Wrong email or password." in response.content
    assert not get_user(client).is_authenticated


def test_it_follows_next_after_login(client, rep):
    response = client.post(
        "/login/?next=/api/v1/docs",
        {"username": "alice@example.com", "password": "pw-alice-123", "next": "/api/v1/docs"},
    )
    assert response["Location"] == "/api/v1/docs"


def test_it_logs_out_by_post_only(client, rep):
    client.force_login(rep)
    assert client.get("/logout/").status_code == 405
    assert get_user(client).is_authenticated
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert not get_user(client).is_authenticated


def test_it_sends_an_anonymous_visitor_of_home_to_login(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"


def test_it_lists_the_users_own_contacts_at_home(client, rep, other_rep, contact_of):
    client.force_login(rep)
    page = client.get("/").content.decode()
    assert "Zoe Quill" in page
    assert "Acme" in page
    assert "Not yet contacted" in page
    client.force_login(other_rep)
    page = client.get("/").content.decode()
    assert "Zoe Quill" not in page
    assert "You own no contacts yet." in page
