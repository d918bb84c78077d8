"""The condition builder of the contact and account lists, kept in the query string.

A builder row is four parallel query parameters (``field``, ``op``, ``value``, ``value2``)
plus one ``match`` (``all`` or ``any``) for the list, so a filtered list is a plain link.
Rows become ``{field, op, value}`` clauses that the one condition compiler
(``crm.conditions``) validates and compiles; "any" ORs clauses compiled one by one.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, QueryDict

from sequent.crm import saved_views
from sequent.crm.conditions import (
    LIST_OPS,
    MAX_CLAUSES,
    NO_VALUE_OPS,
    ConditionError,
    FieldSpec,
    compile_conditions,
    field_catalog,
    record_model,
    validate_conditions,
)
from sequent.crm.models import EmailStatus, LastContactedMode, SavedView
from sequent.sequences.models import EnrollmentStatus
from sequent.users import access

MATCH_ALL = "all"
MATCH_ANY = "any"
BUILDER_PARAMS = ("field", "op", "value", "value2", "match", "view")

OPERATOR_LABELS = {
    "equals": "is",
    "not_equals": "is not",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "any_of": "is any of",
    "none_of": "is none of",
    "is_empty": "is empty",
    "is_not_empty": "is not empty",
    "gt": "is more than",
    "lt": "is less than",
    "between": "is between",
    "on": "is on",
    "before": "is before",
    "after": "is after",
    "in_last_days": "in the last … days",
    "is_true": "is yes",
    "is_false": "is no",
    "in_sequence": "is in",
    "not_in_sequence": "is not in",
}
TAG_OPERATOR_LABELS = {
    "contains": "has tag",
    "not_contains": "does not have tag",
    "any_of": "has any tag of",
    "none_of": "has no tag of",
    "is_empty": "has no tags",
    "is_not_empty": "has some tag",
}
# Built-in choice fields store a code and show a label; custom choices are their own label.
CHOICE_LABELS: dict[str, list[tuple[str, str]]] = {
    "last_contacted_mode": [(str(v), str(label)) for v, label in LastContactedMode.choices],
    "email_status": [(str(v), str(label)) for v, label in EmailStatus.choices],
}


@dataclass
class Row:
    """One builder row as the user typed it, with the field it names and its error."""

    field: str
    op: str = ""
    value: str = ""
    value2: str = ""
    spec: FieldSpec | None = None
    error: str = ""

    @property
    def operators(self) -> list[tuple[str, str]]:
        """(operator, label) pairs that fit the row's field."""
        if self.spec is None:
            return []
        labels = TAG_OPERATOR_LABELS if self.spec.type == "tags" else OPERATOR_LABELS
        return [(op, labels.get(op, op)) for op in self.spec.operators]

    @property
    def widget(self) -> str:
        """Which value input the row shows: none, text, number, date, days, select, list,
        between-number, between-date or sequence."""
        if self.spec is None or self.op in NO_VALUE_OPS:
            return "none"
        ftype = self.spec.type
        if ftype == "sequence":
            return "sequence"
        if self.op in LIST_OPS:
            return "list"
        if self.op == "in_last_days":
            return "days"
        if self.op == "between":
            return "between-number" if ftype == "number" else "between-date"
        if ftype == "number":
            return "number"
        if ftype in ("date", "datetime"):
            return "date"
        if ftype == "choice":
            return "select"
        return "text"

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(value, label) of a choice field."""
        if self.spec is None:
            return []
        return CHOICE_LABELS.get(self.spec.name) or [(c, c) for c in self.spec.choices]

    @property
    def placeholder(self) -> str:
        if self.spec is None:
            return ""
        if self.spec.type == "user":
            return "an email address, or me"
        if self.op in LIST_OPS:
            return "values separated by commas"
        return ""

    def clause(self) -> dict[str, Any]:
        """The row as a ``{field, op, value}`` clause for the condition compiler."""
        op, value, value2 = self.op, self.value.strip(), self.value2.strip()
        result: Any
        if op in NO_VALUE_OPS:
            result = None
        elif op in ("in_sequence", "not_in_sequence"):
            result = {"sequence": int(value) if value.isdigit() else value, "status": value2 or None}
        elif op in LIST_OPS:
            result = [item.strip() for item in value.split(",") if item.strip()]
        elif op == "between":
            result = [value, value2]
        else:
            result = value
        return {"field": self.field, "op": op, "value": result}


@dataclass
class Builder:
    """The state of a list's condition builder."""

    record_type: str
    rows: list[Row]
    match: str = MATCH_ALL
    view: SavedView | None = None
    error: str = ""
    catalog: list[FieldSpec] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.rows) or self.view is not None

    @property
    def has_errors(self) -> bool:
        return bool(self.error) or any(row.error for row in self.rows)

    @property
    def can_add(self) -> bool:
        return len(self.rows) < MAX_CLAUSES

    def clauses(self) -> list[dict[str, Any]]:
        return [row.clause() for row in self.rows]


