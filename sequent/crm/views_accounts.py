"""Account pages: the list with its condition builder, the detail page with the account's
contacts, and the create / edit / delete forms."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from sequent.crm import records
from sequent.crm.forms import AccountForm
from sequent.crm.models import RECORD_ACCOUNT, Account, Contact
from sequent.crm.views import build_listing, custom_values, render_record_form, save_record
from sequent.crm.views_lists import CONTACT_COLUMNS, CONTACT_ORDERINGS, list_context


@login_required
def account_list(request: HttpRequest) -> HttpResponse:
    """Accounts with their number of contacts, filtered by the builder, 50 a page."""
    context, _ = list_context(request, RECORD_ACCOUNT)
    return render(request, "crm/account_list.html", context)


def _account(account_id: int) -> Account:
    return get_object_or_404(Account.objects.select_related("owner"), pk=account_id)


@login_required
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    """One account: its fields and its contacts, 50 a page."""
    account = _account(account_id)
    listing = build_listing(
        request,
        Contact.objects.filter(account=account).select_related("owner"),
        columns=[c for c in CONTACT_COLUMNS if c.sort != "account"],
        orderings=CONTACT_ORDERINGS,
        default_sort="name",
        search_fields=("first_name", "last_name", "email"),
    )
    try:
        records.ensure_can_delete(request.user, account)
        can_delete = True
    except PermissionDenied:
        can_delete = False
    return render(
        request,
        "crm/account_detail.html",
        {
            "account": account,
            "custom": custom_values(RECORD_ACCOUNT, account.custom),
            "listing": listing,
            "can_delete": can_delete,
        },
    )


@login_required
def account_new(request: HttpRequest) -> HttpResponse:
    """Add an account by hand."""
    form = AccountForm(request.POST or None, user=request.user)
    if request.method == "POST":
        account = save_record(form, lambda data: records.do_create_account(request.user, data))
        if account is not None:
            messages.success(request, f"Added {account}.")
            return redirect("crm:account", account.pk)
    return render_record_form(request, form, "New account", "/accounts/")


@login_required
def account_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    """Change an account's fields and custom fields."""
    account = _account(account_id)
    form = AccountForm(request.POST or None, instance=account, user=request.user)
    if request.method == "POST":
        saved = save_record(form, lambda data: records.do_update_account(account, data, user=request.user))
    else:
        saved = None
    if saved is not None:
        messages.success(request, f"Saved {account}.")
        return redirect("crm:account", account.pk)
    return render_record_form(request, form, f"Edit {account}", f"/accounts/{account.pk}/")


@require_POST
@login_required
def account_delete(request: HttpRequest, account_id: int) -> HttpResponse:
    """Delete an account (its owner or a workspace manager only); its contacts stay."""
    account = _account(account_id)
    name = str(account)
    try:
        records.do_delete_account(account, user=request.user)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
        return redirect("crm:account", account_id)
    messages.success(request, f"Deleted {name}; its contacts stay, without an account.")
    return redirect("crm:accounts")
