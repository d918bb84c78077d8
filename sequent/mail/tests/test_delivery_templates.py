"""A step that uses a saved email template sends the template as it is at send time."""

import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from sequent.lib import clock
from sequent.mail.models import EmailTemplate
from sequent.mail.tests.conftest import NOW, parse
from sequent.sequences import actions as sequence_actions


def test_it_sends_the_template_as_edited_after_the_step_was_made(
    delivery_env, recorder, make_mailbox, make_contact, rep
):
    handler, host, port = recorder
    mailbox = make_mailbox(host, port)
    template = EmailTemplate.objects.create(
        owner=rep, name="Intro", subject="Hello {{ contact.first_name }}", body="<p>First draft</p>"
    )
    sequence = sequence_actions.do_create_sequence(
        rep, "Intro", time_zone="UTC", send_time="09:00", mailbox=mailbox.pk
    )
    sequence_actions.do_add_step(sequence, "email", template_id=template.pk)
    sequence_actions.do_add_contacts(sequence, [make_contact(first_name="Robin").pk])
    with clock.frozen(NOW - dt.timedelta(hours=1)):
        sequence_actions.do_activate(sequence)
    call_command("run_due", now=NOW.isoformat(), no_mail=True, stdout=io.StringIO())

    # The rep improves the template after the step queued its email.
    EmailTemplate.objects.filter(pk=template.pk).update(
        subject="Quick question, {{ contact.first_name }}", body="<p>Second draft</p>"
    )
    call_command("send_due", now=NOW.isoformat(), stdout=io.StringIO())

    received = parse(handler.received[0].data)
    assert received["Subject"] == "Quick question, Robin"
    assert "Second draft" in received.get_body(("html",)).get_content()


def test_it_refuses_another_users_template(rep, other_rep):
    foreign = EmailTemplate.objects.create(owner=other_rep, name="Theirs", subject="S", body="B")
    sequence = sequence_actions.do_create_sequence(rep, "Intro", time_zone="UTC", send_time="09:00")
    with pytest.raises(ValidationError) as refused:
        sequence_actions.do_add_step(sequence, "email", template_id=foreign.pk)
    assert "template_id" in refused.value.message_dict
