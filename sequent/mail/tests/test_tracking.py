"""Open pixel and click redirects, from the URLs in a message that really went out."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from django.test import Client

from sequent.crm.models import Activity, ActivityKind, LastContactedMode
from sequent.lib import clock
from sequent.mail import tokens, tracking
from sequent.mail.delivery import deliver_due
from sequent.mail.models import EmailEvent, EmailEventKind
from sequent.mail.tests.conftest import NOW, parse
from sequent.mail.tracking import PIXEL_GIF, email_counts, looks_automated
from sequent.mail.tracking_wsgi import with_tracking
from sequent.sequences.models import EnrollmentStatus

pytestmark = pytest.mark.usefixtures("delivery_env")

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
GOOGLE_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
BODY = '<p>Read <a href="https://www.example.com/case-study">the case study</a> and <a href="https://www.example.com/pricing">pricing</a>.</p>'


@pytest.fixture
def sent(recorder, make_mailbox, make_sequence, make_contact, queue):
    """One email sent with tracking: (row, open path, [click paths])."""
    handler, host, port = recorder
    sequence, (step,) = make_sequence([{"body": BODY}], mailbox=make_mailbox(host, port))
    row = queue(sequence, step, make_contact())
    assert deliver_due("w1")
    html = parse(handler.received[0].data).get_body(("html",)).get_content()
    base = "https://sequent.example.com"
    pixel = re.search(rf'src="{base}(/t/o/[^"]+)"', html).group(1)
    clicks = re.findall(rf'href="{base}(/t/c/[^"]+)"', html)
    row.refresh_from_db()
    return row, pixel, clicks


def events(row, kind):
    return list(
        EmailEvent.objects.filter(message=row, kind=kind)
        .order_by("pk")
        .values_list("is_automated", flat=True)
    )


def test_it_records_an_open_and_always_answers_the_gif(sent):
    row, pixel, _ = sent
    clock.set_now(NOW + dt.timedelta(hours=2))
    response = Client().get(pixel, HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == PIXEL_GIF
    assert "no-store" in response["Cache-Control"]
    assert events(row, EmailEventKind.OPENED) == [False]
    event = EmailEvent.objects.get(message=row, kind=EmailEventKind.OPENED)
    assert event.metadata["user_agent"] == BROWSER
    assert event.occurred_at == NOW + dt.timedelta(hours=2)
    contact = row.contact
    contact.refresh_from_db()
    assert contact.last_contacted_mode == LastContactedMode.OPENED


def test_it_records_one_open_per_minute_and_one_activity_per_message(sent):
    row, pixel, _ = sent
    clock.set_now(NOW + dt.timedelta(hours=2))
    for _ in range(3):
        Client().get(pixel, HTTP_USER_AGENT=BROWSER)
    clock.set_now(NOW + dt.timedelta(hours=3))
    Client().get(pixel, HTTP_USER_AGENT=BROWSER)
    assert events(row, EmailEventKind.OPENED) == [False, False]
    assert Activity.objects.filter(contact=row.contact, kind=ActivityKind.EMAIL_OPENED).count() == 1


def test_it_answers_404_with_the_gif_and_records_nothing_for_a_bad_token(sent):
    row, pixel, _ = sent
    token = pixel.removeprefix("/t/o/").removesuffix(".gif")
    forged = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
    for path in (f"/t/o/{forged}.gif", "/t/o/nonsense.gif", f"/t/o/{tokens.make_click_token(row.pk, 0)}.gif"):
        response = Client().get(path, HTTP_USER_AGENT=BROWSER)
        assert response.status_code == 404
        assert response.content == PIXEL_GIF
    assert not EmailEvent.objects.filter(kind=EmailEventKind.OPENED).exists()


def test_it_redirects_a_click_only_to_the_url_recorded_for_that_link(sent):
    row, _, clicks = sent
    clock.set_now(NOW + dt.timedelta(hours=1))
    assert len(clicks) == 2
    first = Client().get(clicks[0], HTTP_USER_AGENT=BROWSER)
    second = Client().get(clicks[1], HTTP_USER_AGENT=BROWSER)
    assert (first.status_code, first["Location"]) == (302, "https://www.example.com/case-study")
    assert (second.status_code, second["Location"]) == (302, "https://www.example.com/pricing")
    assert events(row, EmailEventKind.CLICKED) == [False, False]
    # A click with images blocked still tells us a person opened it.
    assert events(row, EmailEventKind.OPENED) == [False]
    assert Activity.objects.filter(contact=row.contact, kind=ActivityKind.EMAIL_CLICKED).count() == 1


def test_it_answers_404_and_never_redirects_for_a_bad_click_token(sent):
    row, _, clicks = sent
    token = clicks[0].removeprefix("/t/c/")
    tampered = token.replace(token[-1], "A" if token[-1] != "A" else "B")
    forged_pk = tokens.make_click_token(row.pk + 1000, 0)  # well signed, names no message of ours
    unknown_index = tokens.make_click_token(row.pk, 7)  # well signed, no link 7 was recorded
    other_purpose = tokens.make_open_token(row.pk)
    for bad in (tampered, forged_pk, unknown_index, other_purpose, "https:%2F%2Fevil.example"):
        response = Client().get(f"/t/c/{bad}")
        assert response.status_code == 404, bad
        assert "Location" not in response
    assert not EmailEvent.objects.filter(kind=EmailEventKind.CLICKED).exists()


def test_it_keeps_automated_hits_but_flags_them_and_they_change_nothing(sent):
    row, pixel, clicks = sent
    client = Client()
    # A link scanner follows the link seconds after delivery; a HEAD probe; an image proxy prefetch.
    assert (
        client.get(clicks[0], HTTP_USER_AGENT="Mozilla/5.0 (compatible; Barracuda Sentinel)").status_code
        == 302
    )
    assert client.head(pixel, HTTP_USER_AGENT=BROWSER).status_code == 200
    client.get(pixel, HTTP_USER_AGENT=GOOGLE_PROXY)
    assert events(row, EmailEventKind.CLICKED) == [True]
    assert set(events(row, EmailEventKind.OPENED)) == {True}
    contact = row.contact
    contact.refresh_from_db()
    assert contact.last_contacted_mode == LastContactedMode.NO_REPLY
    assert not Activity.objects.filter(
        kind__in=[ActivityKind.EMAIL_OPENED, ActivityKind.EMAIL_CLICKED]
    ).exists()

    # The same proxy an hour later is a person reading the email.
    clock.set_now(NOW + dt.timedelta(hours=1))
    client.get(pixel, HTTP_USER_AGENT=GOOGLE_PROXY)
    assert False in events(row, EmailEventKind.OPENED)
    counts = email_counts(row.step)
    assert (counts.opened_raw, counts.opened_human, counts.clicked_raw, counts.clicked_human) == (1, 1, 1, 0)
    assert email_counts(row.sequence) == counts


def test_it_never_changes_the_enrollment_on_an_open_or_click(sent):
    row, pixel, clicks = sent
    clock.set_now(NOW + dt.timedelta(hours=1))
    Client().get(pixel, HTTP_USER_AGENT=BROWSER)
    Client().get(clicks[1], HTTP_USER_AGENT=BROWSER)
    row.enrollment.refresh_from_db()
    assert row.enrollment.status == EnrollmentStatus.ACTIVE
    assert row.enrollment.exit_reason == ""


@pytest.mark.parametrize(
    ("method", "agent", "seconds", "automated"),
    [
        ("GET", BROWSER, 5, False),
        ("HEAD", BROWSER, 3600, True),
        ("GET", "", 3600, True),
        ("GET", "python-requests/2.32", 3600, True),
        ("GET", "curl/8.5.0", 3600, True),
        ("GET", "Mozilla/5.0 (compatible; Proofpoint URL Defense)", 3600, True),
        ("GET", "Mimecast-URL-Protect/1.0", 3600, True),
        ("GET", GOOGLE_PROXY, 10, True),
        ("GET", GOOGLE_PROXY, 600, False),
        ("GET", "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", 20, True),
    ],
)
def test_it_tells_automated_hits_from_people(method, agent, seconds, automated):
    assert looks_automated(method, agent, dt.timedelta(seconds=seconds)) is automated


def test_it_stores_hits_that_arrive_together_as_if_one_by_one(sent):
    # Under load the hits of many requests are written in one transaction (group commit):
    # the firsts, the implied open and the per-minute dedupe hold within a group too.
    row, _, _ = sent
    now = NOW + dt.timedelta(hours=2)

    def hit(kind, index=None, agent=BROWSER):
        return tracking._Hit(row.pk, kind, index, "GET", agent, now)

    tracking._write(
        [
            hit(EmailEventKind.CLICKED, 0),
            hit(EmailEventKind.OPENED),
            hit(EmailEventKind.OPENED, agent="curl/8.5.0"),
            hit(EmailEventKind.CLICKED, 1),
        ]
    )
    assert events(row, EmailEventKind.CLICKED) == [False, False]
    assert events(row, EmailEventKind.OPENED) == [False, True]
    kinds = Activity.objects.filter(contact=row.contact).values_list("kind", flat=True)
    assert sorted(k for k in kinds if k != ActivityKind.EMAIL_SENT) == [
        ActivityKind.EMAIL_CLICKED,
        ActivityKind.EMAIL_OPENED,
    ]


def _call(app, path, method="GET"):
    answered = {}

    def start_response(status, headers):
        answered["status"], answered["headers"] = status, dict(headers)

    body = b"".join(
        app(
            {
                "REQUEST_METHOD": method,
                "PATH_INFO": path,
                "QUERY_STRING": "",
                "SERVER_NAME": "sequent.example.com",
                "SERVER_PORT": "443",
                "HTTP_USER_AGENT": BROWSER,
                "wsgi.url_scheme": "https",
                "wsgi.input": io.BytesIO(),
            },
            start_response,
        )
    )
    return answered["status"], answered["headers"], body


def test_it_answers_tracking_paths_in_front_of_django_and_passes_the_rest(sent):
    row, pixel, clicks = sent
    clock.set_now(NOW + dt.timedelta(hours=2))
    passed = []

    def django_app(environ, start_response):
        passed.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"django"]

    app = with_tracking(django_app)
    status, headers, body = _call(app, pixel)
    assert (status, headers["Content-Type"], body) == ("200 OK", "image/gif", PIXEL_GIF)
    assert "no-store" in headers["Cache-Control"] and headers["Content-Length"] == str(len(PIXEL_GIF))
    status, headers, body = _call(app, clicks[1])
    assert (status, headers["Location"]) == ("302 Found", "https://www.example.com/pricing")
    status, headers, body = _call(app, clicks[0], method="HEAD")
    assert (status, body) == ("302 Found", b"")
    status, _, body = _call(app, "/t/c/not-a-token")
    assert status == "404 Not Found" and b"not valid" in body
    status, _, _ = _call(app, pixel, method="POST")
    assert status.startswith("405")
    assert _call(app, "/t/o/")[2] == b"django" and _call(app, "/contacts/")[2] == b"django"
    assert passed == ["/t/o/", "/contacts/"]
    assert events(row, EmailEventKind.OPENED) == [False]
    assert events(row, EmailEventKind.CLICKED) == [False, True]
