from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sequent.users.actions import do_create_token
from sequent.users.models import User


class Command(BaseCommand):
    help = "Manage API tokens: `sequent token create EMAIL [--name NAME]` prints a new token once."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create an API token for a user")
        create.add_argument("email")
        create.add_argument("--name", default="API token")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = User.objects.get(email=options["email"].strip().lower())
        except User.DoesNotExist:
            raise CommandError(f"email: no user {options['email']}") from None
        _, plain = do_create_token(user, options["name"])
        self.stdout.write(plain)
