"""The import wizard and the import pages.

1. Upload a CSV and say what it holds (``crm:import_new``); the file is stored and its
   header read at once, so an unreadable file is refused at this step.
2. Map each column to a field, starting from the importer's own guesses, and choose the
   duplicate policy and the import name (``crm:import_map``); this creates the job.
3. The job runs in the background (the importer's job machinery: a thread started after
   commit, or ``sequent worker``) while the import page polls its progress every second.
4. The same page then shows the report: counts, every bad row's line and reason (the
   first 100 on the page) and a download of the bad rows as CSV.

Everything needs the import permission; a user sees only their own imports.
"""

from __future__ import annotations

import itertools
import secrets
from pathlib import Path
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render

from sequent.crm import exports, importer, imports
from sequent.crm.forms import MappingForm, UploadForm, target_choices
from sequent.crm.models import ImportJob, ImportStatus
from sequent.crm.views import Column, build_listing
from sequent.users import access

BAD_ROWS_SHOWN = 100
SAMPLE_ROWS = 3
SESSION_KEY = "import_uploads"
# Uploads waiting for their mapping, per session; older ones are forgotten (files stay
# in IMPORT_DIR like any import's).
MAX_PENDING_UPLOADS = 5

IMPORT_COLUMNS = (
    Column("File", "file"),
    Column("Type"),
    Column("Status", "status"),
    Column("Rows", "rows"),
    Column("Created"),
    Column("Updated"),
    Column("Skipped"),
    Column("Errors", "errors"),
    Column("Started", "created"),
)
IMPORT_ORDERINGS = {
    "file": ("file_name",),
    "status": ("status",),
    "rows": ("rows_seen",),
    "errors": ("error_count",),
    "created": ("created_at",),
}


@login_required
def import_list(request: HttpRequest) -> HttpResponse:
    """The user's own CSV imports, newest first."""
    access.require_perm(request.user, access.IMPORT_RECORDS)
    listing = build_listing(
        request,
        access.scope(ImportJob.objects.all(), request.user),
        columns=IMPORT_COLUMNS,
        orderings=IMPORT_ORDERINGS,
        default_sort="-created",
        search_fields=("file_name",),
    )
    return render(request, "crm/import_list.html", {"listing": listing})


def _read_start(path: Path) -> tuple[list[str], list[list[str]], str]:
    """The file's header, its first rows and a description of how it was read."""
    dialect = importer.sniff(path)
    with importer.CsvSource(path, dialect) as source:
        rows = [row.cells for row in itertools.islice(source.rows(), SAMPLE_ROWS)]
        header = source.header
    return header, rows, f"{dialect.encoding}, {importer.DELIMITERS[dialect.delimiter]}-separated"


