"""Insert many rows of one model without model instances: the engine's write path.

``bulk_create`` builds a model instance per row and prepares every value of every row
through its field; for the thousands of step executions, tasks and outbox rows a run
writes, that Python work costs more than the database's. Here each column's
preparation is worked out once per call, values that need none (text, numbers,
booleans, foreign keys) pass through untouched, and repeated datetimes are prepared
once. Conflicts on the unique keys are ignored, as with ``bulk_create(ignore_conflicts=True)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from django.db import connections
from django.db.models import Field, Model
from django.utils import timezone

# Fields whose Python value is what the database driver takes as is.
PASS_THROUGH = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "EmailField",
        "ForeignKey",
        "IntegerField",
        "PositiveBigIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SlugField",
        "SmallIntegerField",
        "TextField",
        "URLField",
    }
)


def preparer(field: Field, connection: Any) -> Callable[[Any], Any] | None:
    """None when the value passes through; else a function preparing it, remembering
    each distinct value (a batch repeats the same few instants and dates)."""
    if field.get_internal_type() in PASS_THROUGH:
        return None
    if field.get_internal_type() in ("DateTimeField", "DateField"):
        seen: dict[Any, Any] = {}

        def prepare_cached(value: Any) -> Any:
            try:
                return seen[value]
            except KeyError:
                prepared = seen[value] = field.get_db_prep_save(value, connection)
                return prepared

        return prepare_cached
    return lambda value: field.get_db_prep_save(value, connection)


def insert_rows(
    model: type[Model],
    names: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
) -> None:
    """Insert *rows* (tuples of values for the attribute *names*, e.g. ``step_id``) into
    *model*'s table, skipping any row that conflicts with a unique key.

    A column not named takes its value from *fixed*, else the field's default, evaluated
    once per call unless it is a callable default (then once per row), or ``now`` for
    ``auto_now``/``auto_now_add`` fields. Columns with a database default are left to it.
    """
    connection = connections[model._default_manager.db]
    meta = model._meta
    fixed = fixed or {}
    given = list(names)
    fields = {f.attname: f for f in meta.concrete_fields}
    unknown = set(given) - set(fields)
    if unknown:
        raise ValueError(f"{model.__name__} has no column(s) {', '.join(sorted(unknown))}")
    callable_fields: list[Field] = []
    constant_fields: list[Field] = []
    constants: list[Any] = []
    for field in meta.concrete_fields:
        if field.attname in given or field.primary_key:
            continue
        if field.attname in fixed:
            value = fixed[field.attname]
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            value = timezone.now()
        elif field.has_default() and callable(field.default):
            callable_fields.append(field)
            continue
        elif field.has_db_default() and not field.has_default():
            continue
        else:
            value = field.get_default()
        constant_fields.append(field)
        constants.append(field.get_db_prep_save(value, connection))
    per_row = [(field, preparer(field, connection) or (lambda value: value)) for field in callable_fields]
    ordered = [*(fields[name] for name in given), *callable_fields, *constant_fields]
    preparers = [(i, p) for i, name in enumerate(given) if (p := preparer(fields[name], connection))]

    def params(row: Sequence[Any]) -> list[Any]:
        values = list(row)
        for i, prepare in preparers:
            values[i] = prepare(values[i])
        values.extend(prepare(field.get_default()) for field, prepare in per_row)
        return values

    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    column_sql = ", ".join(quote(str(f.column)) for f in ordered)
    # "ON CONFLICT DO NOTHING" is spelled the same on SQLite and PostgreSQL.
    head = f"INSERT INTO {table} ({column_sql}) "
    tail = " ON CONFLICT DO NOTHING"
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # SQLite prepares the one-row statement once and reuses it for every row.
            one = "VALUES (" + ", ".join(["%s"] * len(ordered)) + ")"
            cursor.executemany(head + one + tail, [params(row) + constants for row in rows])
            return
        # PostgreSQL: one array per varying column, unnested into rows, so a statement
        # has a handful of parameters whatever the number of rows (a multi-row VALUES
        # list costs the driver more to compose than the server to run).
        varying = len(given) + len(per_row)
        arrays: list[list[Any]] = [[] for _ in range(varying)]
        for row in rows:
            for array, value in zip(arrays, params(row), strict=False):
                array.append(value)
        if not arrays or not arrays[0]:
            return
        unnest = ", ".join(f"%s::{f.db_type(connection)}[]" for f in ordered[:varying])
        scalars = "".join(f", %s::{f.db_type(connection)}" for f in ordered[varying:])
        sql = f"{head}SELECT src.*{scalars} FROM unnest({unnest}) AS src{tail}"  # noqa: S608 - names from the model
        cursor.execute(sql, [*constants, *arrays])
