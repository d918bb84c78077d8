"""Liquid payloads fail safely: a clear reason, no 5xx, nothing of the server leaks, in the
template preview (page and API) and at send time. Everything else that reaches a Django
template is escaped: an XSS payload in names, subjects and saved views appears escaped on
every list and detail page."""

from __future__ import annotations

import pytest
from django.test import Client

from sequent.crm.models import Contact
from sequent.crm.saved_views import do_create_view
from sequent.mail.delivery import deliver_due
from sequent.mail.models import MessageStatus
from sequent.security.tests.world import build_world
from sequent.sequences.models import Step

PAYLOADS = {
    "deep nesting": "{% if true %}" * 60 + "x" + "{% endif %}" * 60,
    "huge loop": "{% for i in (1..100000000) %}x{% endfor %}",
    "nested loops": "{% for a in (1..5000) %}{% for b in (1..5000) %}x{% endfor %}{% endfor %}",
    "output bomb": "{% for i in (1..9000) %}" + "x" * 500 + "{% endfor %}",
    "assign bomb": "{% assign s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}"
    + "{% for i in (1..9000) %}{% assign s = s | append: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}{% endfor %}{{ s }}",
    "include": "{% include '/etc/passwd' %}",
    "render": "{% render '../../settings.py' %}",
    "dunder class": "{{ contact.__class__ }}{{ contact.__class__.__mro__ }}",
    "dunder dict": "{{ contact.__dict__ }}{{ contact['__init__'] }}",
    "private": "{{ contact._meta }}{{ contact._state.db }}",
    "method": "{{ contact.items }}{{ contact.keys }}{{ contact.save }}",
    "huge number": "{{ 9999999999999999999999 | times: 99999999999999999999999 | times: 99999999999 }}",
    "bad syntax": "{% for %}{{ {{ }}",
    "unknown global": "{{ settings.SECRET_KEY }}{{ request.user }}",
}
# What must never be in an answer: server files, Python internals, settings.
LEAKS = ("root:x:", "SECRET_KEY =", "<class ", "Traceback", "mappingproxy", "bound method", "DATABASES")


@pytest.fixture
def world(rep, admin_user):
    return build_world(rep, admin_user)


@pytest.fixture
def signed_in(rep) -> Client:
    client = Client()
    client.force_login(rep)
    return client


def _assert_safe(body: str, name: str) -> None:
    for leak in LEAKS:
        assert leak not in body, f"{name}: {leak!r} in the answer"


@pytest.mark.parametrize("name", PAYLOADS)
def test_it_previews_a_hostile_template_with_a_clear_error_through_the_api(name, world, api):
    payload = PAYLOADS[name]
    response = api.post(
        "templates/preview", {"contact_id": world.ids["contact_id"], "subject": "Hi", "body": payload}
    )
    assert response.status_code in (200, 422), response.status_code
    data = response.json()
    _assert_safe(response.content.decode(), name)
    if response.status_code == 422:
        assert data["errors"][0]["reason"]
    elif data["error"] is not None:
        assert data["error"].startswith(("body", "template")) and len(data["error"]) < 500
    else:  # rendered: then only harmless text came out (unknown attributes are empty)
        assert len(data["html"]) <= 1_000_000


@pytest.mark.parametrize("name", PAYLOADS)
def test_it_previews_a_hostile_template_with_a_clear_error_on_the_page(name, world, signed_in):
    response = signed_in.post(
        "/templates/preview/",
        {"subject": PAYLOADS[name], "body": PAYLOADS[name], "contact": world.ids["contact_id"]},
    )
    assert response.status_code < 500
    _assert_safe(response.content.decode(), name)


def test_it_refuses_to_save_a_template_that_loads_files_or_reads_internals(world, api):
    for name in ("include", "render", "unknown global", "bad syntax"):
        response = api.post("templates", {"name": name, "subject": "Hi", "body": PAYLOADS[name]})
        assert response.status_code == 422, name
        assert response.json()["errors"][0]["reason"]


@pytest.mark.usefixtures("delivery_env")
@pytest.mark.parametrize("name", PAYLOADS)
def test_it_fails_the_send_with_the_reason_and_sends_nothing(
    name, recorder, make_mailbox, make_sequence, make_contact, queue
):
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{"body": "<p>Hi</p>"}], mailbox=make_mailbox(host, port))
    # Stored as-is, as if written before any check existed.
    Step.objects.filter(pk=step.pk).update(body=PAYLOADS[name])
    step.refresh_from_db()
    row = queue(sequence, step, make_contact())

    deliver_due("w1")

    row.refresh_from_db()
    if row.status == MessageStatus.SENT:
        # Rendered harmlessly: nothing of Python's leaked into the email.
        _assert_safe(handler.received[0].data.decode(errors="replace"), name)
        return
    assert row.status == MessageStatus.FAILED, row.status
    assert row.last_error.startswith("template: "), row.last_error
    _assert_safe(row.last_error, name)
    assert handler.received == []


XSS = '<script>alert("zq")</script><img src=x onerror=alert(1)>'


def test_it_escapes_html_payloads_on_every_list_and_detail_page(rep, admin_user, signed_in):
    world = build_world(rep, admin_user)
    contact = Contact.objects.get(pk=world.ids["contact_id"])
    contact.first_name = XSS
    contact.job_title = XSS
    contact.save()
    contact.account.name = XSS
    contact.account.save()
    from sequent.mail.models import EmailTemplate, Mailbox
    from sequent.sequences.models import Sequence
    from sequent.tasks.models import Task

    EmailTemplate.objects.filter(pk=world.ids["template_id"]).update(name=XSS, subject=XSS)
    Sequence.objects.filter(pk=world.ids["sequence_id"]).update(name=XSS)
    Step.objects.filter(pk=world.ids["step_id"]).update(subject=XSS)
    Task.objects.filter(pk=world.ids["task_id"]).update(title=XSS, notes=XSS)
    Mailbox.objects.filter(pk=world.ids["mailbox_id"]).update(display_name=XSS, email_address=XSS[:60])
    do_create_view(rep, XSS[:100], "contact", [])
    ids = world.ids
    pages = [
        "/contacts/",
        f"/contacts/{ids['contact_id']}/",
        f"/contacts/{ids['contact_id']}/edit/",
        "/accounts/",
        f"/accounts/{ids['account_id']}/",
        "/templates/",
        f"/templates/{ids['template_id']}/",
        "/sequences/",
        f"/sequences/{ids['sequence_id']}/",
        f"/sequences/{ids['sequence_id']}/edit/",
        f"/sequences/{ids['sequence_id']}/steps/{ids['step_id']}/",
        f"/sequences/{ids['sequence_id']}/enrollments/",
        f"/sequences/{ids['sequence_id']}/enrollments/{ids['enrollment_id']}/",
        "/tasks/",
        f"/tasks/{ids['task_id']}/",
        "/mailboxes/",
        "/sms/templates/",
    ]
    for url in pages:
        response = signed_in.get(url)
        assert response.status_code == 200, (url, response.status_code)
        body = response.content.decode()
        # Escaped, the payload is text: no tag of it survives.
        assert "<script>alert" not in body and "<img src=x" not in body, url
        assert "&lt;script&gt;alert" in body or "&lt;img src=x" in body, f"{url}: the payload is not shown"
