"""`sequent import contacts|accounts FILE --owner EMAIL`: a CSV import with a progress bar.

The command creates an import job, claims it and runs it in the foreground; the job
and its bad rows stay in the database like those started from the API.
"""

from __future__ import annotations

from typing import IO, Any, cast

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from sequent.crm import imports
from sequent.crm.models import ImportJob, ImportStatus
from sequent.users.models import User

SHOWN_ERRORS = 20


def parse_mapping(items: list[str]) -> dict[str, str]:
    """``["CSV Header=field", ...]`` as a dict; the last "=" separates (headers may hold one)."""
    mapping: dict[str, str] = {}
    for item in items:
        header, sep, target = item.rpartition("=")
        if not sep or not header.strip():
            raise CommandError(f'--map {item!r}: write it as "CSV Header=field"')
        mapping[header.strip()] = target.strip()
    return mapping


class Command(BaseCommand):
    help = "Import contacts or accounts from a CSV file (encoding and delimiter are detected)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("record_type", choices=["contacts", "accounts"])
        parser.add_argument("file", help="path of the CSV file")
        parser.add_argument("--owner", required=True, help="email of the user who will own the records")
        parser.add_argument("--tag", default="", help='written to the "Import Name" custom field of each row')
        parser.add_argument("--on-duplicate", choices=imports.ON_DUPLICATE, default="skip")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar='"CSV Header=field"',
            help="map a column to a field (first_name, custom.<key>, ...; empty to ignore it); repeatable",
        )
        parser.add_argument("--encoding", default="", help="e.g. utf-8, cp1252 (detected when omitted)")
        parser.add_argument("--delimiter", default="", help="comma, semicolon or tab (detected when omitted)")
        parser.add_argument("--errors-csv", default="", metavar="PATH", help="write every bad row to PATH")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = User.objects.filter(email__iexact=options["owner"].strip()).first()
        if owner is None or not owner.is_active:
            raise CommandError(f"--owner: no active user with email {options['owner']!r}")
        try:
            job = imports.do_create_import(
                owner,
                options["record_type"],
                options["file"],
                tag=options["tag"],
                on_duplicate=options["on_duplicate"],
                mapping=parse_mapping(options["map"]),
                encoding=options["encoding"],
                delimiter=options["delimiter"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{field}: {' '.join(reasons)}" for field, reasons in exc.message_dict.items())
            ) from exc
        claimed = imports.claim_import(job.pk, f"cli:{imports.default_worker_id()}")
        if claimed is None:
            raise CommandError(f"import job {job.pk} was taken by a worker; follow it with the API")
        # Rich writes to the stream under Django's wrapper (which would add its own newlines).
        console = Console(file=cast(IO[str], self.stdout._out), highlight=False)
        job = self._run(claimed, console)
        self._report(job, console, options["errors_csv"])
        if job.status == ImportStatus.FAILED:
            raise CommandError(f"import job {job.pk} failed: {job.message}")

    def _run(self, job: ImportJob, console: Console) -> ImportJob:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(f"Importing {job.file_name}", total=job.total_bytes or None, rows=0)

            def on_progress(current: ImportJob) -> None:
                progress.update(task, completed=current.processed_bytes, rows=current.rows_seen)

            return imports.do_run_import(job, on_progress)

    def _report(self, job: ImportJob, console: Console, errors_csv: str) -> None:
        summary = Table(title=f"Import job {job.pk}: {job.status}", show_header=True)
        for name in ("rows", "created", "updated", "skipped", "bad rows"):
            summary.add_column(name, justify="right")
        summary.add_row(
            *(
                f"{n:,}"
                for n in (
                    job.rows_seen,
                    job.created_count,
                    job.updated_count,
                    job.skipped_count,
                    job.error_count,
                )
            )
        )
        console.print(summary)
        if job.report.get("ignored"):
            console.print(f"Ignored columns: {', '.join(job.report['ignored'])}", soft_wrap=True)
        if job.error_count:
            bad = Table(title=f"Bad rows (first {min(SHOWN_ERRORS, job.error_count)} of {job.error_count:,})")
            bad.add_column("line", justify="right")
            bad.add_column("reason", overflow="fold")
            for line, reason in job.row_errors.order_by("line").values_list("line", "reason")[:SHOWN_ERRORS]:
                bad.add_row(str(line), reason)
            console.print(bad)
        if errors_csv:
            with open(errors_csv, "w", newline="", encoding="utf-8") as out:
                count = imports.write_error_csv(job, out)
            console.print(f"Wrote {count:,} bad rows to {errors_csv}", soft_wrap=True)
        elif job.error_count:
            console.print(
                f"Full report: import job {job.pk}; every bad row: GET /api/v1/imports/{job.pk}/errors.csv "
                "(or pass --errors-csv PATH next time).",
                soft_wrap=True,
            )
