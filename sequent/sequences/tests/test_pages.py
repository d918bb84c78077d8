"""The read-only sequence pages: the user's own list and one sequence's summary."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from sequent.sequences import actions
from sequent.sequences.models import (
    Enrollment,
    EnrollmentStatus,
    ExitReason,
    SequenceMetrics,
    StepMetrics,
)

# Session, user, two permission lookups (top bar and the view's own check), count, page.
LIST_QUERIES = 8


@pytest.fixture
def signed_in(client, rep):
    client.force_login(rep)
    return client


def names_in(response) -> list[str]:
    """The sequence names linked in the list's table, in order."""
    return re.findall(r'<td><a href="/sequences/\d+/">([^<]+)</a>', response.content.decode())


def test_it_sends_a_visitor_to_the_login_page(client, db):
    for url in ("/sequences/", "/sequences/1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_it_lists_the_users_own_sequences_with_counts_and_reply_rate(signed_in, rep, other_rep, make_contact):
    outreach = actions.do_create_sequence(rep, "Q3 outreach", kind="smart")
    quiet = actions.do_create_sequence(rep, "Quiet one")
    actions.do_create_sequence(other_rep, "Bob's pipeline")
    for status in (EnrollmentStatus.ACTIVE, EnrollmentStatus.ACTIVE, EnrollmentStatus.EXITED):
        Enrollment.objects.create(sequence=outreach, contact=make_contact(), status=status)
    Enrollment.objects.create(sequence=quiet, contact=make_contact(), status=EnrollmentStatus.PAUSED)
    SequenceMetrics.objects.create(sequence=outreach, sent=8, replied=2)

    body = signed_in.get("/sequences/").content.decode()

    assert names_in(signed_in.get("/sequences/")) == ["Q3 outreach", "Quiet one"]
    assert "Bob" not in body
    row = body[body.index("Q3 outreach") : body.index("Quiet one")]
    assert "Smart" in row and "Draft" in row
    assert re.findall(r'<td class="num">([^<]+)</td>', row) == ["3", "2", "25%"]
    quiet_row = body[body.index("Quiet one") : body.index("</tbody>")]
    assert re.findall(r'<td class="num">([^<]+)</td>', quiet_row) == ["1", "0", "—"]


def test_it_pages_searches_and_sorts_sequences(signed_in, rep):
    for n in range(51):
        actions.do_create_sequence(rep, f"Campaign {n:02}")
    actions.do_create_sequence(rep, "Renewals")

    first = signed_in.get("/sequences/")
    assert len(names_in(first)) == 50 and "Page 1 of 2" in first.content.decode()
    assert names_in(signed_in.get("/sequences/", {"page": 2})) == ["Campaign 50", "Renewals"]
    assert names_in(signed_in.get("/sequences/", {"q": "RENEW"})) == ["Renewals"]
    assert names_in(signed_in.get("/sequences/", {"sort": "-name"}))[:2] == ["Renewals", "Campaign 50"]


def test_it_shows_an_empty_state_without_sequences(signed_in, other_rep):
    actions.do_create_sequence(other_rep, "Bob's pipeline")

    body = signed_in.get("/sequences/").content.decode()

    assert "You have no sequences yet" in body
    assert '<a class="button" href="/sequences/new/">Create Sales Sequence</a>' in body
    assert "Bob" not in body


def test_it_lists_sequences_without_a_query_per_row(
    signed_in, rep, make_contact, django_assert_max_num_queries
):
    for n in range(15):
        sequence = actions.do_create_sequence(rep, f"Sequence {n:02}")
        Enrollment.objects.create(sequence=sequence, contact=make_contact())
        SequenceMetrics.objects.create(sequence=sequence, sent=4, replied=1)

    with django_assert_max_num_queries(LIST_QUERIES):
        response = signed_in.get("/sequences/")
    assert len(names_in(response)) == 15


def test_it_answers_404_without_the_view_permission(signed_in, rep):
    sequence = actions.do_create_sequence(rep, "Mine")
    rep.groups.set([Group.objects.create(name="Contacts only")])

    assert signed_in.get("/sequences/").status_code == 404
    assert signed_in.get(f"/sequences/{sequence.pk}/").status_code == 404


def test_it_answers_404_for_another_users_sequence(signed_in, other_rep):
    theirs = actions.do_create_sequence(other_rep, "Bob's pipeline")

    response = signed_in.get(f"/sequences/{theirs.pk}/")

    assert response.status_code == 404
    assert "Bob" not in response.content.decode()


def test_it_shows_a_sequence_with_schedule_steps_metrics_and_enrollments(signed_in, rep, make_contact):
    sequence = actions.do_create_sequence(
        rep, "Q3 outreach", time_zone="Europe/Paris", send_time="10:30", holiday_country="FR"
    )
    intro = actions.do_add_step(sequence, "email", subject="Quick question")
    actions.do_add_step(sequence, "call_reminder", day=3, task_title="Call about pricing")
    actions.do_add_step(sequence, "sms", day=5, sms_body="Still interested?")
    StepMetrics.objects.create(step=intro, executed=4, sent=4, opened=3, replied=1)
    SequenceMetrics.objects.create(sequence=sequence, enrolled=2, sent=4, replied=1)
    ada = make_contact(first_name="Ada", last_name="Lovelace")
    grace = make_contact(first_name="Grace", last_name="Hopper")
    Enrollment.objects.create(sequence=sequence, contact=ada, run_count=2)
    Enrollment.objects.create(
        sequence=sequence, contact=grace, status=EnrollmentStatus.EXITED, exit_reason=ExitReason.REPLIED
    )

    body = signed_in.get(f"/sequences/{sequence.pk}/").content.decode()

    assert "10:30 Europe/Paris" in body and "public holidays of FR" in body
    assert body.index("Quick question") < body.index("Call about pricing") < body.index("Still interested?")
    step_rows = re.findall(r"<tr>\s*<td class=\"num\">\d</td>(.*?)</tr>", body, re.S)
    assert len(step_rows) == 3
    assert re.findall(r'<td class="num">(\d+)</td>', step_rows[0]) == ["1", "4", "0", "4", "3", "0", "1", "0"]
    assert "no run yet" in step_rows[1]
    assert "Reply rate</dt><dd>25%" in body
    assert "Ada Lovelace" in body and "Grace Hopper" in body
    assert "Exited" in body and "Replied" in body


def test_it_shows_only_the_first_fifty_enrollments(signed_in, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "Big one")
    Enrollment.objects.bulk_create(
        Enrollment(sequence=sequence, contact=make_contact(first_name=f"P{n:02}")) for n in range(52)
    )

    body = signed_in.get(f"/sequences/{sequence.pk}/").content.decode()

    assert "The first 50 of 52" in body
    assert "P49 Lee" in body and "P50 Lee" not in body
