"""The one condition compiler: contact lists, saved views, sequence audiences, exit
criteria and step conditions all turn ``{field, op, value}`` clauses into SQL here.

A clause list is validated against an allow-list (fields per record type, operators per
field type, values type-checked and coerced), then compiled to a Django ``Q`` made only
of expressions with bound parameters, so the result also works as a subquery
(``INSERT ... SELECT``). The semantics, identical on SQLite and PostgreSQL, are written
down in docs/CONDITIONS.md; the main rules:

- text compares case-insensitively, folding A-Z only (both databases fold alike);
- an empty value (NULL, '' or a missing custom key) never satisfies a positive operator,
  and always satisfies its negation (not_equals, not_contains, none_of);
- datetimes compare by UTC calendar date.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import (
    BooleanField,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    Model,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
)
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    IsNull,
    LessThan,
    LessThanOrEqual,
)

from sequent.crm import fields as crm_fields
from sequent.crm.models import (
    RECORD_ACCOUNT,
    RECORD_CONTACT,
    Account,
    Contact,
    CustomField,
    CustomFieldType,
    EmailStatus,
    LastContactedMode,
)
from sequent.lib import clock
from sequent.sequences.models import Enrollment, EnrollmentStatus
from sequent.sequences.models import Sequence as SalesSequence
from sequent.users.models import User

MAX_CLAUSES = 8
MAX_LIST_VALUES = 100
MAX_TEXT_LENGTH = 500
MAX_DAYS = 36500  # a century: keeps "now - N days" inside the calendar

TEXT_OPS = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "any_of",
    "none_of",
    "is_empty",
    "is_not_empty",
)
NUMBER_OPS = ("equals", "not_equals", "gt", "lt", "between", "any_of", "none_of", "is_empty", "is_not_empty")
DATE_OPS = ("on", "before", "after", "between", "in_last_days", "is_empty", "is_not_empty")
BOOLEAN_OPS = ("is_true", "is_false")
CHOICE_OPS = ("equals", "not_equals", "any_of", "none_of", "is_empty", "is_not_empty")
TAG_OPS = ("contains", "not_contains", "any_of", "none_of", "is_empty", "is_not_empty")
SEQUENCE_OPS = ("in_sequence", "not_in_sequence")

OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "text": TEXT_OPS,
    "number": NUMBER_OPS,
    "date": DATE_OPS,
    "datetime": DATE_OPS,
    "boolean": BOOLEAN_OPS,
    "choice": CHOICE_OPS,
    "user": CHOICE_OPS,  # the record's owner: an email address or "me"
    "tags": TAG_OPS,
    "sequence": SEQUENCE_OPS,
}
ALL_OPERATORS = frozenset(op for ops in OPERATORS_BY_TYPE.values() for op in ops)

# Each negative operator is compiled as NOT of its positive twin, so an empty value
# (which never satisfies the positive one) always satisfies the negative one.
NEGATED: dict[str, str] = {
    "not_equals": "equals",
    "not_contains": "contains",
    "none_of": "any_of",
    "is_empty": "is_not_empty",
    "is_false": "is_true",
    "not_in_sequence": "in_sequence",
}
NO_VALUE_OPS = frozenset({"is_empty", "is_not_empty", "is_true", "is_false"})
LIST_OPS = frozenset({"any_of", "none_of"})

_FOLD = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


def fold(text: str) -> str:
    """Lower-case A-Z only: the case folding both databases apply to text conditions."""
    return text.translate(_FOLD)


class ConditionError(ValueError):
    """A clause list that cannot be compiled; ``str()`` names the clause and the reason.

    ``index`` is the 0-based clause index (None for list-level errors such as a ninth
    clause), ``field`` the clause's field and ``part`` which key was wrong
    ("field", "op" or "value"), so an API can point at ``conditions.<index>.<part>``.
    """

    def __init__(
        self, reason: str, index: int | None = None, field: str | None = None, part: str | None = None
    ) -> None:
        self.reason = reason
        self.index = index
        self.field = field
        self.part = part
        super().__init__(self._message())

    def _message(self) -> str:
        if self.index is None:
            return self.reason
        where = f"clause {self.index + 1}"
        if self.field:
            where += f" (field {self.field!r})"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Clause:
    """One validated clause; ``value`` is coerced (date, number, tuple ...) or None."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class FieldSpec:
    """A field conditions may use, as the UI and API show it."""

    name: str
    label: str
    type: str
    operators: tuple[str, ...]
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class SequenceMembership:
    """The value of a ``sequence`` clause: one of the user's sequences, and optionally
    the enrollment status the contact must have in it."""

    sequence_id: int
    status: str | None = None


