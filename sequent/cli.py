"""The `sequent` console script: Django's management commands under one name.

`sequent run-due` and `sequent run_due` are the same command. `sequent bench` is not
a management command: it must not load the settings of the user's database, so it
is dispatched before Django starts (see sequent/bench/).
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv if argv is None else argv)
    if len(args) > 1 and args[1] == "bench":
        from sequent.bench.runner import main as bench

        sys.exit(bench(args[2:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sequent.settings")
    from django.core.management import execute_from_command_line

    if len(args) > 1 and not args[1].startswith("-"):
        args[1] = args[1].replace("-", "_")
    args[0] = "sequent"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
