from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sequent.users.actions import do_create_user
from sequent.users.models import ROLES


class Command(BaseCommand):
    help = "Manage users: `sequent user create EMAIL --role ROLE [--password P]`."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a user with a role")
        create.add_argument("email")
        create.add_argument("--role", required=True, choices=ROLES)
        create.add_argument("--password", help="generated and printed when omitted")
        create.add_argument("--first-name", default="")
        create.add_argument("--last-name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "create":
            try:
                user, password = do_create_user(
                    options["email"], options["role"], options["password"],
                    options["first_name"], options["last_name"],
                )
            except ValidationError as exc:
                raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
            self.stdout.write(f"created {user.email} ({options['role']})")
            if not options["password"]:
                self.stdout.write(f"password: {password}")
