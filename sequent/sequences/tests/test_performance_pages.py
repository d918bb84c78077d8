"""The performance page (funnel and exits charts), the enrollments table and an enrollment's timeline."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group

from sequent.mail.models import EmailEvent, OutboundMessage
from sequent.sequences import actions
from sequent.sequences.models import Enrollment, EnrollmentStatus, ExitReason, SequenceMetrics, StepMetrics
from sequent.sequences.tests.conftest import at, run_due


@pytest.fixture
def signed_in(client, rep):
    client.force_login(rep)
    return client


def chart_values(body: str, chart_id: str) -> dict[str, int]:
    """label -> number of each bar of the chart *chart_id*, as drawn."""
    svg = body[body.index(f'id="{chart_id}-title"') :]
    svg = svg[: svg.index("</svg>")]
    return {label: int(value) for label, value in re.findall(r'data-label="([^"]+)" data-value="(\d+)"', svg)}


@pytest.fixture
def ran(make_contact, make_sequence):
    """A sequence after two runs: three contacts emailed, opens (one automated), a click, a reply."""
    a, b, c = make_contact(first_name="Ada"), make_contact(first_name="Bea"), make_contact(first_name="Cy")
    sequence = make_sequence(
        [{"kind": "email", "day": 1}, {"kind": "follow_up", "day": 2}], contacts=[a, b, c]
    )
    run_due("2026-03-02 09:05")
    events = [
        (a, "sent", False),
        (b, "sent", False),
        (c, "sent", False),
        (a, "opened", False),
        (b, "opened", True),
        (a, "clicked", False),
        (b, "clicked", True),
        (c, "replied", False),
    ]
    for n, (contact, kind, automated) in enumerate(events):
        message = OutboundMessage.objects.get(contact=contact)
        EmailEvent.objects.create(
            message=message,
            contact=contact,
            enrollment=message.enrollment,
            step=message.step,
            kind=kind,
            is_automated=automated,
            occurred_at=at("2026-03-02 12:00"),
            dedupe_key=f"perf{n}",
        )
    OutboundMessage.objects.update(status="sent")
    run_due("2026-03-03 09:05")
    return sequence


def test_it_draws_each_steps_funnel_with_the_metrics_numbers(signed_in, ran):
    email_step = ran.steps.live().first()
    metrics = StepMetrics.objects.get(step=email_step)

    body = signed_in.get(f"/sequences/{ran.pk}/performance/").content.decode()

    drawn = chart_values(body, f"chart-step-{email_step.pk}")
    assert drawn == {
        "Sent": metrics.sent,
        "Opened (human)": metrics.opened,
        "Opened (all hits)": metrics.opened_raw,
        "Clicked (human)": metrics.clicked,
        "Clicked (all hits)": metrics.clicked_raw,
        "Replied": metrics.replied,
        "Bounced": metrics.bounced,
        "Unsubscribed": metrics.unsubscribed,
    }
    assert (drawn["Opened (human)"], drawn["Opened (all hits)"], drawn["Clicked (all hits)"]) == (1, 2, 2)
    totals = SequenceMetrics.objects.get(sequence=ran)
    assert chart_values(body, "chart-all")["Sent"] == totals.sent == 3
    # Numbers are visible text, not only bar lengths.
    assert re.search(r'<text class="value"[^>]*>3</text>', body)


def test_it_draws_exits_by_reason(signed_in, ran):
    body = signed_in.get(f"/sequences/{ran.pk}/performance/").content.decode()

    assert chart_values(body, "chart-exits") == {"Replied": 1}


def test_it_says_when_there_are_no_figures_yet(signed_in, rep):
    sequence = actions.do_create_sequence(rep, "Fresh")

    body = signed_in.get(f"/sequences/{sequence.pk}/performance/").content.decode()

    assert "No figures yet" in body and "<svg" not in body


def enrolled_names(response) -> list[str]:
    return re.findall(
        r'<td><a href="/sequences/\d+/enrollments/\d+/">([^<]+)</a></td>', response.content.decode()
    )


def test_it_filters_and_searches_the_enrollments(signed_in, ran):
    url = f"/sequences/{ran.pk}/enrollments/"
    email_step, follow_up = list(ran.steps.live())

    assert sorted(enrolled_names(signed_in.get(url))) == ["Ada Lee", "Bea Lee", "Cy Lee"]
    assert enrolled_names(signed_in.get(url, {"status": "exited"})) == ["Cy Lee"]
    assert enrolled_names(signed_in.get(url, {"exit_reason": "replied"})) == ["Cy Lee"]
    assert sorted(enrolled_names(signed_in.get(url, {"step": follow_up.pk}))) == ["Ada Lee", "Bea Lee"]
    assert enrolled_names(signed_in.get(url, {"step": email_step.pk})) == ["Cy Lee"]
    assert enrolled_names(signed_in.get(url, {"q": "bea"})) == ["Bea Lee"]
    assert "No enrollment matches" in signed_in.get(url, {"status": "paused"}).content.decode()


def test_it_pages_the_enrollments(signed_in, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "Big one")
    Enrollment.objects.bulk_create(
        Enrollment(sequence=sequence, contact=make_contact(first_name=f"P{n:02}")) for n in range(53)
    )

    first = signed_in.get(f"/sequences/{sequence.pk}/enrollments/", {"sort": "contact"})
    second = signed_in.get(f"/sequences/{sequence.pk}/enrollments/", {"sort": "contact", "page": 2})

    assert len(enrolled_names(first)) == 50 and "Page 1 of 2" in first.content.decode()
    assert enrolled_names(second) == ["P50 Lee", "P51 Lee", "P52 Lee"]


def test_it_shows_an_enrollments_timeline_with_reasons(signed_in, ran):
    replied = Enrollment.objects.get(sequence=ran, status=EnrollmentStatus.EXITED)
    active = Enrollment.objects.get(sequence=ran, contact__first_name="Ada")

    exited_page = signed_in.get(f"/sequences/{ran.pk}/enrollments/{replied.pk}/").content.decode()
    active_page = signed_in.get(f"/sequences/{ran.pk}/enrollments/{active.pk}/").content.decode()

    assert replied.exit_reason == ExitReason.REPLIED
    assert "Step 1: Email" in exited_page and "email sent" in exited_page
    assert "not reached: the enrollment exited" in exited_page
    assert "replied" in exited_page
    assert "Step 2: Follow-up task" in active_page and "clicked" in active_page


def test_it_answers_404_for_another_users_performance_and_enrollments(client, other_rep, ran):
    client.force_login(other_rep)
    enrollment = Enrollment.objects.filter(sequence=ran).first()

    for url in (
        f"/sequences/{ran.pk}/performance/",
        f"/sequences/{ran.pk}/enrollments/",
        f"/sequences/{ran.pk}/enrollments/{enrollment.pk}/",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "Ada" not in response.content.decode()


def test_it_answers_404_for_an_enrollment_of_another_sequence(signed_in, rep, ran, make_contact):
    other = actions.do_create_sequence(rep, "Other")
    enrollment = Enrollment.objects.filter(sequence=ran).first()

    assert signed_in.get(f"/sequences/{other.pk}/enrollments/{enrollment.pk}/").status_code == 404


def test_it_hides_the_performance_pages_without_the_view_permission(signed_in, rep, ran):
    rep.groups.set([Group.objects.create(name="Contacts only")])

    assert signed_in.get(f"/sequences/{ran.pk}/performance/").status_code == 404
    assert signed_in.get(f"/sequences/{ran.pk}/enrollments/").status_code == 404


def test_it_lists_enrollments_without_a_query_per_row(
    signed_in, ran, make_contact, django_assert_max_num_queries
):
    Enrollment.objects.bulk_create(Enrollment(sequence=ran, contact=make_contact()) for _ in range(20))

    # Session, user, permissions, the sequence, its steps, count, page.
    with django_assert_max_num_queries(10):
        response = signed_in.get(f"/sequences/{ran.pk}/enrollments/")
    assert len(enrolled_names(response)) == 23
