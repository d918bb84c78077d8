"""Hits stored together (group commit): each request still gets its own answer, and what
is stored is what the same hits one by one would store."""

from __future__ import annotations

import datetime as dt
import io
import re
import threading

import pytest
from django.db import DataError, connection
from psycopg.pq import TransactionStatus

from sequent.crm.models import Activity, ActivityKind, LastContactedMode
from sequent.lib import clock
from sequent.mail import tokens, tracking
from sequent.mail.delivery import deliver_due
from sequent.mail.models import EmailEvent, EmailEventKind
from sequent.mail.tests.conftest import NOW, parse
from sequent.mail.tracking import PIXEL_GIF
from sequent.mail.tracking_wsgi import with_tracking

pytestmark = pytest.mark.usefixtures("delivery_env")

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
BODY = '<p><a href="https://www.example.com/one">one</a> <a href="https://www.example.com/two">two</a></p>'
BASE = "https://sequent.example.com"


@pytest.fixture
def sent_many(recorder, make_mailbox, make_sequence, make_contact, queue):
    """Four emails sent with tracking, each to its own contact: [(row, pixel, [clicks])]."""
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{"body": BODY}], mailbox=make_mailbox(host, port))
    rows = [queue(sequence, step, make_contact()) for _ in range(4)]
    while deliver_due("w1"):
        pass
    sent = []
    for row in rows:
        row.refresh_from_db()
        received = next(r for r in handler.received if row.message_id.strip("<>") in r.data.decode())
        html = parse(received.data).get_body(("html",)).get_content()
        pixel = re.search(rf'src="{BASE}(/t/o/[^"]+)"', html).group(1)
        sent.append((row, pixel, re.findall(rf'href="{BASE}(/t/c/[^"]+)"', html)))
    return sent


def _kinds(row):
    return list(
        EmailEvent.objects.filter(message=row, kind__in=[EmailEventKind.OPENED, EmailEventKind.CLICKED])
        .order_by("pk")
        .values_list("kind", "is_automated")
    )


def test_it_answers_each_hit_of_a_group_for_its_own_message_and_link(sent_many):
    _check_a_mixed_group(sent_many)


# Outside a transaction PostgreSQL takes the two-round-trip path (BEGIN with the read,
# COMMIT with the write); inside one (the test's), the atomic block.
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_answers_each_hit_of_a_group_outside_a_transaction(sent_many):
    _check_a_mixed_group(sent_many)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_rolls_back_a_group_that_fails_and_stores_the_next(sent_many):
    (row, _, _), *_ = sent_many
    now = NOW + dt.timedelta(hours=1)
    broken = tracking._Hit(row.pk, "opened" * 10, None, "GET", BROWSER, now)  # too long a kind
    with pytest.raises(DataError):
        tracking._write([broken])
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert _kinds(row) == []
    tracking._write([tracking._Hit(row.pk, EmailEventKind.OPENED, None, "GET", BROWSER, now)])
    assert _kinds(row) == [(EmailEventKind.OPENED, False)]


def _check_a_mixed_group(sent_many):
    (first, _, _), (second, _, _), (third, _, _), (fourth, _, _) = sent_many
    now = NOW + dt.timedelta(hours=1)

    def hit(message_id, kind, index=None, agent=BROWSER):
        return tracking._Hit(message_id, kind, index, "GET", agent, now)

    hits = [
        hit(first.pk, EmailEventKind.OPENED),
        hit(fourth.pk + 1000, EmailEventKind.OPENED),  # a well-signed token for no message
        hit(second.pk, EmailEventKind.CLICKED, 1),
        hit(second.pk, EmailEventKind.CLICKED, 7),  # no link 7 in that email
        hit(third.pk, EmailEventKind.CLICKED, 0, agent="curl/8.5.0"),
        hit(fourth.pk + 1000, EmailEventKind.CLICKED, 0),
    ]
    tracking._write(hits)

    assert [(h.found, h.url) for h in hits] == [
        (True, ""),
        (False, ""),
        (True, "https://www.example.com/two"),
        (False, ""),
        (True, "https://www.example.com/one"),
        (False, ""),
    ]
    opened, clicked = EmailEventKind.OPENED, EmailEventKind.CLICKED
    assert _kinds(first) == [(opened, False)]
    # A person's click implies the open; a scanner's implies nothing.
    assert _kinds(second) == [(clicked, False), (opened, False)]
    assert _kinds(third) == [(clicked, True)]
    assert _kinds(fourth) == []
    activities = Activity.objects.filter(kind__in=[ActivityKind.EMAIL_OPENED, ActivityKind.EMAIL_CLICKED])
    assert sorted(activities.values_list("contact_id", "kind")) == sorted(
        [
            (first.contact_id, ActivityKind.EMAIL_OPENED),
            (second.contact_id, ActivityKind.EMAIL_OPENED),
            (second.contact_id, ActivityKind.EMAIL_CLICKED),
        ]
    )
    for row, mode in ((first, LastContactedMode.OPENED), (third, LastContactedMode.NO_REPLY)):
        row.contact.refresh_from_db()
        assert row.contact.last_contacted_mode == mode
    first.contact.refresh_from_db()
    assert first.contact.last_contacted_at == now