def row_from_clause(clause: Mapping[str, Any]) -> Row:
    """A builder row showing a stored clause (a saved view's)."""
    value = clause.get("value")
    op = str(clause.get("op", ""))
    text, text2 = "", ""
    if isinstance(value, Mapping):
        text, text2 = str(value.get("sequence", "")), str(value.get("status") or "")
    elif op == "between" and isinstance(value, list | tuple) and len(value) == 2:
        text, text2 = str(value[0]), str(value[1])
    elif isinstance(value, list | tuple):
        text = ", ".join(str(item) for item in value)
    elif value is not None:
        text = str(value)
    return Row(field=str(clause.get("field", "")), op=op, value=text, value2=text2)


def describe_rows(rows: list[Row], specs: Mapping[str, FieldSpec], *, reset: bool = False) -> list[Row]:
    """Attach each row's field spec; a row with no operator (or, with *reset*, one that
    does not fit its field) gets its field's first one."""
    for row in rows:
        row.spec = specs.get(row.field)
        if row.spec is not None and (not row.op or (reset and row.op not in row.spec.operators)):
            row.op = row.spec.operators[0]
    return rows


def read_rows(params: QueryDict) -> list[Row]:
    """The rows in *params*, in order; a row without a field is dropped."""
    columns = [params.getlist(name) for name in ("field", "op", "value", "value2")]
    return [
        Row(field=f, op=o or "", value=v or "", value2=v2 or "") for f, o, v, v2 in zip_longest(*columns) if f
    ]


def own_view(user: Any, view_id: str | None, record_type: str) -> SavedView | None:
    """The user's saved view *view_id* on *record_type*; 404 for anybody else's."""
    if not view_id:
        return None
    view = access.access_object(SavedView.objects.all(), user, pk=view_id)
    if view.record_type != record_type:
        raise Http404("not found")
    return view


def read_builder(params: QueryDict, record_type: str, user: Any) -> Builder:
    """The builder state of *params*: its rows or, when it names only a saved view, that
    view's conditions."""
    view = own_view(user, params.get("view"), record_type)
    rows = read_rows(params)
    match = MATCH_ANY if params.get("match") == MATCH_ANY else MATCH_ALL
    if view is not None and not rows:
        rows = [row_from_clause(clause) for clause in view.conditions]
    catalog = field_catalog(record_type)
    describe_rows(rows, {spec.name: spec for spec in catalog})
    return Builder(record_type, rows, match, view, catalog=catalog)


def matching(builder: Builder, user: Any) -> QuerySet[Any]:
    """The records the builder selects; none when a row is wrong (its ``error`` says why)."""
    model = record_model(builder.record_type)
    if not builder.rows:
        return model._default_manager.all()
    try:
        clauses = validate_conditions(builder.record_type, builder.clauses(), user=user)
    except ConditionError as exc:
        if exc.index is not None and exc.index < len(builder.rows):
            builder.rows[exc.index].error = exc.reason
        else:
            builder.error = str(exc)
        return model._default_manager.none()
    if builder.match == MATCH_ANY:
        parts = [compile_conditions(builder.record_type, [clause], user=user) for clause in clauses]
        return model._default_manager.filter(functools.reduce(operator.or_, parts, Q(pk__in=[])))
    return model._default_manager.filter(compile_conditions(builder.record_type, clauses, user=user))


def save_view(user: Any, name: str, builder: Builder) -> SavedView:
    """Save the builder's conditions as *user*'s view; "any" cannot be stored (a saved view
    means all of its conditions), so it is refused with the reason."""
    if builder.match == MATCH_ANY and len(builder.rows) > 1:
        raise ValidationError(
            {"match": "a saved view keeps conditions that must all hold; switch to “all” to save it"}
        )
    return saved_views.do_create_view(user, name, builder.record_type, builder.clauses())


STATUS_CHOICES = [("", "any status"), *((str(v), str(label)) for v, label in EnrollmentStatus.choices)]
