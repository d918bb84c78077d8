from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sequent.users.actions import do_create_user, do_set_active, do_set_role
from sequent.users.cli import canonical_role, find_user, validation_message
from sequent.users.models import ROLES, User


class Command(BaseCommand):
    help = (
        "Manage users: `sequent user create EMAIL --role ROLE [--password P]`, "
        "`sequent user set-role EMAIL ROLE`, `sequent user deactivate|activate EMAIL`, `sequent user list`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        roles = ", ".join(ROLES)
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a user with a role")
        create.add_argument("email")
        create.add_argument("--role", required=True, help=f"one of: {roles}")
        create.add_argument("--password", help="generated and printed when omitted")
        create.add_argument("--first-name", default="")
        create.add_argument("--last-name", default="")
        set_role = sub.add_parser("set-role", help="give a user another role")
        set_role.add_argument("email")
        set_role.add_argument("role", help=f"one of: {roles}")
        sub.add_parser("list", help="list users with their roles")
        for name, text in (
            ("deactivate", "keep a user out: no login, tokens refused"),
            ("activate", "let a user back in"),
        ):
            sub.add_parser(name, help=text).add_argument("email")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"].replace("-", "_")
        try:
            getattr(self, f"handle_{action}")(options)
        except ValidationError as exc:
            raise CommandError(validation_message(exc)) from exc

    def handle_create(self, options: dict[str, Any]) -> None:
        role = canonical_role(options["role"])
        user, password = do_create_user(
            options["email"], role, options["password"], options["first_name"], options["last_name"]
        )
        self.stdout.write(f"created {user.email} ({role})")
        if not options["password"]:
            self.stdout.write(f"password: {password}")

    def handle_set_role(self, options: dict[str, Any]) -> None:
        user = find_user(options["email"])
        role = canonical_role(options["role"])
        do_set_role(user, role)
        self.stdout.write(f"{user.email} is now {role}")

    def handle_deactivate(self, options: dict[str, Any]) -> None:
        user = find_user(options["email"])
        do_set_active(user, False)
        self.stdout.write(f"{user.email} is deactivated: login and API tokens are refused")

    def handle_activate(self, options: dict[str, Any]) -> None:
        user = find_user(options["email"])
        do_set_active(user, True)
        self.stdout.write(f"{user.email} is active")

    def handle_list(self, options: dict[str, Any]) -> None:
        for user in User.objects.prefetch_related("groups").order_by("email"):
            roles = ", ".join(sorted(group.name for group in user.groups.all())) or "no role"
            state = "" if user.is_active else " (inactive)"
            self.stdout.write(f"{user.email}\t{roles}{state}")