@dataclass(frozen=True)
class _Field:
    """How one field reads from the database.

    ``source`` is "column" (``path`` is an ORM path such as ``account__name``),
    "custom" (``path`` is the JSON column's ORM path, ``key`` the custom field key),
    "owner", "tags" or "sequence".
    """

    spec: FieldSpec
    source: str
    path: str = ""
    key: str = ""
    labels: tuple[tuple[str, str], ...] = ()  # (value, label) of a built-in choice field


# --- SQL building blocks -------------------------------------------------------------

_UPPER = string.ascii_uppercase
_LOWER = string.ascii_lowercase


class AsciiLower(Func):
    """Lower-case A-Z only. SQLite's LOWER() folds ASCII only (built without ICU);
    PostgreSQL's LOWER() follows the locale, so TRANSLATE() is used there instead."""

    function = "LOWER"
    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template=f"TRANSLATE(%(expressions)s, '{_UPPER}', '{_LOWER}')",
            **extra_context,
        )


class Position(Func):
    """1-based position of the second text inside the first, 0 when absent.

    Used for contains / starts_with instead of LIKE, whose case rules and wildcard
    escaping differ between the two databases."""

    function = "INSTR"
    output_field = IntegerField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(compiler, connection, function="STRPOS", **extra_context)


_SQLITE_TYPES = {"text": "('text')", "date": "('text')", "number": "('integer', 'real')"}
_PG_TYPES = {"text": "'string'", "date": "'string'", "number": "'number'", "boolean": "'boolean'"}
_KIND_OUTPUT = {"text": TextField, "date": TextField, "number": FloatField, "boolean": BooleanField}


class CustomValue(Func):
    """One key of a ``custom`` JSON column read as *kind* (text, number, date, boolean).

    NULL when the key is absent, JSON null, or stored with a JSON type that does not fit
    (e.g. a string in a number field), so a stray value never breaks a cast on
    PostgreSQL and counts as empty on both databases. Dates are ISO ``YYYY-MM-DD`` text
    compared byte-wise (``COLLATE "C"`` on PostgreSQL)."""

    def __init__(self, column: str, key: str, kind: str) -> None:
        if kind not in _KIND_OUTPUT or not _SLUG.match(key):
            raise ValueError(f"cannot read custom key {key!r} as {kind!r}")
        super().__init__(F(column), output_field=_KIND_OUTPUT[kind]())
        self.key = key
        self.kind = kind

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        raise NotImplementedError(f"custom field conditions do not support {connection.vendor}")

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        col, col_params = compiler.compile(self.source_expressions[0])
        path = f'$."{self.key}"'
        if self.kind == "boolean":
            sql = f"(CASE json_type({col}, %s) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END)"
            return sql, (*col_params, path)
        check = f"json_type({col}, %s) IN {_SQLITE_TYPES[self.kind]}"
        params: list[Any] = [*col_params, path]
        if self.kind == "date":
            check += f" AND json_extract({col}, %s) LIKE '____-__-__'"
            params += [*col_params, path]
        sql = f"(CASE WHEN {check} THEN json_extract({col}, %s) END)"
        return sql, (*params, *col_params, path)

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        col, col_params = compiler.compile(self.source_expressions[0])
        check = f"jsonb_typeof({col} -> %s) = {_PG_TYPES[self.kind]}"
        params: list[Any] = [*col_params, self.key]
        value = f"({col} ->> %s)"
        if self.kind == "number":
            value += "::double precision"
        elif self.kind == "boolean":
            value += "::boolean"
        elif self.kind == "date":
            check += f" AND ({col} ->> %s) LIKE '____-__-__'"
            params += [*col_params, self.key]
        sql = f"(CASE WHEN {check} THEN {value} END)"
        if self.kind == "date":
            sql = f'({sql} COLLATE "C")'
        return sql, (*params, *col_params, self.key)


