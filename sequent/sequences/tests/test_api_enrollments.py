"""/api/v1/sequences/{id}: audience preview, enrollments (list, add by hand, remove) and metrics."""

from __future__ import annotations

from sequent.lib import clock
from sequent.mail.models import EmailEvent, MessageStatus, OutboundMessage
from sequent.sequences import actions
from sequent.sequences.models import Enrollment, RunSlot
from sequent.sequences.tests.conftest import at, run_due
from sequent.sequences.tests.test_api_sequences import errors_of

VP = {"field": "job_title", "op": "starts_with", "value": "VP"}


def test_it_previews_who_would_enroll_now_without_enrolling_anyone(api, rep, make_contact):
    vps = [make_contact(job_title=f"VP {n}") for n in range(12)]
    make_contact(job_title="VP Opted out", email_opt_out=True)
    make_contact(job_title="Engineer")
    sequence = actions.do_create_sequence(rep, "VPs", audience_conditions=[VP])
    Enrollment.objects.create(sequence=sequence, contact=vps[0])  # already in: not again

    body = api.get(f"sequences/{sequence.pk}/audience/preview").json()
    assert body["would_enroll"] == 11
    assert body["audience"] == 13
    assert [c["id"] for c in body["sample"]] == [c.pk for c in vps[1:11]]
    assert set(body["sample"][0]) == {"id", "first_name", "last_name", "email"}
    assert Enrollment.objects.count() == 1


def test_it_previews_only_hand_added_contacts_without_conditions(api, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "By hand")
    make_contact()
    assert api.get(f"sequences/{sequence.pk}/audience/preview").json() == {
        "would_enroll": 0,
        "audience": 0,
        "sample": [],
    }
    picked = make_contact()
    actions.do_add_contacts(sequence, [picked.pk])
    assert api.get(f"sequences/{sequence.pk}/audience/preview").json()["sample"][0]["id"] == picked.pk


def test_it_adds_contacts_by_hand_who_enroll_at_the_next_run(api, make_sequence, make_contact):
    sequence = make_sequence([{"kind": "follow_up", "day": 1}])  # active from Friday 2026-02-27 12:00
    first, second = make_contact(), make_contact()
    with clock.frozen(at("2026-02-27 13:00")):
        response = api.post(
            f"sequences/{sequence.pk}/enrollments", {"contact_ids": [first.pk, second.pk, first.pk]}
        )
    assert response.status_code == 200
    assert response.json() == {"added": 2, "enrolls_at": "2026-03-02T09:00:00Z"}
    assert not Enrollment.objects.exists()
    run_due("2026-03-02 09:05")
    listed = api.get(f"sequences/{sequence.pk}/enrollments").json()
    assert listed["count"] == 2
    assert {row["contact"]["id"] for row in listed["items"]} == {first.pk, second.pk}
    assert {(row["status"], row["run_count"], row["enrolled_on"]) for row in listed["items"]} == {
        ("completed", 1, "2026-03-02")
    }
    assert api.post(f"sequences/{sequence.pk}/enrollments", {"contact_ids": [first.pk]}).json()["added"] == 0


def test_it_refuses_unknown_contacts_and_an_empty_list(api, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "By hand")
    known = make_contact()
    reasons = errors_of(api.post(f"sequences/{sequence.pk}/enrollments", {"contact_ids": [known.pk, 999999]}))
    assert reasons == {"contact_ids": "no contact with id 999999"}
    assert set(errors_of(api.post(f"sequences/{sequence.pk}/enrollments", {"contact_ids": []}))) == {
        "contact_ids"
    }
    # Nested lists and objects are refused by name, not met with a server error.
    for bad in ([[known.pk]], [{"id": known.pk}], [known.pk, [1, 2]]):
        refused = api.post(f"sequences/{sequence.pk}/enrollments", {"contact_ids": bad})
        assert refused.status_code == 422
        assert errors_of(refused) == {"contact_ids": "must be a list of contact ids"}
    assert not sequence.hand_added.exists()


