"""/api/v1/sequences: create, read, list, change, delete, status changes, validation."""

from __future__ import annotations

from sequent.crm.models import SavedView
from sequent.lib import clock
from sequent.mail.models import Mailbox
from sequent.sequences import actions
from sequent.sequences.models import Enrollment, EnrollmentStatus, Sequence, SequenceMetrics, SequenceStatus
from sequent.sequences.tests.conftest import at

CEO = {"field": "job_title", "op": "contains", "value": "CEO"}


def errors_of(response) -> dict[str, str]:
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["detail"] == "validation failed"
    return {error["field"]: error["reason"] for error in body["errors"]}


def test_it_creates_a_draft_sequence_and_shows_it_whole(api, rep):
    view = SavedView.objects.create(owner=rep, name="VPs", record_type="contact", conditions=[])
    mailbox = Mailbox.objects.create(owner=rep, email_address="alice@example.com")
    response = api.post(
        "sequences",
        {
            "name": "Q3 outreach",
            "kind": "smart",
            "audience_conditions": [CEO],
            "audience_views": [view.pk],
            "send_time": "08:30",
            "time_zone": "Europe/London",
            "holiday_country": "gb",
            "smart_interval_days": 2,
            "exit_on_reply": False,
            "mailbox": mailbox.pk,
            "exclusive": True,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft"
    assert (body["kind"], body["record_type"], body["send_time"], body["time_zone"]) == (
        "smart",
        "contact",
        "08:30",
        "Europe/London",
    )
    assert (body["holiday_country"], body["smart_interval_days"], body["exit_on_reply"]) == ("GB", 2, False)
    assert body["audience_conditions"] == [CEO]
    assert body["audience_views"] == [view.pk]
    assert body["mailbox"] == mailbox.pk
    assert (body["exclusive"], body["exit_on_bounce"]) == (True, True)
    assert (body["step_count"], body["enrolled"], body["active"], body["reply_rate"]) == (0, 0, 0, 0.0)
    assert body["steps"] == []
    assert Sequence.objects.get().owner == rep
    assert api.get(f"sequences/{body['id']}").json() == body


def test_it_lists_own_sequences_with_status_counts_and_reply_rate(api, rep, other_rep, make_contact):
    draft = actions.do_create_sequence(rep, "Draft one")
    live = actions.do_create_sequence(rep, "Live one")
    actions.do_add_step(live, "follow_up")
    actions.do_activate(live)
    actions.do_create_sequence(other_rep, "Not mine")
    people = [make_contact() for _ in range(3)]
    Enrollment.objects.bulk_create(
        [
            Enrollment(sequence=live, contact=people[0]),
            Enrollment(sequence=live, contact=people[1]),
            Enrollment(
                sequence=live, contact=people[2], status=EnrollmentStatus.EXITED, exit_reason="replied"
            ),
        ]
    )
    SequenceMetrics.objects.create(sequence=live, sent=8, replied=2)

    body = api.get("sequences").json()
    assert body["count"] == 2
    rows = {row["name"]: row for row in body["items"]}
    assert rows.keys() == {"Draft one", "Live one"}
    assert (rows["Live one"]["status"], rows["Live one"]["enrolled"], rows["Live one"]["active"]) == (
        "active",
        3,
        2,
    )
    assert (rows["Live one"]["reply_rate"], rows["Live one"]["step_count"]) == (0.25, 1)
    assert (rows["Draft one"]["enrolled"], rows["Draft one"]["reply_rate"]) == (0, 0.0)
    assert [row["name"] for row in api.get("sequences", {"status": "draft"}).json()["items"]] == ["Draft one"]
    assert [row["id"] for row in api.get("sequences", {"q": "live"}).json()["items"]] == [live.pk]
    assert draft.pk in {
        row["id"] for row in api.get("sequences", {"page_size": 1, "page": 2}).json()["items"]
    }


def test_it_updates_only_the_fields_sent(api, rep):
    sequence = actions.do_create_sequence(rep, "Outreach", time_zone="America/New_York")
    response = api.patch(f"sequences/{sequence.pk}", {"name": "Renamed", "exclude_weekends": False})
    assert response.status_code == 200
    body = response.json()
    assert (body["name"], body["exclude_weekends"], body["time_zone"]) == (
        "Renamed",
        False,
        "America/New_York",
    )


def test_it_names_the_refused_condition_and_refuses_a_ninth(api, rep):
    bad = {"name": "X", "audience_conditions": [CEO, {"field": "shoe_size", "op": "eq", "value": 1}]}
    reasons = errors_of(api.post("sequences", bad))
    assert list(reasons) == ["audience_conditions[1]"]
    assert "unknown field" in reasons["audience_conditions[1]"]

    nine = {"name": "X", "exit_conditions": [CEO] * 9}
    assert errors_of(api.post("sequences", nine)) == {"exit_conditions": "at most 8 conditions, got 9"}
    eight = api.post("sequences", {"name": "X", "exit_conditions": [CEO] * 8})
    assert eight.status_code == 201
    assert not Sequence.objects.exclude(pk=eight.json()["id"]).exists()


def test_it_names_the_schedule_field_that_is_wrong(api, rep):
    assert (
        "Mars/Base" in errors_of(api.post("sequences", {"name": "X", "time_zone": "Mars/Base"}))["time_zone"]
    )
    assert "XX" in errors_of(api.post("sequences", {"name": "X", "holiday_country": "XX"}))["holiday_country"]
    assert "25:00" in errors_of(api.post("sequences", {"name": "X", "send_time": "25:00"}))["send_time"]
    sequence = actions.do_create_sequence(rep, "Outreach")
    assert set(errors_of(api.patch(f"sequences/{sequence.pk}", {"time_zone": "Nowhere"}))) == {"time_zone"}
    assert not Sequence.objects.exclude(pk=sequence.pk).exists()


def test_it_reports_schema_errors_by_field(api):
    reasons = errors_of(api.post("sequences", {"name": "X", "kind": "weekly", "colour": "red"}))
    assert set(reasons) == {"kind", "colour"}
    assert set(errors_of(api.post("sequences", {"kind": "classic"}))) == {"name"}


def test_it_refuses_another_users_saved_view_and_mailbox(api, other_rep):
    view = SavedView.objects.create(owner=other_rep, name="Theirs", record_type="contact", conditions=[])
    mailbox = Mailbox.objects.create(owner=other_rep, email_address="bob@example.com")
    reasons = errors_of(
        api.post("sequences", {"name": "X", "audience_views": [view.pk], "mailbox": mailbox.pk})
    )
    assert set(reasons) == {"audience_views[0]", "mailbox"}


def test_it_activates_pauses_resumes_and_archives(api, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "Outreach", time_zone="UTC", send_time="09:00")
    refused = api.post(f"sequences/{sequence.pk}/activate")
    assert errors_of(refused) == {"steps": "add at least one step before activating"}
    actions.do_add_step(sequence, "follow_up")
    with clock.frozen(at("2026-03-02 10:00")):
        body = api.post(f"sequences/{sequence.pk}/activate").json()
        assert body["status"] == "active"
        assert (body["activated_at"], body["next_run_at"]) == ("2026-03-02T10:00:00Z", "2026-03-03T09:00:00Z")
        paused = api.post(f"sequences/{sequence.pk}/pause").json()
        assert (paused["status"], paused["next_run_at"]) == ("paused", None)
        assert "cannot be paused" in errors_of(api.post(f"sequences/{sequence.pk}/pause"))["status"]
        assert api.post(f"sequences/{sequence.pk}/resume").json()["status"] == "active"
    enrollment = Enrollment.objects.create(sequence=sequence, contact=make_contact())
    assert api.post(f"sequences/{sequence.pk}/archive").json()["status"] == "archived"
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "archived")
    assert "archived" in errors_of(api.patch(f"sequences/{sequence.pk}", {"name": "Again"}))["status"]


def test_it_deletes_only_a_draft_or_archived_sequence(api, rep, make_contact):
    draft = actions.do_create_sequence(rep, "Draft")
    assert api.delete(f"sequences/{draft.pk}").status_code == 204
    assert not Sequence.objects.filter(pk=draft.pk).exists()

    live = actions.do_create_sequence(rep, "Live")
    actions.do_add_step(live, "follow_up")
    actions.do_activate(live)
    Enrollment.objects.create(sequence=live, contact=make_contact())
    assert "archive it first" in errors_of(api.delete(f"sequences/{live.pk}"))["status"]
    assert Enrollment.objects.filter(sequence=live).exists()
    api.post(f"sequences/{live.pk}/archive")
    assert api.delete(f"sequences/{live.pk}").status_code == 204
    assert not Enrollment.objects.exists()
    assert api.get(f"sequences/{live.pk}").status_code == 404


def test_it_needs_create_edit_or_delete_permission_for_each_change(api, rep, make_contact):
    from django.contrib.auth.models import Group, Permission

    sequence = actions.do_create_sequence(rep, "Outreach")
    step = actions.do_add_step(sequence, "follow_up")
    viewer = Group.objects.create(name="Viewer")
    viewer.permissions.add(Permission.objects.get(codename="view_sales_sequences"))
    rep.groups.set([viewer])

    assert api.get(f"sequences/{sequence.pk}").status_code == 200
    refusals = [
        (api.post("sequences", {"name": "New"}), "Create Sales Sequences"),
        (api.patch(f"sequences/{sequence.pk}", {"name": "Renamed"}), "Edit Sales Sequences"),
        (api.post(f"sequences/{sequence.pk}/steps", {"kind": "follow_up"}), "Edit Sales Sequences"),
        (api.delete(f"sequences/{sequence.pk}/steps/{step.pk}"), "Edit Sales Sequences"),
        (api.post(f"sequences/{sequence.pk}/activate"), "Edit Sales Sequences"),
        (
            api.post(f"sequences/{sequence.pk}/enrollments", {"contact_ids": [make_contact().pk]}),
            "Edit Sales Sequences",
        ),
        (api.post(f"sequences/{sequence.pk}/archive"), "Delete Sales Sequences"),
        (api.delete(f"sequences/{sequence.pk}"), "Delete Sales Sequences"),
    ]
    for response, permission in refusals:
        assert response.status_code == 403
        assert response.json() == {"detail": f"this needs the {permission} permission"}
    sequence.refresh_from_db()
    assert (sequence.name, sequence.status) == ("Outreach", SequenceStatus.DRAFT)
    assert sequence.steps.live().count() == 1


def test_it_lists_a_page_in_the_same_queries_whatever_its_length(api, rep, make_contact):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for_list() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("sequences").status_code == 200
        return len(captured)

    queries_for_list()  # the first request of a token also records when it was used
    for n in range(2):
        sequence = actions.do_create_sequence(rep, f"S{n}")
        actions.do_add_step(sequence, "follow_up")
        Enrollment.objects.create(sequence=sequence, contact=make_contact())
    few = queries_for_list()
    for n in range(2, 7):
        sequence = actions.do_create_sequence(rep, f"S{n}")
        actions.do_add_step(sequence, "follow_up")
        actions.do_activate(sequence)
        SequenceMetrics.objects.create(sequence=sequence, sent=4, replied=1)
    assert queries_for_list() == few
