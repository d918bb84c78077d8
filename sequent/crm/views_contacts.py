"""Contact pages: the list with its condition builder and bulk actions, the detail page
with its timeline, enrollments and activity log form, and the create / edit / delete forms.

Contacts are shared by the workspace; only a contact's owner or a workspace manager may
delete one (``records.ensure_can_delete``), and sequences are the user's own.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from sequent.crm import records
from sequent.crm.forms import ActivityForm, ContactForm
from sequent.crm.models import RECORD_CONTACT, Contact
from sequent.crm.views import custom_values, render_record_form, save_record
from sequent.crm.views_lists import list_context, matching_ids, own_sequences
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import IN_FLIGHT, Enrollment, SequenceStatus
from sequent.sequences.models import Sequence as SalesSequence
from sequent.users import access

TIMELINE_SIZE = 50
BULK_CHUNK = 5000


def editable_sequences(user: Any) -> list[SalesSequence]:
    """The user's sequences that contacts can be added to: not archived, and only for a
    user who may edit sequences."""
    if not access.has_perm(user, access.EDIT_SEQUENCES):
        return []
    return [s for s in own_sequences(user) if s.status != SequenceStatus.ARCHIVED]


@login_required
def contact_list(request: HttpRequest) -> HttpResponse:
    """Contacts of the workspace, filtered by the builder, 50 a page."""
    context, _ = list_context(request, RECORD_CONTACT)
    context["bulk_sequences"] = editable_sequences(request.user)
    return render(request, "crm/contact_list.html", context)


def _selected_ids(request: HttpRequest) -> list[int]:
    if request.POST.get("all_matching"):
        return matching_ids(request, request.POST.get("query", ""), RECORD_CONTACT)
    return [int(pk) for pk in request.POST.getlist("ids") if pk.isdigit()]


@require_POST
@login_required
def contact_bulk(request: HttpRequest) -> HttpResponse:
    """Add the selected contacts (or every one the list matches) to a sequence, or tag them."""
    query = request.POST.get("query", "")
    back = redirect(f"{reverse('crm:contacts')}?{query}")
    ids = _selected_ids(request)
    if not ids:
        messages.error(request, "Select at least one contact first.")
        return back
    action = request.POST.get("action")
    try:
        if action == "sequence":
            access.require_perm(request.user, access.VIEW_SEQUENCES)
            access.require_perm(request.user, access.EDIT_SEQUENCES)
            sequence = access.access_object(SalesSequence, request.user, pk=request.POST.get("sequence") or 0)
            added = sum(
                sequence_actions.do_add_contacts(sequence, ids[i : i + BULK_CHUNK])
                for i in range(0, len(ids), BULK_CHUNK)
            )
            messages.success(
                request,
                f"Added {added} of {len(ids)} selected contacts to “{sequence.name}”"
                f"{'' if added == len(ids) else ' (the others were already in it)'}; "
                "they enroll at its next run.",
            )
        elif action == "tag":
            tag = request.POST.get("tag", "")
            tagged = sum(
                records.do_tag_contacts(ids[i : i + BULK_CHUNK], tag) for i in range(0, len(ids), BULK_CHUNK)
            )
            messages.success(request, f"Tagged {tagged} contacts “{' '.join(tag.split())}”.")
        else:
            messages.error(request, "Choose what to do with the selected contacts.")
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    return back


def _enrollments(request: HttpRequest, contact: Contact) -> QuerySet[Enrollment] | None:
    if not access.has_perm(request.user, access.VIEW_SEQUENCES):
        return None
    return (
        access.scope(Enrollment.objects.filter(contact=contact, status__in=IN_FLIGHT), request.user)
        .select_related("sequence")
        .order_by("sequence__name", "id")
    )


def _detail(request: HttpRequest, contact: Contact, form: ActivityForm, status: int = 200) -> HttpResponse:
    activities = contact.activities.select_related("user", "custom_type").order_by("-occurred_at", "-id")
    return render(
        request,
        "crm/contact_detail.html",
        {
            "contact": contact,
            "tags": list(contact.tags.order_by("name")),
            "custom": custom_values(RECORD_CONTACT, contact.custom),
            "activities": list(activities[:TIMELINE_SIZE]),
            "timeline_size": TIMELINE_SIZE,
            "enrollments": _enrollments(request, contact),
            "bulk_sequences": editable_sequences(request.user),
            "activity_form": form,
            "can_delete": _may_delete(request.user, contact),
        },
        status=status,
    )


def _may_delete(user: Any, contact: Contact) -> bool:
    try:
        records.ensure_can_delete(user, contact)
    except PermissionDenied:
        return False
    return True


def _contact(contact_id: int) -> Contact:
    return get_object_or_404(Contact.objects.select_related("account", "owner"), pk=contact_id)


@login_required
def contact_detail(request: HttpRequest, contact_id: int) -> HttpResponse:
    """One contact: fields, last-contacted fields, custom fields, current enrollments in
    the user's own sequences, the activity timeline and the form to log an activity."""
    contact = _contact(contact_id)
    if request.method == "POST":
        form = ActivityForm(request.POST)
        if form.is_valid():
            try:
                activity = records.do_log_activity(contact, request.user, **form.action_kwargs())
            except ValidationError as exc:
                form.add_action_errors(exc)
            else:
                label = activity.custom_type.name if activity.custom_type else activity.get_kind_display()
                messages.success(request, f"Logged: {label}.")
                return redirect("crm:contact", contact.pk)
        return _detail(request, contact, form, status=400)
    return _detail(request, contact, ActivityForm())