@login_required
def import_new(request: HttpRequest) -> HttpResponse:
    """Wizard step 1: upload a CSV of contacts or accounts."""
    access.require_perm(request.user, access.IMPORT_RECORDS)
    initial = {"record_type": "account" if request.GET.get("record_type") == "account" else "contact"}
    form = UploadForm(request.POST or None, request.FILES or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        path = imports.store_upload(upload.chunks())
        try:
            _read_start(path)
        except (importer.ImportFileError, UnicodeError, OSError, ValueError) as exc:
            path.unlink(missing_ok=True)
            form.add_error("file", f"This file cannot be read as CSV: {exc}")
        else:
            token = secrets.token_urlsafe(12)
            pending: dict[str, Any] = request.session.get(SESSION_KEY, {})
            pending = dict(list(pending.items())[-(MAX_PENDING_UPLOADS - 1) :])
            pending[token] = {
                "path": str(path),
                "file_name": (upload.name or path.name)[:255],
                "record_type": form.cleaned_data["record_type"],
            }
            request.session[SESSION_KEY] = pending
            return redirect("crm:import_map", token)
    status = 400 if form.errors else 200
    return render(request, "crm/import_upload.html", {"form": form}, status=status)


@login_required
def import_map(request: HttpRequest, token: str) -> HttpResponse:
    """Wizard step 2: map columns to fields, choose the duplicate policy and import name,
    then start the import."""
    access.require_perm(request.user, access.IMPORT_RECORDS)
    upload = request.session.get(SESSION_KEY, {}).get(token)
    if upload is None:
        raise Http404("not found")
    path, record_type = Path(upload["path"]), upload["record_type"]
    try:
        header, sample, dialect = _read_start(path)
    except (importer.ImportFileError, UnicodeError, OSError, ValueError):
        messages.error(request, "The uploaded file is gone or unreadable; upload it again.")
        return redirect("crm:import_new")
    customs = imports.custom_field_defs(record_type)
    try:
        guesses = importer.plan_columns(record_type, header, customs).describe()
    except importer.ImportFileError:
        guesses = {}  # an accounts file without a name column: the user maps it by hand
    form = MappingForm(
        request.POST or None, header=header, guesses=guesses, choices=target_choices(record_type, customs)
    )
    if request.method == "POST" and form.is_valid():
        job = _start(request, form, upload)
        if job is not None:
            request.session[SESSION_KEY] = {
                k: v for k, v in request.session.get(SESSION_KEY, {}).items() if k != token
            }
            return redirect("crm:import", job.pk)
    columns = [
        (field, [row[i] if i < len(row) else "" for row in sample])
        for i, field in enumerate(form.column_fields)
    ]
    return render(
        request,
        "crm/import_map.html",
        {
            "form": form,
            "columns": columns,
            "upload": upload,
            "dialect": dialect,
            "record_label": "contacts" if record_type == "contact" else "accounts",
        },
        status=400 if form.errors else 200,
    )


def _start(request: HttpRequest, form: MappingForm, upload: dict[str, Any]) -> ImportJob | None:
    mapping = form.mapping()
    try:
        # The plan the job will use, checked now so a missing name column is said here.
        importer.plan_columns(
            upload["record_type"], form.header, imports.custom_field_defs(upload["record_type"]), mapping
        )
        return imports.do_create_import(
            request.user,
            upload["record_type"],
            upload["path"],
            file_name=upload["file_name"],
            run_in_background=True,
            tag=form.cleaned_data.get("tag", ""),
            on_duplicate=form.cleaned_data["on_duplicate"],
            mapping=mapping,
        )
    except importer.ImportFileError as exc:
        form.add_error(None, str(exc))
    except ValidationError as exc:
        for key, reasons in exc.message_dict.items():
            for reason in reasons:
                form.add_error(key if key in form.fields else None, reason)
    return None


def _job(request: HttpRequest, job_id: int) -> ImportJob:
    access.require_perm(request.user, access.IMPORT_RECORDS)
    return access.access_object(ImportJob, request.user, pk=job_id)


def _progress_context(job: ImportJob) -> dict[str, Any]:
    return {
        "job": job,
        "percent": imports.percent_done(job),
        "in_progress": job.status in (ImportStatus.PENDING, ImportStatus.RUNNING),
    }


@login_required
def import_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    """One import: a live progress bar while it runs, then its report: counts, what was
    detected, and the first 100 bad rows with a download of them all."""
    job = _job(request, job_id)
    context = _progress_context(job)
    context["bad_rows"] = list(job.row_errors.order_by("line", "id")[:BAD_ROWS_SHOWN])
    context["columns"] = (job.report or {}).get("columns", {})
    return render(request, "crm/import_detail.html", context)


@login_required
def import_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress block alone, polled by htmx every second; when the job has finished
    it asks the browser to reload the page, which then shows the report."""
    job = _job(request, job_id)
    context = _progress_context(job)
    response = render(request, "crm/_import_progress.html", context)
    if not context["in_progress"] and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"
    return response


@login_required
def import_errors(request: HttpRequest, job_id: int) -> StreamingHttpResponse:
    """Every bad row as CSV (line, reason, the row's original columns), neutralised so a
    spreadsheet never runs a cell as a formula."""
    job = _job(request, job_id)
    response = StreamingHttpResponse(
        exports.stream_csv(imports.error_rows(job)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-bad-rows.csv"'
    return response
