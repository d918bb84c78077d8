"""CSV imports over the API, mounted at /api/v1/imports.

Upload a file and get a job back at once (201); the import runs in the background.
Poll the job for progress, then read its bad rows, as JSON pages or as a CSV file.
Jobs belong to the user who uploaded them; every endpoint needs "import_records".
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, StreamingHttpResponse
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from sequent.api.pagination import paginated
from sequent.crm import importer, imports
from sequent.crm.models import ImportJob, ImportRowError
from sequent.users import access

router = Router(tags=["imports"])


class ImportJobOut(Schema):
    id: int
    record_type: str
    file_name: str
    status: str
    percent: float
    total_bytes: int
    processed_bytes: int
    rows_seen: int
    created: int
    updated: int
    skipped: int
    errors: int
    message: str
    options: dict[str, Any]
    report: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @staticmethod
    def resolve_percent(job: ImportJob) -> float:
        return imports.percent_done(job)

    @staticmethod
    def resolve_created(job: ImportJob) -> int:
        return job.created_count

    @staticmethod
    def resolve_updated(job: ImportJob) -> int:
        return job.updated_count

    @staticmethod
    def resolve_skipped(job: ImportJob) -> int:
        return job.skipped_count

    @staticmethod
    def resolve_errors(job: ImportJob) -> int:
        return job.error_count


class RowErrorOut(Schema):
    line: int
    reason: str
    row: list[str]

    @staticmethod
    def resolve_row(error: ImportRowError) -> list[str]:
        return importer.row_cells(error.raw)


def _mapping(text: str) -> dict[str, str]:
    if not text.strip():
        return {}
    try:
        mapping = json.loads(text)
    except ValueError:
        raise ValidationError({"mapping": 'not JSON; send {"CSV Header": "field", ...}'}) from None
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise ValidationError({"mapping": 'send an object {"CSV Header": "field", ...}'})
    return mapping


def _job(request: HttpRequest, job_id: int) -> ImportJob:
    access.require_perm(request.user, access.IMPORT_RECORDS)
    return access.access_object(ImportJob, request.user, pk=job_id)


@router.post("/", response={201: ImportJobOut})
def create_import(
    request: HttpRequest,
    file: File[UploadedFile],
    record_type: Form[str],
    tag: Form[str] = "",
    on_duplicate: Form[str] = "skip",
    mapping: Form[str] = "",
    encoding: Form[str] = "",
    delimiter: Form[str] = "",
) -> Status[ImportJob]:
    """Upload a CSV of contacts or accounts; the import starts in the background.

    `mapping` is a JSON object {"CSV Header": "field"} (a field such as `first_name`,
    `custom.<key>`, or "" to ignore the column); it cannot create new fields.
    """
    access.require_perm(request.user, access.IMPORT_RECORDS)
    options: dict[str, Any] = {
        "tag": tag,
        "on_duplicate": on_duplicate,
        "mapping": _mapping(mapping),
        "encoding": encoding,
        "delimiter": delimiter,
    }
    imports.clean_options(record_type, **options)  # refuse bad options before storing the file
    path = imports.store_upload(file.chunks())
    try:
        job = imports.do_create_import(
            request.user, record_type, path, file_name=file.name or "", run_in_background=True, **options
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Status(201, job)


@router.get("/", response=list[ImportJobOut])
@paginated
def list_imports(request: HttpRequest) -> Any:
    """The current user's imports, newest first."""
    access.require_perm(request.user, access.IMPORT_RECORDS)
    return access.scope(ImportJob.objects.all(), request.user).order_by("-created_at", "-id")


@router.get("/{job_id}", response=ImportJobOut)
def get_import(request: HttpRequest, job_id: int) -> ImportJob:
    """One import with its progress: percent by bytes, rows seen, counts and status."""
    return _job(request, job_id)


@router.get("/{job_id}/errors", response=list[RowErrorOut])
@paginated
def import_errors(request: HttpRequest, job_id: int) -> Any:
    """The bad rows of an import by line: the reason and the row as read."""
    return _job(request, job_id).row_errors.order_by("line", "id")


@router.get("/{job_id}/errors.csv")
def import_errors_csv(request: HttpRequest, job_id: int) -> StreamingHttpResponse:
    """Every bad row as CSV: line, reason, then the row's original columns."""
    job = _job(request, job_id)
    response = StreamingHttpResponse(imports.iter_error_csv(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
