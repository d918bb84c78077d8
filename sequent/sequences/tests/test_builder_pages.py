"""The sequence builder pages: create and edit a sequence, its steps and its status."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission

from sequent.crm.models import SavedView
from sequent.mail.models import EmailTemplate
from sequent.sequences import actions
from sequent.sequences.models import Enrollment, EnrollmentStatus, ExitReason, Sequence, SequenceStatus


@pytest.fixture
def signed_in(client, rep):
    client.force_login(rep)
    return client


def settings_post(**changes):
    """A valid builder form, as a browser posts it, with *changes* on top."""
    data = {
        "name": "Q3 outreach",
        "kind": "classic",
        "record_type": "contact",
        "send_time": "09:30",
        "time_zone": "Europe/Paris",
        "exclude_weekends": "on",
        "holiday_country": "",
        "holiday_subdivision": "",
        "smart_interval_days": "1",
        "smart_expiry_days": "90",
        "exit_on_all_steps": "on",
        "exit_on_reply": "on",
        "exit_on_unsubscribe": "on",
        "exit_on_bounce": "on",
        "mailbox": "",
        "audience-field": [""],
        "audience-op": [""],
        "audience-value": [""],
        "exit-field": [""],
        "exit-op": [""],
        "exit-value": [""],
    }
    data.update(changes)
    return data


def error_after(body: str, name: str) -> str:
    """The error inside the form field of the control *name*, named by its aria-describedby."""
    field = r'<div class="field has-error">((?:(?!<div class="field).)*?name="{}"(?:(?!<div class="field).)*)'
    block = re.search(field.format(name), body, re.S)
    if not block or not re.search(rf'aria-describedby="[^"]*\bid_{name}_error\b', block[1]):
        return ""
    error = re.search(rf'<p class="field-error" id="id_{name}_error">([^<]+)</p>', block[1])
    return error[1] if error else ""


def test_it_creates_a_sequence_from_the_builder(signed_in, rep, make_contact):
    make_contact(job_title="CEO")
    make_contact(job_title="Engineer")
    view = SavedView.objects.create(owner=rep, name="Founders", conditions=[])

    response = signed_in.post(
        "/sequences/new/",
        settings_post(
            audience_views=[str(view.pk)],
            prevent_duplicates="on",
            **{
                "audience-field": ["job_title", ""],
                "audience-op": ["contains", ""],
                "audience-value": ["ceo", ""],
                "exit-field": ["email_status"],
                "exit-op": ["equals"],
                "exit-value": ["bounced"],
            },
        ),
    )

    sequence = Sequence.objects.get(owner=rep)
    assert response.status_code == 302 and response["Location"] == f"/sequences/{sequence.pk}/edit/"
    assert sequence.name == "Q3 outreach" and sequence.time_zone == "Europe/Paris"
    assert sequence.send_time.strftime("%H:%M") == "09:30" and sequence.prevent_duplicates
    assert sequence.audience_conditions == [{"field": "job_title", "op": "contains", "value": "ceo"}]
    assert sequence.exit_conditions == [{"field": "email_status", "op": "equals", "value": "bounced"}]
    assert list(sequence.audience_views.all()) == [view]
    assert sequence.status == SequenceStatus.DRAFT
    edit = signed_in.get(response["Location"]).content.decode()
    assert "1</strong> contact would enroll now" in edit


def test_it_shows_action_errors_next_to_their_fields(signed_in, rep):
    response = signed_in.post(
        "/sequences/new/",
        settings_post(
            name="  ",
            **{"audience-field": ["job_title"], "audience-op": ["gt"], "audience-value": ["5"]},
        ),
    )

    body = response.content.decode()
    assert response.status_code == 200
    assert not Sequence.objects.exists()
    assert error_after(body, "name") == "a sequence needs a name"
    condition = re.search(
        r'<div class="condition has-error">.*?<p class="field-error">([^<]+)</p>', body, re.S
    )
    assert condition and "job_title" in condition[1] and "gt" in condition[1]


def test_it_shows_a_schedule_error_from_the_action_on_its_field(signed_in):
    response = signed_in.post(
        "/sequences/new/", settings_post(holiday_country="FR", holiday_subdivision="XX")
    )

    assert not Sequence.objects.exists()
    assert "XX" in error_after(response.content.decode(), "holiday_subdivision")


def test_it_edits_a_sequence_and_keeps_conditions(signed_in, rep):
    sequence = actions.do_create_sequence(
        rep, "Old name", audience_conditions=[{"field": "job_title", "op": "contains", "value": "vp"}]
    )

    page = signed_in.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    assert 'value="Old name"' in page and 'value="vp"' in page

    response = signed_in.post(
        f"/sequences/{sequence.pk}/edit/",
        settings_post(
            name="New name",
            kind="smart",
            smart_interval_days="3",
            **{"audience-field": ["job_title"], "audience-op": ["contains"], "audience-value": ["vp"]},
        ),
    )

    assert response.status_code == 302
    sequence.refresh_from_db()
    assert (sequence.name, sequence.kind, sequence.smart_interval_days) == ("New name", "smart", 3)
    assert sequence.audience_conditions == [{"field": "job_title", "op": "contains", "value": "vp"}]


def test_it_counts_who_would_enroll_without_saving(signed_in, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "Outreach")
    make_contact(job_title="CEO")
    make_contact(job_title="CEO of things")
    make_contact(job_title="Engineer")
    typed = settings_post(
        **{"audience-field": ["job_title"], "audience-op": ["contains"], "audience-value": ["ceo"]}
    )

    response = signed_in.post(f"/sequences/{sequence.pk}/audience-count/", typed, HTTP_HX_REQUEST="true")
    new = signed_in.post("/sequences/audience-count/", typed, HTTP_HX_REQUEST="true")

    assert "<strong>2</strong> contacts would enroll now" in response.content.decode()
    assert "<strong>2</strong> contacts would enroll now" in new.content.decode()
    sequence.refresh_from_db()
    assert sequence.audience_conditions == []
    assert Sequence.objects.count() == 1


def test_it_offers_the_operators_of_the_chosen_field(signed_in):
    response = signed_in.get(
        "/sequences/condition-row/",
        {"prefix": "audience", "record_type": "contact", "audience-field": "email_opt_out"},
    )

    ops = re.findall(r'<option value="([a-z_]+)"', response.content.decode().split('name="audience-op"')[1])
    assert ops[:2] == ["is_true", "is_false"] and "contains" not in ops


def test_it_adds_edits_reorders_and_deletes_steps(signed_in, rep):
    sequence = actions.do_create_sequence(rep, "Outreach")
    template = EmailTemplate.objects.create(
        owner=rep, name="Intro", subject="Hi {{ contact.first_name }}", body="x"
    )

    first = signed_in.post(
        f"/sequences/{sequence.pk}/steps/new/email/",
        {
            "day": "1",
            "template_id": str(template.pk),
            "thread": "new",
            "cc": "boss@example.com, team@example.com",
            "track_opens": "on",
            "track_clicks": "on",
            "include_unsubscribe": "on",
            "step-field": ["email.opened@previous"],
            "step-op": ["is_false"],
            "step-value": [""],
        },
    )
    signed_in.post(
        f"/sequences/{sequence.pk}/steps/new/call_reminder/", {"day": "3", "task_title": "Call them"}
    )
    signed_in.post(f"/sequences/{sequence.pk}/steps/new/sms/", {"day": "5", "sms_body": "Still there?"})

    assert first.status_code == 302
    steps = list(sequence.steps.live())
    assert [s.kind for s in steps] == ["email", "call_reminder", "sms"]
    email = steps[0]
    assert email.template == template and email.cc == ["boss@example.com", "team@example.com"]
    assert email.conditions == [{"field": "email.opened", "op": "is_false", "value": None, "of": "previous"}]
    assert email.track_opens and email.thread == "new"

    signed_in.post(f"/sequences/{sequence.pk}/steps/{steps[2].pk}/move/", {"direction": "up"})
    assert [s.kind for s in sequence.steps.live()] == ["email", "sms", "call_reminder"]

    signed_in.post(f"/sequences/{sequence.pk}/steps/{steps[1].pk}/", {"day": "4", "task_title": "Call again"})
    steps[1].refresh_from_db()
    assert (steps[1].day, steps[1].task_title) == (4, "Call again")

    deleted = signed_in.post(f"/sequences/{sequence.pk}/steps/{steps[0].pk}/delete/", HTTP_HX_REQUEST="true")
    assert deleted["HX-Refresh"] == "true"
    assert [s.kind for s in sequence.steps.live()] == ["sms", "call_reminder"]
    page = signed_in.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    assert page.index("Still there?") < page.index("Call again")


def test_it_shows_step_errors_next_to_their_fields(signed_in, rep):
    sequence = actions.do_create_sequence(rep, "Outreach")

    response = signed_in.post(
        f"/sequences/{sequence.pk}/steps/new/email/",
        {"day": "1", "subject": "", "body": "Hello", "thread": "new", "cc": "not-an-address"},
    )

    body = response.content.decode()
    assert response.status_code == 200 and not sequence.steps.exists()
    assert "needs a subject" in error_after(body, "subject")
    assert error_after(body, "cc").startswith("item 1:")


def test_it_previews_a_step_for_a_contact_with_render_errors_inline(signed_in, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "Outreach")
    ada = make_contact(first_name="Ada", last_name="Lovelace", job_title="")
    url = f"/sequences/{sequence.pk}/steps/new/email/"
    typed = {"day": "1", "thread": "new", "preview": "1", "preview_contact": str(ada.pk)}

    good = signed_in.post(
        url,
        {**typed, "subject": "Hi {{ contact.first_name }}", "body": "<p>Hello</p>"},
        HTTP_HX_REQUEST="true",
    )
    empty = signed_in.post(
        url, {**typed, "subject": "Hi", "body": "As {{ contact.job_title }}"}, HTTP_HX_REQUEST="true"
    )
    sms = signed_in.post(
        f"/sequences/{sequence.pk}/steps/new/sms/",
        {
            "day": "1",
            "preview": "1",
            "preview_contact": str(ada.pk),
            "sms_body": "Hey {{ contact.first_name }}!",
        },
    )

    assert "<strong>Subject:</strong> Hi Ada" in good.content.decode()
    assert "contact.job_title is empty and has no default" in empty.content.decode()
    assert "Hey Ada!" in sms.content.decode() and "1 segment · GSM-7" in sms.content.decode()
    assert not sequence.steps.exists()


def test_it_activates_pauses_resumes_and_archives_after_confirmation(signed_in, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "Outreach")
    actions.do_add_step(sequence, "call_reminder", task_title="Call")

    confirm = signed_in.get(f"/sequences/{sequence.pk}/activate/")
    assert "Activate sequence" in confirm.content.decode()
    sequence.refresh_from_db()
    assert sequence.status == SequenceStatus.DRAFT

    for verb, status in (("activate", "active"), ("pause", "paused"), ("resume", "active")):
        response = signed_in.post(f"/sequences/{sequence.pk}/{verb}/")
        assert response.status_code == 302
        sequence.refresh_from_db()
        assert sequence.status == status

    enrollment = Enrollment.objects.create(sequence=sequence, contact=make_contact())
    signed_in.post(f"/sequences/{sequence.pk}/archive/")
    sequence.refresh_from_db()
    enrollment.refresh_from_db()
    assert sequence.status == SequenceStatus.ARCHIVED
    assert (enrollment.status, enrollment.exit_reason) == (EnrollmentStatus.EXITED, ExitReason.ARCHIVED)


def test_it_explains_why_a_sequence_cannot_be_activated(signed_in, rep):
    sequence = actions.do_create_sequence(rep, "Empty")

    response = signed_in.post(f"/sequences/{sequence.pk}/activate/")

    assert response.status_code == 200
    assert "add at least one step before activating" in response.content.decode()
    sequence.refresh_from_db()
    assert sequence.status == SequenceStatus.DRAFT


def test_it_hides_the_builder_without_the_permissions(signed_in, rep):
    sequence = actions.do_create_sequence(rep, "Mine")
    viewer = Group.objects.create(name="Viewer")
    viewer.permissions.set(Permission.objects.filter(codename="view_sales_sequences"))
    rep.groups.set([viewer])

    assert signed_in.get("/sequences/new/").status_code == 404
    assert signed_in.get(f"/sequences/{sequence.pk}/edit/").status_code == 404
    assert signed_in.post(f"/sequences/{sequence.pk}/archive/").status_code == 404
    listing = signed_in.get("/sequences/").content.decode()
    assert "Create Sales Sequence" not in listing
    assert "Edit sequence" not in signed_in.get(f"/sequences/{sequence.pk}/").content.decode()


def test_it_answers_404_for_another_users_sequence_in_the_builder(signed_in, other_rep):
    theirs = actions.do_create_sequence(other_rep, "Bob's pipeline")
    step = actions.do_add_step(theirs, "call_reminder", task_title="Call")

    for url in (
        f"/sequences/{theirs.pk}/edit/",
        f"/sequences/{theirs.pk}/steps/new/email/",
        f"/sequences/{theirs.pk}/steps/{step.pk}/",
        f"/sequences/{theirs.pk}/activate/",
    ):
        assert signed_in.get(url).status_code == 404, url
    assert signed_in.post(f"/sequences/{theirs.pk}/steps/{step.pk}/delete/").status_code == 404
    assert signed_in.post(f"/sequences/{theirs.pk}/audience-count/", settings_post()).status_code == 404
    assert theirs.steps.live().count() == 1


def test_it_shows_the_builder_with_its_labels(signed_in, rep, make_contact):
    make_contact(first_name="Ada")
    page = signed_in.get("/sequences/new/").content.decode()

    for label in ("Name", "Record type", "From mailbox", "Send time", "Time zone", "Holiday country"):
        assert f">{label}</label>" in page, label
    assert "Classic: each step runs on its day" in page and "Smart: at each run" in page
    assert '<option value="Europe/Paris">' in page
    assert "Create sequence</button>" in page

    sequence = actions.do_create_sequence(rep, "Outreach")
    edit = signed_in.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    for kind in ("Email", "Email reminder", "Follow-up task", "Call reminder", "SMS"):
        assert f">Add {kind}</a>" in edit, kind
    step = signed_in.get(f"/sequences/{sequence.pk}/steps/new/email/").content.decode()
    for label in ("Day", "Email template", "Subject", "Body", "Thread", "Reply-To", "CC", "BCC"):
        assert f">{label}</label>" in step, label
    assert "Ada Lee" in step and "Add step</button>" in step


def test_it_keeps_type_and_record_type_once_the_sequence_is_active(signed_in, rep):
    sequence = actions.do_create_sequence(rep, "Running")
    actions.do_add_step(sequence, "call_reminder", task_title="Call")
    actions.do_activate(sequence)

    page = signed_in.get(f"/sequences/{sequence.pk}/edit/").content.decode()
    response = signed_in.post(
        f"/sequences/{sequence.pk}/edit/", settings_post(name="Renamed", kind="smart", record_type="account")
    )

    assert re.search(r'<select name="record_type"[^>]*disabled', page)
    assert response.status_code == 302
    sequence.refresh_from_db()
    assert (sequence.name, sequence.kind, sequence.record_type) == ("Renamed", "classic", "contact")