# --- the field catalog ---------------------------------------------------------------


def _choice_labels(choices: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(value), str(label)) for value, label in choices.choices)


def _builtin_fields(record_type: str) -> list[_Field]:
    def column(name: str, label: str, ftype: str, path: str | None = None, **extra: Any) -> _Field:
        labels = extra.get("labels", ())
        spec = FieldSpec(name, label, ftype, OPERATORS_BY_TYPE[ftype], tuple(value for value, _ in labels))
        return _Field(spec, "column", path or name, labels=labels)

    owner = _Field(FieldSpec("owner", "Owner", "user", OPERATORS_BY_TYPE["user"]), "owner")
    if record_type == RECORD_ACCOUNT:
        return [
            column("name", "Name", "text"),
            column("domain", "Domain", "text"),
            column("industry", "Industry", "text"),
            owner,
            column("created_at", "Created", "datetime"),
            column("updated_at", "Updated", "datetime"),
        ]
    return [
        column("first_name", "First name", "text"),
        column("last_name", "Last name", "text"),
        column("email", "Email", "text"),
        column("mobile", "Mobile", "text"),
        column("job_title", "Job title", "text"),
        column("time_zone", "Time zone", "text"),
        column("country", "Country", "text"),
        column("email_opt_out", "Email opt-out", "boolean"),
        column("sms_opt_out", "SMS opt-out", "boolean"),
        column("email_status", "Email status", "choice", labels=_choice_labels(EmailStatus)),
        column(
            "last_contacted_mode", "Last contacted mode", "choice", labels=_choice_labels(LastContactedMode)
        ),
        column("last_activity_type", "Last activity type", "text"),
        column("last_contacted_at", "Last contacted", "datetime"),
        column("created_at", "Created", "datetime"),
        column("updated_at", "Updated", "datetime"),
        owner,
        _Field(FieldSpec("tags", "Tags", "tags", OPERATORS_BY_TYPE["tags"]), "tags"),
        column("account.name", "Account name", "text", "account__name"),
        column("account.domain", "Account domain", "text", "account__domain"),
        column("account.industry", "Account industry", "text", "account__industry"),
    ]


def _custom_fields(record_type: str, rows: Iterable[CustomField], prefix: str, column: str) -> list[_Field]:
    result = []
    for row in rows:
        if row.record_type != record_type or not _SLUG.match(row.key):
            continue
        ftype = row.field_type if row.field_type in OPERATORS_BY_TYPE else CustomFieldType.TEXT
        choices = tuple(str(c) for c in row.choices or ()) if ftype == CustomFieldType.CHOICE else ()
        label = row.label if prefix == "custom." else f"Account: {row.label}"
        spec = FieldSpec(f"{prefix}{row.key}", label, ftype, OPERATORS_BY_TYPE[ftype], choices)
        result.append(_Field(spec, "custom", column, row.key))
    return result


def _fields(record_type: str) -> dict[str, _Field]:
    """Every field of *record_type*, built-in then custom, by name (one query)."""
    if record_type not in (RECORD_CONTACT, RECORD_ACCOUNT):
        raise ConditionError(f"unknown record type {record_type!r}; use 'contact' or 'account'")
    rows = list(CustomField.objects.order_by("label", "key"))
    found = _builtin_fields(record_type)
    found += _custom_fields(record_type, rows, "custom.", "custom")
    if record_type == RECORD_CONTACT:
        found += _custom_fields(RECORD_ACCOUNT, rows, "account.custom.", "account__custom")
        found.append(_Field(FieldSpec("sequence", "Sales sequence", "sequence", SEQUENCE_OPS), "sequence"))
    return {f.spec.name: f for f in found}