def test_it_lists_enrollments_by_status_a_page_at_a_time(api, rep, make_contact):
    sequence = actions.do_create_sequence(rep, "Outreach")
    active = [Enrollment.objects.create(sequence=sequence, contact=make_contact()) for _ in range(3)]
    Enrollment.objects.create(
        sequence=sequence, contact=make_contact(), status="exited", exit_reason="bounced"
    )

    page = api.get(f"sequences/{sequence.pk}/enrollments", {"status": "active", "page_size": 2}).json()
    assert (page["count"], page["pages"], len(page["items"])) == (3, 2, 2)
    assert "page=2" in page["next"] and "status=active" in page["next"]
    exited = api.get(f"sequences/{sequence.pk}/enrollments", {"status": "exited"}).json()["items"]
    assert [(row["status"], row["exit_reason"]) for row in exited] == [("exited", "bounced")]
    assert set(errors_of(api.get(f"sequences/{sequence.pk}/enrollments", {"status": "gone"}))) == {"status"}
    one = api.get(f"sequences/{sequence.pk}/enrollments/{active[0].pk}").json()
    assert (one["id"], one["contact"]["email"]) == (active[0].pk, active[0].contact.email)


def test_it_removes_a_contact_by_hand_and_cancels_its_queued_email(api, make_sequence, make_contact):
    contact = make_contact()
    sequence = make_sequence([{"kind": "email", "day": 1}, {"kind": "email", "day": 2}], contacts=[contact])
    run_due("2026-03-02 09:05")
    enrollment = Enrollment.objects.get()
    assert OutboundMessage.objects.get().status == MessageStatus.QUEUED

    response = api.delete(f"sequences/{sequence.pk}/enrollments/{enrollment.pk}")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["exit_reason"]) == ("exited", "removed")
    assert OutboundMessage.objects.get().status == MessageStatus.CANCELLED
    assert (
        "already exited"
        in errors_of(api.delete(f"sequences/{sequence.pk}/enrollments/{enrollment.pk}"))["status"]
    )
    run_due("2026-03-03 09:05")
    assert OutboundMessage.objects.count() == 1  # the second email never comes


def test_it_shows_zero_metrics_before_the_first_run(api, rep):
    sequence = actions.do_create_sequence(rep, "Outreach")
    step = actions.do_add_step(sequence, "follow_up")
    body = api.get(f"sequences/{sequence.pk}/metrics").json()
    assert body["refreshed_at"] is None
    assert body["counts"]["enrolled"] == 0 and body["rates"]["reply_rate"] == 0.0
    assert [(s["step_id"], s["counts"]["executed"]) for s in body["steps"]] == [(step.pk, 0)]


def test_it_reports_sequence_and_step_metrics_after_runs(api, make_sequence, make_contact):
    ceo, intern = make_contact(job_title="CEO"), make_contact(job_title="Intern")
    sequence = make_sequence(
        [
            {"kind": "email", "day": 1},
            {
                "kind": "call_reminder",
                "day": 2,
                "conditions": [{"field": "job_title", "op": "equals", "value": "CEO"}],
            },
        ],
        contacts=[ceo, intern],
    )
    run_due("2026-03-02 09:05")
    for message in OutboundMessage.objects.all():
        message_event(message, "sent")
        message_event(message, "opened")
        message_event(message, "opened", key="again")  # the same person opening twice counts once
    message_event(OutboundMessage.objects.get(contact=ceo), "replied")
    run_due("2026-03-03 09:05")  # the CEO exits on the reply; the intern's call reminder is skipped

    body = api.get(f"sequences/{sequence.pk}/metrics").json()
    assert body["refreshed_at"] == "2026-03-03T09:05:00Z"
    counts = body["counts"]
    assert (counts["enrolled"], counts["completed"], counts["exited"]) == (2, 1, 1)
    assert (counts["sent"], counts["opened"], counts["replied"], counts["skipped"]) == (2, 2, 1, 1)
    assert body["exited_by_reason"] == {"replied": 1}
    assert (body["rates"]["open_rate"], body["rates"]["reply_rate"], body["rates"]["exit_rate"]) == (
        1.0,
        0.5,
        0.5,
    )
    email, call = body["steps"]
    assert (
        email["kind"],
        email["counts"]["sent"],
        email["counts"]["replied"],
        email["rates"]["reply_rate"],
    ) == (
        "email",
        2,
        1,
        0.5,
    )
    assert (call["counts"]["executed"], call["counts"]["skipped"], call["rates"]["skip_rate"]) == (0, 1, 1.0)
    listed = api.get("sequences").json()["items"][0]
    assert (listed["enrolled"], listed["active"], listed["reply_rate"]) == (2, 0, 0.5)
    assert RunSlot.objects.count() == 2


def message_event(message: OutboundMessage, kind: str, key: str = "") -> EmailEvent:
    return EmailEvent.objects.create(
        message=message,
        contact_id=message.contact_id,
        enrollment_id=message.enrollment_id,
        step_id=message.step_id,
        kind=kind,
        occurred_at=at("2026-03-02 11:00"),
        dedupe_key=f"{kind}-{message.pk}-{key}",
    )