def test_it_keeps_what_a_person_did_before_the_group_and_never_rewinds_a_contact(sent_many):
    (row, _, _), *_ = sent_many
    earlier, later = NOW + dt.timedelta(hours=1), NOW + dt.timedelta(hours=2)
    tracking._write([tracking._Hit(row.pk, EmailEventKind.OPENED, None, "GET", BROWSER, later)])
    # The same person again, and a click stamped earlier (its request was slower): no second
    # "opened" activity, the click's activity is kept, the contact keeps the later time.
    tracking._write(
        [
            tracking._Hit(
                row.pk, EmailEventKind.OPENED, None, "GET", BROWSER, later + dt.timedelta(minutes=5)
            ),
            tracking._Hit(row.pk, EmailEventKind.CLICKED, 0, "GET", BROWSER, earlier),
        ]
    )
    kinds = Activity.objects.filter(contact=row.contact).exclude(kind=ActivityKind.EMAIL_SENT)
    assert sorted(kinds.values_list("kind", flat=True)) == [
        ActivityKind.EMAIL_CLICKED,
        ActivityKind.EMAIL_OPENED,
    ]
    row.contact.refresh_from_db()
    assert row.contact.last_contacted_at == later


def test_it_stores_a_hit_whose_user_agent_holds_a_nul_character(sent_many):
    (row, pixel, _), *_ = sent_many
    token = pixel.removeprefix("/t/o/").removesuffix(".gif")
    assert tracking.do_record_open(token, user_agent="Mozilla/5.0\x00 (evil)") is True
    event = EmailEvent.objects.get(message=row, kind=EmailEventKind.OPENED)
    assert event.metadata["user_agent"] == "Mozilla/5.0 (evil)"


def _get(app, path):
    answered = {}

    def start_response(status, headers):
        answered["status"], answered["headers"] = status, dict(headers)

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "sequent.example.com",
        "SERVER_PORT": "443",
        "HTTP_USER_AGENT": BROWSER,
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(),
    }
    body = b"".join(app(environ, start_response))
    return answered["status"], answered["headers"].get("Location"), body


# SQLite's in-memory test database locks whole tables across threads; a file database
# (production) serialises writers with IMMEDIATE transactions instead.
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_it_answers_hits_arriving_together_each_with_its_own_answer(sent_many):
    clock.set_now(NOW + dt.timedelta(hours=1))
    app = with_tracking(lambda environ, start_response: [])
    expected = {}
    for row, pixel, clicks in sent_many:
        expected[pixel] = ("200 OK", None, PIXEL_GIF)
        expected[clicks[0]] = ("302 Found", "https://www.example.com/one", b"")
        expected[clicks[1]] = ("302 Found", "https://www.example.com/two", b"")
    expected[f"/t/c/{tokens.make_click_token(sent_many[0][0].pk, 5)}"] = ("404 Not Found", None, None)
    expected[f"/t/o/{tokens.make_open_token(sent_many[-1][0].pk + 1000)}.gif"] = (
        "404 Not Found",
        None,
        PIXEL_GIF,
    )
    paths = list(expected) * 2  # every hit twice: the second is the same minute's event again
    answers: dict[int, tuple[str, str | None, bytes]] = {}
    start = threading.Barrier(len(paths))

    def request(n, path):
        try:
            start.wait()
            answers[n] = _get(app, path)
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(n, path)) for n, path in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for n, path in enumerate(paths):
        status, location, body = expected[path]
        assert answers[n][:2] == (status, location), path
        if body is not None:
            assert answers[n][2] == body
    opened, clicked = EmailEventKind.OPENED, EmailEventKind.CLICKED
    for row, _, _ in sent_many:
        assert sorted(_kinds(row)) == [(clicked, False), (clicked, False), (opened, False)]
        kinds = Activity.objects.filter(contact=row.contact).exclude(kind=ActivityKind.EMAIL_SENT)
        assert sorted(kinds.values_list("kind", flat=True)) == [
            ActivityKind.EMAIL_CLICKED,
            ActivityKind.EMAIL_OPENED,
        ]