def field_catalog(record_type: str) -> list[FieldSpec]:
    """The fields conditions on *record_type* may use, with their operators: built-in
    fields, then custom fields (``custom.<key>``; for contacts also
    ``account.custom.<key>``), then sequence membership."""
    return [f.spec for f in _fields(record_type).values()]


# --- validation ----------------------------------------------------------------------


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"needs text, got {_describe(value)}")
    text = str(value).strip()
    if not text:
        raise ValueError("needs a non-empty value (use is_empty to find blanks)")
    if len(text) > MAX_TEXT_LENGTH:
        raise ValueError(f"is longer than {MAX_TEXT_LENGTH} characters")
    if "\x00" in text:
        raise ValueError("cannot contain a NUL character")  # PostgreSQL text cannot hold one
    return text


def _number(value: Any) -> int | float:
    if value is None or isinstance(value, list | tuple | dict):
        raise ValueError(f"needs a number, got {_describe(value)}")
    try:
        number = crm_fields.parse_number(value)
    except ValueError:
        raise ValueError(f"needs a number, got {_describe(value)}") from None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ValueError(f"needs a date (YYYY-MM-DD), got a date and time {_describe(value)}")
    if isinstance(value, dt.date):
        day = value
    elif isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"needs a date (YYYY-MM-DD), got {_describe(value)}") from None
    else:
        raise ValueError(f"needs a date (YYYY-MM-DD), got {_describe(value)}")
    if not 1 <= day.year <= 9998:
        raise ValueError(f"date {day.isoformat()} is out of range")
    return day


def _choice(field: _Field, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"needs one of: {', '.join(field.spec.choices)}; got {_describe(value)}")
    wanted = fold(value.strip())
    for choice_value, label in field.labels or tuple((c, c) for c in field.spec.choices):
        if wanted in (fold(choice_value), fold(label)):
            return choice_value
    raise ValueError(f"{value!r} is not one of: {', '.join(field.spec.choices)}")


def _owner(value: Any, user: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"needs a user's email address or 'me', got {_describe(value)}")
    if value.strip().lower() == "me":
        if user is None:
            raise ValueError("'me' needs a signed-in user")
        return "me"
    return crm_fields.normalize_email(value)


def _scalar(field: _Field, value: Any, user: Any) -> Any:
    ftype = field.spec.type
    if isinstance(value, list | tuple) and ftype != "sequence":
        raise ValueError(f"takes one value, not a list; got {_describe(value)}")
    if ftype in ("text", "tags"):
        return _text(value)
    if ftype == "number":
        return _number(value)
    if ftype in ("date", "datetime"):
        return _day(value)
    if ftype == "choice":
        return _choice(field, value)
    if ftype == "user":
        return _owner(value, user)
    raise ValueError(f"a {ftype} field takes no value")


def _membership(value: Any, user: Any) -> SequenceMembership:
    if isinstance(value, SequenceMembership):
        ref, status = value.sequence_id, value.status
    elif isinstance(value, Mapping) and "sequence" in value:
        ref, status = value["sequence"], value.get("status")
    else:
        raise ValueError('needs {"sequence": <id or name>, "status": optional}')
    if status in (None, ""):
        status = None
    elif status not in EnrollmentStatus.values:
        raise ValueError(f"status {status!r} is not one of: {', '.join(EnrollmentStatus.values)}")
    if user is None:
        raise ValueError("sequence conditions need the user whose sequences they name")
    mine = list(SalesSequence.objects.filter(owner=user).values_list("id", "name"))
    if isinstance(ref, int) and not isinstance(ref, bool):
        matches = [sid for sid, _ in mine if sid == ref]
    elif isinstance(ref, str) and ref.strip():
        matches = [sid for sid, name in mine if fold(name.strip()) == fold(ref.strip())]
        if len(matches) > 1:
            raise ValueError(f"you have {len(matches)} sequences named {ref!r}; name it by id")
    else:
        raise ValueError(f"needs a sequence id or name, got {_describe(ref)}")
    if not matches:
        raise ValueError(f"you have no sequence {ref!r}")
    return SequenceMembership(matches[0], status)


