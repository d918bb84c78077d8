"""Template context every page gets: what the user may do, and the menus built from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from sequent.users import access


@dataclass(frozen=True)
class MenuItem:
    label: str
    url: str
    current: bool = False


# (label, URL name, permission needed or "" for every user). A URL name that does not
# resolve (a page not built yet) is left out rather than breaking every page.
NAVIGATION = (
    ("Contacts", "crm:contacts", ""),
    ("Accounts", "crm:accounts", ""),
    ("Sequences", "sequences:list", access.VIEW_SEQUENCES),
    ("Activities", "tasks:dashboard", ""),
    ("Templates", "mail:templates", ""),
    ("Imports", "crm:imports", access.IMPORT_RECORDS),
)
QUICK_ADD = (
    ("Create Sales Sequence", "sequences:new", access.CREATE_SEQUENCES),
    ("Contact", "crm:contact_new", ""),
    ("Account", "crm:account_new", ""),
    ("Task", "tasks:new", ""),
    ("Import a CSV", "crm:import_new", access.IMPORT_RECORDS),
)
USER_MENU = (
    ("Mailboxes", "mail:mailboxes", ""),
    ("SMS templates", "sms:templates", ""),
    ("Mail catcher", "mail:catcher", ""),
)


def _url(name: str) -> str | None:
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


def _items(entries: tuple[tuple[str, str, str], ...], allowed: dict[str, bool], path: str) -> list[MenuItem]:
    items = []
    for label, name, perm in entries:
        if perm and not allowed[perm]:
            continue
        url = _url(name)
        if url is not None:
            items.append(MenuItem(label, url))
    # The current item is the one whose address is the longest prefix of this page's.
    best = max((i for i in items if path.startswith(i.url)), key=lambda i: len(i.url), default=None)
    return [MenuItem(i.label, i.url, i is best) for i in items]


def permissions(request: HttpRequest) -> dict[str, Any]:
    """``can.<permission>`` for templates, and the menus a user is allowed to see."""
    user = getattr(request, "user", None)
    allowed = {
        codename: access.has_perm(user, codename)
        for codename in (
            access.VIEW_SEQUENCES,
            access.CREATE_SEQUENCES,
            access.EDIT_SEQUENCES,
            access.DELETE_SEQUENCES,
            access.IMPORT_RECORDS,
            access.EXPORT_RECORDS,
            access.MANAGE_USERS,
            access.MANAGE_WORKSPACE,
        )
    }
    # "Create" is only reachable with "View": a user who cannot see sequences cannot make one.
    allowed[access.CREATE_SEQUENCES] = allowed[access.CREATE_SEQUENCES] and allowed[access.VIEW_SEQUENCES]
    can = {
        "view_sequences": allowed[access.VIEW_SEQUENCES],
        "create_sequences": allowed[access.CREATE_SEQUENCES],
        "edit_sequences": allowed[access.EDIT_SEQUENCES],
        "delete_sequences": allowed[access.DELETE_SEQUENCES],
        "import_records": allowed[access.IMPORT_RECORDS],
        "export_records": allowed[access.EXPORT_RECORDS],
        "manage_users": allowed[access.MANAGE_USERS],
        "manage_workspace": allowed[access.MANAGE_WORKSPACE],
        "settings": allowed[access.MANAGE_USERS] or allowed[access.MANAGE_WORKSPACE],
    }
    if user is None or not user.is_authenticated:
        return {"can": can, "nav": [], "quick_add": [], "user_menu": []}
    path = request.path
    user_menu = _items(USER_MENU, allowed, path)
    if can["settings"]:
        user_menu.insert(0, MenuItem("Settings", reverse("users:settings")))
    return {
        "can": can,
        "nav": _items(NAVIGATION, allowed, path),
        "quick_add": _items(QUICK_ADD, allowed, ""),
        "user_menu": user_menu,
    }