@require_POST
@login_required
def contact_add_to_sequence(request: HttpRequest, contact_id: int) -> HttpResponse:
    """Add this one contact to one of the user's sequences."""
    contact = _contact(contact_id)
    access.require_perm(request.user, access.VIEW_SEQUENCES)
    access.require_perm(request.user, access.EDIT_SEQUENCES)
    sequence = access.access_object(SalesSequence, request.user, pk=request.POST.get("sequence") or 0)
    try:
        added = sequence_actions.do_add_contacts(sequence, [contact.pk])
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    else:
        if added:
            messages.success(request, f"Added to “{sequence.name}”; the contact enrolls at its next run.")
        else:
            messages.info(request, f"Already in the audience of “{sequence.name}”.")
    return redirect("crm:contact", contact.pk)


@login_required
def contact_new(request: HttpRequest) -> HttpResponse:
    """Add a contact by hand."""
    form = ContactForm(request.POST or None, user=request.user)
    if request.method == "POST":
        contact = save_record(form, lambda data: records.do_create_contact(request.user, data))
        if contact is not None:
            messages.success(request, f"Added {contact}.")
            return redirect("crm:contact", contact.pk)
    return render_record_form(request, form, "New contact", "/contacts/")


@login_required
def contact_edit(request: HttpRequest, contact_id: int) -> HttpResponse:
    """Change a contact's fields, tags and custom fields."""
    contact = _contact(contact_id)
    form = ContactForm(request.POST or None, instance=contact, user=request.user)
    if request.method == "POST":
        saved = save_record(form, lambda data: records.do_update_contact(contact, data, user=request.user))
    else:
        saved = None
    if saved is not None:
        messages.success(request, f"Saved {contact}.")
        return redirect("crm:contact", contact.pk)
    return render_record_form(request, form, f"Edit {contact}", f"/contacts/{contact.pk}/")


@require_POST
@login_required
def contact_delete(request: HttpRequest, contact_id: int) -> HttpResponse:
    """Delete a contact (its owner or a workspace manager only)."""
    contact = _contact(contact_id)
    name = str(contact)
    try:
        records.do_delete_contact(contact, user=request.user)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("crm:contact", contact_id)
    messages.success(request, f"Deleted {name}.")
    return redirect("crm:contacts")