def _value(field: _Field, op: str, value: Any, user: Any) -> Any:
    """The coerced value of one clause, or ValueError with the reason."""
    if op in NO_VALUE_OPS:
        if value not in (None, "", [], ()):
            raise ValueError(f"operator {op!r} takes no value, got {_describe(value)}")
        return None
    if op in ("in_sequence", "not_in_sequence"):
        return _membership(value, user)
    if op in LIST_OPS:
        if not isinstance(value, list | tuple) or not value:
            raise ValueError(f"operator {op!r} needs a non-empty list of values, got {_describe(value)}")
        if len(value) > MAX_LIST_VALUES:
            raise ValueError(f"operator {op!r} takes at most {MAX_LIST_VALUES} values")
        items = [_scalar(field, item, user) for item in value]
        return tuple(dict.fromkeys(items))
    if op == "between":
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError(f"operator 'between' needs [low, high], got {_describe(value)}")
        low, high = (_scalar(field, item, user) for item in value)
        if low > high:
            raise ValueError(f"between needs low <= high, got {_describe(list(value))}")
        return (low, high)
    if op == "in_last_days":
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DAYS:
            raise ValueError(f"in_last_days needs a whole number of days from 1 to {MAX_DAYS}")
        return value
    return _scalar(field, value, user)


def _clause(fields: Mapping[str, _Field], record_type: str, index: int, raw: Any, user: Any) -> Clause:
    if isinstance(raw, Clause):
        raw = {"field": raw.field, "op": raw.op, "value": raw.value}
    if not isinstance(raw, Mapping):
        raise ConditionError(f'must be an object {{"field", "op", "value"}}, got {_describe(raw)}', index)
    name = raw.get("field")
    if not isinstance(name, str) or not name:
        raise ConditionError("needs a field", index, part="field")
    field = fields.get(name)
    if field is None:
        raise ConditionError(f"unknown field for {record_type}s", index, name, "field")
    op = raw.get("op")
    if not isinstance(op, str) or op not in ALL_OPERATORS:
        raise ConditionError(f"unknown operator {_describe(op)}", index, name, "op")
    if op not in field.spec.operators:
        raise ConditionError(f"operator {op!r} does not fit a {field.spec.type} field", index, name, "op")
    try:
        value = _value(field, op, raw.get("value"), user)
    except ValueError as exc:
        raise ConditionError(str(exc), index, name, "value") from None
    return Clause(name, op, value)


def validate_conditions(
    record_type: str, clauses: list[dict] | list[Clause], *, user: Any = None
) -> list[Clause]:
    """Check *clauses* against the allow-list of *record_type* and coerce their values.

    *user* resolves "me" (owner) and names the sequences a membership clause may use.
    Raises ConditionError naming the first clause at fault."""
    return _validate(record_type, clauses, user)[1]


def _validate(record_type: str, clauses: Sequence[Any], user: Any) -> tuple[dict[str, _Field], list[Clause]]:
    if not isinstance(clauses, list | tuple):
        raise ConditionError(f"conditions must be a list of clauses, got {_describe(clauses)}")
    if len(clauses) > MAX_CLAUSES:
        raise ConditionError(
            f"clause {MAX_CLAUSES + 1}: at most {MAX_CLAUSES} conditions are allowed (all must hold)"
        )
    fields = _fields(record_type)
    return fields, [_clause(fields, record_type, index, raw, user) for index, raw in enumerate(clauses)]


def conditions_to_json(clauses: Sequence[Clause]) -> list[dict[str, Any]]:
    """Validated clauses as JSON-ready dicts (what saved views and sequences store);
    ``validate_conditions`` reads them back unchanged."""

    def plain(value: Any) -> Any:
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, tuple):
            return [plain(item) for item in value]
        if isinstance(value, SequenceMembership):
            return {"sequence": value.sequence_id, "status": value.status}
        return value

    return [{"field": c.field, "op": c.op, "value": plain(c.value)} for c in clauses]


