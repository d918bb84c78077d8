"""Which steps an enrollment takes at a run, and why a step is skipped. Pure: no Django.

Step conditions mix property clauses (compiled to SQL by ``sequent.crm.conditions``)
and email-activity clauses, which this module reads and evaluates::

    {"field": "email.opened", "op": "is_true", "value": null, "of": "previous"}

``of`` is ``previous`` (the nearest email step before this one) or ``any`` (any step
of the enrollment). The engine loads the facts (which clauses hold) in a few queries
per batch and hands them here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EMAIL_ACTIVITY_FIELDS = {
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.replied": "replied",
    "email.bounced": "bounced",
}
EMAIL_ACTIVITY_OPS = ("is_true", "is_false")
EMAIL_ACTIVITY_SCOPES = ("previous", "any")
EMAIL_STEP_KINDS = ("email", "email_reminder")

EXECUTE = "execute"
SKIP = "skip"


def is_email_clause(clause: Mapping[str, Any]) -> bool:
    """Whether *clause* is about email activity rather than a record property."""
    return str(clause.get("field", "")).startswith("email.")


@dataclass(frozen=True)
class EmailClause:
    """A validated email-activity clause; ``index`` is its 0-based place in the step's list."""

    index: int
    field: str
    kind: str
    expect: bool
    of: str

    def describe(self, actual: bool) -> str:
        """The clause and what was found, e.g. ``email.opened of previous step is false``."""
        return f"{self.field} of {self.of} step is {'true' if actual else 'false'}"


def parse_email_clause(index: int, clause: Mapping[str, Any]) -> EmailClause:
    """Validate an email-activity clause; ValueError says what is wrong with it."""
    name = str(clause.get("field", ""))
    if name not in EMAIL_ACTIVITY_FIELDS:
        raise ValueError(f"unknown email activity {name!r}; use one of {', '.join(EMAIL_ACTIVITY_FIELDS)}")
    op = clause.get("op")
    if op not in EMAIL_ACTIVITY_OPS:
        raise ValueError(f"operator {op!r} does not fit {name}; use is_true or is_false")
    if clause.get("value") not in (None, ""):
        raise ValueError(f"{name} {op} takes no value")
    of = clause.get("of", "previous")
    if of not in EMAIL_ACTIVITY_SCOPES:
        raise ValueError(f"'of' must be 'previous' or 'any', not {of!r}")
    extra = set(clause) - {"field", "op", "value", "of"}
    if extra:
        raise ValueError(f"unexpected key(s) {', '.join(sorted(extra))}")
    return EmailClause(index, name, EMAIL_ACTIVITY_FIELDS[name], op == "is_true", str(of))


def describe_property_clause(clause: Mapping[str, Any]) -> str:
    """A property clause as a rep reads it, e.g. ``job_title contains "CEO"``."""
    text = f"{clause.get('field')} {clause.get('op')}"
    value = clause.get("value")
    if value is not None:
        text += " " + json.dumps(value, default=str)
    return text


@dataclass(frozen=True)
class StepPlan:
    """What the engine needs to know of one live step, in sequence order."""

    id: int
    kind: str
    day: int
    property_clauses: tuple[tuple[int, Mapping[str, Any]], ...] = ()
    email_clauses: tuple[EmailClause, ...] = ()
    previous_email_step: int | None = None
    # "condition 2 failed: ... does not hold" by property clause index, written once
    # per plan rather than once per skipped enrollment.
    property_failures: Mapping[int, str] = field(default_factory=dict, compare=False)

    @property
    def has_conditions(self) -> bool:
        """Whether the step has any clause at all."""
        return bool(self.property_clauses or self.email_clauses)


def build_plans(steps: Iterable[tuple[int, str, int, Sequence[Mapping[str, Any]]]]) -> list[StepPlan]:
    """StepPlans from ``(id, kind, day, conditions)`` tuples given in sequence order."""
    plans: list[StepPlan] = []
    last_email: int | None = None
    for step_id, kind, day, conditions in steps:
        props: list[tuple[int, Mapping[str, Any]]] = []
        emails: list[EmailClause] = []
        for index, clause in enumerate(conditions or ()):
            if is_email_clause(clause):
                emails.append(parse_email_clause(index, clause))
            else:
                props.append((index, clause))
        failures = {index: f"{describe_property_clause(clause)} does not hold" for index, clause in props}
        plans.append(StepPlan(step_id, kind, day, tuple(props), tuple(emails), last_email, failures))
        if kind in EMAIL_STEP_KINDS:
            last_email = step_id
    return plans


@dataclass
class Facts:
    """What is known of one enrollment at a run.

    ``failed_property`` maps a step id to the 0-based index of its first property clause
    that does not hold (absent = all hold); ``activity`` holds (step_id, kind) pairs of
    email events of this enrollment.
    """

    done: set[int] = field(default_factory=set)
    failed_property: dict[int, int] = field(default_factory=dict)
    # Steps whose stored conditions no longer compile (e.g. a deleted custom field).
    broken: dict[int, str] = field(default_factory=dict)
    activity: set[tuple[int | None, str]] = field(default_factory=set)


def first_failure(plan: StepPlan, facts: Facts) -> str | None:
    """The reason the step's conditions do not hold, naming the first failing clause; None if they hold."""
    if plan.id in facts.broken:
        return facts.broken[plan.id]
    prop_index = facts.failed_property.get(plan.id)
    if not plan.email_clauses:
        if prop_index is None:
            return None
        return f"condition {prop_index + 1} failed: {_property_failure(plan, prop_index)}"
    failures: list[tuple[int, str]] = []
    if prop_index is not None:
        failures.append((prop_index, _property_failure(plan, prop_index)))
    for email in plan.email_clauses:
        if email.of == "previous":
            target = plan.previous_email_step
            actual = target is not None and (target, email.kind) in facts.activity
        else:
            actual = any(kind == email.kind for _, kind in facts.activity)
        if actual != email.expect:
            failures.append((email.index, email.describe(actual)))
    if not failures:
        return None
    index, text = min(failures)
    return f"condition {index + 1} failed: {text}"


def _property_failure(plan: StepPlan, index: int) -> str:
    text = plan.property_failures.get(index)
    if text is None:  # a plan made without build_plans
        clause = dict(plan.property_clauses).get(index, {})
        text = f"{describe_property_clause(clause)} does not hold"
    return text


@dataclass(frozen=True)
class Decision:
    """What to do with one step at this run; a skip carries its reason."""

    step_id: int
    action: str  # EXECUTE or SKIP
    reason: str = ""


def classic_decisions(plans: Sequence[StepPlan], facts: Facts, run_count: int) -> list[Decision]:
    """Classic: every step not yet decided whose day has come (day <= run_count), in order;
    a step whose conditions fail is skipped with the reason."""
    decisions = []
    for plan in plans:
        if plan.id in facts.done or plan.day > run_count:
            continue
        reason = first_failure(plan, facts)
        decisions.append(Decision(plan.id, SKIP, reason) if reason else Decision(plan.id, EXECUTE))
    return decisions


def smart_decision(plans: Sequence[StepPlan], facts: Facts) -> Decision | None:
    """Smart: the first step, in order, not yet executed whose conditions hold; None = wait."""
    for plan in plans:
        if plan.id not in facts.done and first_failure(plan, facts) is None:
            return Decision(plan.id, EXECUTE)
    return None


def is_finished(plans: Sequence[StepPlan], done: Iterable[int]) -> bool:
    """Whether every live step has been decided (executed, skipped or failed)."""
    decided = set(done)
    return all(plan.id in decided for plan in plans)
