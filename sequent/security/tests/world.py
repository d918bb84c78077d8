"""One user's complete set of objects, and the factory registry that turns a route
parameter into the id of that user's object.

A route parameter the registry does not know fails the suites with "add a factory for
<route>": a route added later is checked, not skipped.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps

from sequent.crm.models import Account, Contact, ImportJob
from sequent.crm.records import do_create_activity_type, do_create_custom_field
from sequent.crm.saved_views import do_create_view
from sequent.mail.models import EmailTemplate, Mailbox, Security
from sequent.sequences import actions as sequence_actions
from sequent.sequences.models import Enrollment
from sequent.tasks.models import Task, TaskKind
from sequent.users.actions import do_create_token
from sequent.users.models import ApiToken

# Every object of user A carries this marker in its visible text; user B's responses
# must never contain it.
MARK = "zqsecret"
MAILBOX_PASSWORD = "smtp-pass-zq-9f2c7"
IMAP_PASSWORD = "imap-pass-zq-41b0"


@dataclass
class World:
    """User A's objects (ids by what a route calls them)."""

    owner: Any
    ids: dict[str, Any] = field(default_factory=dict)
    api_token: str = ""


def build_world(owner: Any, admin: Any) -> World:
    """Create one of each per-user object for *owner* (and the shared custom field and
    activity type, made by *admin*), each named with `MARK`."""
    account = Account.objects.create(name=f"Account {MARK}", domain="zq.example", owner=owner)
    contact = Contact.objects.create(
        owner=owner,
        first_name=f"Contact{MARK}",
        last_name="Person",
        email=f"{MARK}@zq.example",
        account=account,
    )
    view = do_create_view(owner, f"View {MARK}", "contact", [])
    job = ImportJob.objects.create(owner=owner, file_name=f"{MARK}.csv", file_path="/nonexistent")
    template = EmailTemplate.objects.create(
        owner=owner, name=f"Template {MARK}", subject=f"Subject {MARK}", body=f"<p>Body {MARK}</p>"
    )
    mailbox = Mailbox.objects.create(
        owner=owner,
        email_address=f"{MARK}@sender.example",
        display_name=f"Mailbox {MARK}",
        smtp_host="127.0.0.1",
        smtp_port=2525,
        smtp_security=Security.NONE,
        smtp_username="zq-user",
        smtp_password=MAILBOX_PASSWORD,
        imap_host="127.0.0.1",
        imap_username="zq-user",
        imap_password=IMAP_PASSWORD,
    )
    sequence = sequence_actions.do_create_sequence(
        owner, f"Sequence {MARK}", time_zone="UTC", send_time="09:00"
    )
    step = sequence_actions.do_add_step(sequence, "email", subject=f"Step {MARK}", body=f"<p>{MARK}</p>")
    sms_step = sequence_actions.do_add_step(sequence, "sms", sms_body=f"SMS {MARK}")
    sequence_actions.do_add_contacts(sequence, [contact.pk])
    enrollment = Enrollment.objects.create(sequence=sequence, contact=contact)
    task = Task.objects.create(
        owner=owner,
        contact=contact,
        kind=TaskKind.FOLLOW_UP,
        title=f"Task {MARK}",
        due_at=dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC),
    )
    token, plain = do_create_token(owner, name=f"Token {MARK}")
    custom = do_create_custom_field(admin, record_type="contact", label=f"Field {MARK}", field_type="text")
    activity_type = do_create_activity_type(admin, f"Type {MARK}")
    ids = {
        "contact_id": contact.pk,
        "account_id": account.pk,
        "view_id": view.pk,
        "job_id": job.pk,
        "template_id": template.pk,
        "mailbox_id": mailbox.pk,
        "sequence_id": sequence.pk,
        "step_id": step.pk,
        "sms_step_id": sms_step.pk,
        "enrollment_id": enrollment.pk,
        "task_id": task.pk,
        "token_id": token.pk,
        "user_id": owner.pk,
        "field_id": custom.pk,
        "type_id": activity_type.pk,
    }
    return World(owner=owner, ids=ids, api_token=plain)


# How a route parameter is treated:
#   owned  - the id of a per-user object: another user must get 404 and no data;
#   shared - a workspace-wide record any user may read (docs/ROLES.md, "Scope");
#            another user may not delete it unless they manage the workspace;
#   value  - not an object id (a record type, a step kind): a fixed valid value.
OWNED, SHARED, VALUE = "owned", "shared", "value"