# --- compilation ---------------------------------------------------------------------


def _q(expression: Any) -> Q:
    return Q(expression)


def _present(value: Combinable) -> Q:
    return _q(IsNull(value, False))


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _text_expr(field: _Field) -> Combinable:
    source: Combinable = (
        CustomValue(field.path, field.key, "text") if field.source == "custom" else F(field.path)
    )
    # Coalesce keeps the comparison two-valued, so NOT (...) holds for NULL and ''.
    return Coalesce(source, Value(""), output_field=TextField())


def _compile_text(field: _Field, op: str, value: Any) -> Q:
    folded = field.spec.type == "text"
    expr: Combinable = _text_expr(field)
    if folded:
        expr = AsciiLower(expr)

    def prep(text: str) -> str:
        return fold(text) if folded else text

    if op == "equals":
        return _q(Exact(expr, prep(value)))
    if op == "contains":
        return _q(GreaterThan(Position(expr, Value(prep(value))), 0))
    if op == "starts_with":
        return _q(Exact(Position(expr, Value(prep(value))), 1))
    if op == "any_of":
        return _q(In(expr, [prep(v) for v in value]))
    if op == "is_not_empty":
        # Folding never turns text into '' or back: test the raw column, which spares
        # the database a TRANSLATE() or LOWER() of every row.
        return ~_q(Exact(_text_expr(field), ""))
    raise AssertionError(op)


def _compile_number(field: _Field, op: str, value: Any) -> Q:
    number = CustomValue(field.path, field.key, "number")
    # The IS NOT NULL guard keeps the result two-valued (FALSE AND NULL is FALSE).
    guard = _present(number)
    if op == "equals":
        return guard & _q(Exact(number, value))
    if op == "gt":
        return guard & _q(GreaterThan(number, value))
    if op == "lt":
        return guard & _q(LessThan(number, value))
    if op == "between":
        return guard & _q(GreaterThanOrEqual(number, value[0])) & _q(LessThanOrEqual(number, value[1]))
    if op == "any_of":
        return guard & _q(In(number, list(value)))
    if op == "is_not_empty":
        return guard
    raise AssertionError(op)


def _compile_custom_date(field: _Field, op: str, value: Any) -> Q:
    day = CustomValue(field.path, field.key, "date")
    guard = _present(day)
    if op == "on":
        return guard & _q(Exact(day, value.isoformat()))
    if op == "before":
        return guard & _q(LessThan(day, value.isoformat()))
    if op == "after":
        return guard & _q(GreaterThan(day, value.isoformat()))
    if op == "between":
        low, high = value
        return (
            guard & _q(GreaterThanOrEqual(day, low.isoformat())) & _q(LessThanOrEqual(day, high.isoformat()))
        )
    if op == "in_last_days":
        since = (clock.now() - dt.timedelta(days=value)).astimezone(dt.UTC).date()
        return guard & _q(GreaterThanOrEqual(day, since.isoformat()))
    if op == "is_not_empty":
        return guard
    raise AssertionError(op)


def _compile_datetime(field: _Field, op: str, value: Any) -> Q:
    # Day bounds as instants rather than a date cast: same on both databases, index-friendly.
    moment = F(field.path)
    guard = _present(moment)
    one_day = dt.timedelta(days=1)
    if op == "on":
        return (
            guard
            & _q(GreaterThanOrEqual(moment, _day_start(value)))
            & _q(LessThan(moment, _day_start(value + one_day)))
        )
    if op == "before":
        return guard & _q(LessThan(moment, _day_start(value)))
    if op == "after":
        return guard & _q(GreaterThanOrEqual(moment, _day_start(value + one_day)))
    if op == "between":
        low, high = value
        return (
            guard
            & _q(GreaterThanOrEqual(moment, _day_start(low)))
            & _q(LessThan(moment, _day_start(high + one_day)))
        )
    if op == "in_last_days":
        return guard & _q(GreaterThanOrEqual(moment, clock.now() - dt.timedelta(days=value)))
    if op == "is_not_empty":
        return guard
    raise AssertionError(op)


