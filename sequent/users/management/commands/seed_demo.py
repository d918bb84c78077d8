from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from sequent.users.demo import ADMIN_EMAIL, DEMO_EMAIL, demo_password, do_seed_demo


class Command(BaseCommand):
    help = (
        "Seed the demo workspace (demo and admin users, accounts, contacts, custom fields, "
        "activity types, a saved view). Running it again changes nothing."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        report = do_seed_demo()
        if report.already_seeded:
            self.stdout.write("The demo workspace is already seeded; nothing changed.")
        else:
            for line in report.created:
                self.stdout.write(f"created {line}")
        password = demo_password()
        self.stdout.write(self.style.SUCCESS(f"Demo login: {DEMO_EMAIL} / {password}"))
        self.stdout.write(f"Admin login: {ADMIN_EMAIL} / {password}")