PARAMETERS: dict[str, tuple[str, Any]] = {
    "view_id": (OWNED, "view_id"),
    "job_id": (OWNED, "job_id"),
    "template_id": (OWNED, "template_id"),
    "mailbox_id": (OWNED, "mailbox_id"),
    "sequence_id": (OWNED, "sequence_id"),
    "step_id": (OWNED, "step_id"),
    "enrollment_id": (OWNED, "enrollment_id"),
    "task_id": (OWNED, "task_id"),
    "token_id": (OWNED, "token_id"),
    # Settings -> Users: only a user who manages users may open anyone's record.
    "user_id": (OWNED, "user_id"),
    "contact_id": (SHARED, "contact_id"),
    "account_id": (SHARED, "account_id"),
    "field_id": (SHARED, "field_id"),
    "type_id": (SHARED, "type_id"),
    "record_type": (VALUE, "contact"),
    "kind": (VALUE, "email"),
}

# Parameters whose meaning depends on the route.
ROUTE_PARAMETERS: dict[tuple[str, str], tuple[str, Any]] = {
    # The SMS composer saves the text of an SMS step.
    ("sms:save_step", "step_id"): (OWNED, "sms_step_id"),
    # The import wizard's upload key lives in the uploader's session; any other
    # session gets 404 for it.
    ("crm:import_map", "token"): (OWNED, "upload-token-of-a"),
    # Public routes (below) keyed by a signed token or a file name: any value will do
    # for the suites that visit every route.
    ("mail:open", "token"): (VALUE, "not-a-token"),
    ("mail:click", "token"): (VALUE, "not-a-token"),
    ("mail:unsubscribe", "token"): (VALUE, "not-a-token"),
    ("mail:catcher_message", "name"): (VALUE, "no-such-message.eml"),
}

# Routes reachable without being the object's owner, on purpose.
PUBLIC_ROUTES: dict[str, str] = {
    "login": "the login form",
    "logout": "logs out the caller's own session (POST only)",
    "mail:open": "open pixel: a contact's mail client loads it; the signed token is the key",
    "mail:click": "click redirect: the signed token is the key and names the recorded URL",
    "mail:unsubscribe": "unsubscribe link and RFC 8058 one-click POST: the signed token is the key",
    "sms:sms-twilio-status": "provider webhook: the Twilio signature is the key",
    "sms:sms-twilio-inbound": "provider webhook: the Twilio signature is the key",
    "mail:catcher_message": "the development mail catcher: every signed-in user reads the one local inbox",
}


class MissingFactory(LookupError):
    pass


def parameter(route_name: str, name: str) -> tuple[str, Any]:
    """(kind, world key or value) for parameter *name* of route *route_name*."""
    found = ROUTE_PARAMETERS.get((route_name, name)) or PARAMETERS.get(name)
    if found is None:
        raise MissingFactory(f"add a factory for {route_name} (parameter {name!r})")
    return found


def kinds_of(route_name: str, params: tuple[str, ...]) -> set[str]:
    """The kinds (owned, shared, value) of a route's parameters."""
    return {parameter(route_name, name)[0] for name in params}


def values_for(route_name: str, params: tuple[str, ...], world: World) -> tuple[dict[str, Any], set[str]]:
    """The URL values of A's objects for a route, and the kinds of its parameters."""
    values: dict[str, Any] = {}
    kinds: set[str] = set()
    for name in params:
        kind, key = parameter(route_name, name)
        kinds.add(kind)
        values[name] = world.ids.get(key, key) if kind != VALUE else key
    return values, kinds


def missing_values(route_name: str, params: tuple[str, ...]) -> dict[str, Any]:
    """Ids nobody has, for the same route (the "does not exist" answer to compare with)."""
    values: dict[str, Any] = {}
    for name in params:
        kind, key = parameter(route_name, name)
        values[name] = (
            key if kind == VALUE else ("no-such-token" if isinstance(key, str) and "token" in key else 987654)
        )
    return values


# Tables that change on any request (sessions, logins, token use) and are not A's data.
_VOLATILE = {"users.user", "users.apitoken", "users.loginfailure", "sessions.session"}
_APPS = ("crm", "mail", "sequences", "sms", "tasks", "users")


def snapshot() -> dict[str, list[dict[str, Any]]]:
    """Every row of the app's tables, to show a request changed nothing."""
    state: dict[str, list[dict[str, Any]]] = {}
    for label in _APPS:
        for model in apps.get_app_config(label).get_models():
            if model._meta.label_lower in _VOLATILE or not model._meta.managed:
                continue
            state[model._meta.label_lower] = list(model._default_manager.order_by("pk").values())
    state["users.apitoken"] = list(ApiToken.objects.order_by("pk").values("pk", "revoked_at", "token_hash"))
    return state
