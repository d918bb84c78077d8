from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from sequent.users.actions import do_create_token, do_revoke_token
from sequent.users.cli import find_user
from sequent.users.models import TOKEN_PREFIX_LENGTH, ApiToken


class Command(BaseCommand):
    help = (
        "Manage API tokens: `sequent token create EMAIL [--name NAME]` prints a new token once; "
        "`sequent token list EMAIL`; `sequent token revoke PREFIX`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create an API token for a user and print it once")
        create.add_argument("email")
        create.add_argument("--name", default="API token")
        listing = sub.add_parser("list", help="list a user's tokens (never the tokens themselves)")
        listing.add_argument("email")
        revoke = sub.add_parser("revoke", help="revoke a token, named by its prefix or the whole token")
        revoke.add_argument("token", help=f"the {TOKEN_PREFIX_LENGTH} characters after 'sq_', or the token")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"handle_{options['action']}")(options)

    def handle_create(self, options: dict[str, Any]) -> None:
        user = find_user(options["email"])
        token, plain = do_create_token(user, options["name"])
        # Only the token goes to stdout so scripts can capture it; the advice goes to stderr.
        self.stdout.write(plain)
        print(
            f"Token {token.prefix} for {user.email}: store it now, it is not shown again. "
            f"Use it as `Authorization: Bearer <token>`.",
            file=sys.stderr,
        )

    def handle_list(self, options: dict[str, Any]) -> None:
        user = find_user(options["email"])
        for token in ApiToken.objects.filter(user=user).order_by("created_at"):
            used = token.last_used_at.isoformat(timespec="minutes") if token.last_used_at else "never used"
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            self.stdout.write(f"{token.prefix}\t{token.name}\t{state}\t{used}")

    def handle_revoke(self, options: dict[str, Any]) -> None:
        text = options["token"].strip()
        if text.startswith("sq_") and len(text) > 3 + TOKEN_PREFIX_LENGTH:
            matches = list(ApiToken.objects.filter(token_hash=ApiToken.hash(text)))
        else:
            prefix = text.removeprefix("sq_")
            matches = list(ApiToken.objects.filter(prefix=prefix))
        if not matches:
            raise CommandError(f"token: no token matches {text!r}")
        if len(matches) > 1:
            raise CommandError(
                f"token: {len(matches)} tokens share the prefix {text!r}; give the whole token"
            )
        do_revoke_token(matches[0])
        self.stdout.write(f"revoked {matches[0].prefix} ({matches[0].user.email})")