def _compile_boolean(field: _Field, op: str) -> Q:
    if field.source == "custom":
        flag = CustomValue(field.path, field.key, "boolean")
        return _present(flag) & _q(Exact(flag, True))
    return _q(Exact(F(field.path), True))


def _compile_owner(op: str, value: Any, user: Any) -> Q:
    if op == "is_not_empty":
        return _present(F("owner_id"))
    emails = [value] if op == "equals" else list(value)
    parts: list[Q] = []
    if "me" in emails:
        # Validation refuses "me" without a user.
        parts.append(_present(F("owner_id")) & _q(Exact(F("owner_id"), user.pk)))
    others = [email for email in emails if email != "me"]
    if others:
        # A subquery on the owner's id, not a join on the users table: the database
        # can then use the owner index instead of reading every record with its owner.
        owners = User.objects.filter(email__in=others).values("pk")
        parts.append(_present(F("owner_id")) & Q(owner_id__in=owners))
    return functools.reduce(operator.or_, parts)


def _compile_tags(op: str, value: Any) -> Q:
    through: type[Model] = Contact.tags.through
    rows = through._default_manager.filter(contact_id=OuterRef("pk"))
    if op in ("contains", "any_of"):
        names = [fold(value)] if op == "contains" else [fold(v) for v in value]
        rows = rows.filter(_q(In(AsciiLower(F("tag__name")), names)))
    return _q(Exists(rows))


def _compile_sequence(value: SequenceMembership) -> Q:
    rows = Enrollment.objects.filter(contact_id=OuterRef("pk"), sequence_id=value.sequence_id)
    if value.status:
        rows = rows.filter(status=value.status)
    return _q(Exists(rows))


def _compile_positive(field: _Field, op: str, value: Any, user: Any) -> Q:
    ftype = field.spec.type
    if ftype in ("text", "choice"):
        return _compile_text(field, op, value)
    if ftype == "number":
        return _compile_number(field, op, value)
    if ftype == "date" and field.source == "custom":
        return _compile_custom_date(field, op, value)
    if ftype in ("date", "datetime"):
        return _compile_datetime(field, op, value)
    if ftype == "boolean":
        return _compile_boolean(field, op)
    if ftype == "user":
        return _compile_owner(op, value, user)
    if ftype == "tags":
        return _compile_tags(op, value)
    if ftype == "sequence":
        return _compile_sequence(value)
    raise AssertionError(ftype)


def _compile_clause(field: _Field, clause: Clause, user: Any) -> Q:
    positive = NEGATED.get(clause.op)
    if positive is not None:
        # Every positive condition is two-valued (guards, COALESCE, EXISTS), so NOT is exact.
        return ~_compile_positive(field, positive, clause.value, user)
    return _compile_positive(field, clause.op, clause.value, user)


def compile_conditions(record_type: str, clauses: list[dict] | list[Clause], *, user: Any = None) -> Q:
    """A ``Q`` for *record_type* rows matching every clause (an empty list matches all).

    Clauses are (re)validated first, so stored condition lists that no longer fit the
    catalog (a deleted custom field, another user's sequence) raise ConditionError."""
    fields, validated = _validate(record_type, clauses, user)
    result = Q()
    for clause in validated:
        result &= _compile_clause(fields[clause.field], clause, user)
    return result


def record_model(record_type: str) -> type[Contact] | type[Account]:
    """The model conditions on *record_type* filter."""
    if record_type == RECORD_CONTACT:
        return Contact
    if record_type == RECORD_ACCOUNT:
        return Account
    raise ConditionError(f"unknown record type {record_type!r}; use 'contact' or 'account'")


def filter_records(
    record_type: str, clauses: list[dict] | list[Clause], *, user: Any = None
) -> QuerySet[Any]:
    """Contacts or accounts matching every clause, as a lazy queryset (one SQL query,
    usable as a subquery; no row is filtered in Python)."""
    model = record_model(record_type)
    return model._default_manager.filter(compile_conditions(record_type, clauses, user=user))
