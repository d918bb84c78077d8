"""User-authored templates in Liquid (python-liquid), rendered safely.

Rules (docs/EMAIL.md, "Templates"):

- Placeholders read plain dicts and lists built by `build_context`; nothing else
  reaches a template, so there is no path to Python internals.
- A placeholder whose value is missing, None or blank raises `TemplateRenderError`
  naming it, unless a ``default`` filter follows it directly: a send never goes out
  as "Hi ,". In ``{% if %}`` such a placeholder is simply false.
- Loops, output size, assigned variables, context depth and block nesting are
  limited, so a template cannot hold a worker.
- HTML bodies escape contact values; subjects and text (SMS, task notes) do not.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from liquid import BoundTemplate, Environment
from liquid.exceptions import (
    BlockNestingError,
    ContextDepthError,
    LiquidError,
    LiquidSyntaxError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
    UndefinedError,
    UnknownFilterError,
)
from liquid.static_analysis import RE_PROPERTY
from liquid.undefined import FalsyStrictUndefined

LOOP_ITERATION_LIMIT = 10_000
OUTPUT_LIMIT_BYTES = 1_000_000
LOCAL_NAMESPACE_LIMIT_BYTES = 100_000
CONTEXT_DEPTH_LIMIT = 10
BLOCK_NESTING_LIMIT = 20
SUBJECT_MAX_CHARS = 998

# The names a template may use at its top level.
TOP_LEVEL_NAMES = frozenset({"contact", "account", "sender", "sequence", "unsubscribe_link"})


class TemplateRenderError(Exception):
    """A template cannot be rendered; ``message`` is a reason a user can act on.

    ``part`` is "subject", "body" or "text"; ``line`` the 1-based line when known.
    """

    def __init__(self, message: str, *, part: str = "", line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.part = part
        self.line = line


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered subject (one line) and HTML body."""

    subject: str
    html: str


class _MissingValue(FalsyStrictUndefined):
    """Undefined for missing and blank values: false in conditions, an error on output,
    and replaced by a following ``default`` filter."""

    force_liquid_default = True


class _SafeEnvironment(Environment):
    """A Liquid environment with resource limits and no template loading."""

    loop_iteration_limit: ClassVar[int | None] = LOOP_ITERATION_LIMIT
    output_stream_limit: ClassVar[int | None] = OUTPUT_LIMIT_BYTES
    local_namespace_limit: ClassVar[int | None] = LOCAL_NAMESPACE_LIMIT_BYTES
    context_depth_limit: ClassVar[int] = CONTEXT_DEPTH_LIMIT
    block_nesting_limit: ClassVar[int] = BLOCK_NESTING_LIMIT

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        """Register the standard tags and filters, minus those that load other templates."""
        super().setup_tags_and_filters(extra=extra)
        # A user template is one string: there is nothing to include, and the tags
        # would only turn into "template not found" at send time.
        for name in ("include", "render"):
            self.tags.pop(name, None)


_HTML_ENV = _SafeEnvironment(undefined=_MissingValue, autoescape=True, strict_filters=True)
_TEXT_ENV = _SafeEnvironment(undefined=_MissingValue, autoescape=False, strict_filters=True)


def _path_str(parent: str, key: Any) -> str:
    # Same spelling python-liquid uses in its messages, so paths can be matched.
    if isinstance(key, str):
        return f"{parent}.{key}" if RE_PROPERTY.fullmatch(key) else f"{parent}[{key!r}]"
    return f"{parent}[{key}]"


def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _plain(value: Any) -> Any:
    """Copy *value* as plain data (dicts, lists, scalars); anything else becomes text."""
    if value is None or isinstance(value, (str, bool, int, float, Decimal, dt.date)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    return str(value)


def _prune(value: Any, path: str, blanks: set[str]) -> Any:
    """Drop blank values from dicts (so they read as undefined), noting their paths."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            # Paths are spelled only where needed: for a blank, or to go deeper.
            if _is_blank(item):
                blanks.add(_path_str(path, key) if path else key)
            elif isinstance(item, (dict, list)):
                kept[key] = _prune(item, _path_str(path, key) if path else key, blanks)
            else:
                kept[key] = item
        return kept
    if isinstance(value, list):
        return [_prune(item, _path_str(path, index), blanks) for index, item in enumerate(value)]
    return value


def build_context(
    contact: Mapping[str, Any],
    account: Mapping[str, Any] | None,
    sender: Mapping[str, Any],
    sequence: Mapping[str, Any] | None,
    unsubscribe_link: str | None,
) -> dict[str, Any]:
    """The render context: plain copies of the given records under fixed names.

    Custom fields (``contact["custom"]``) are under ``contact.custom.<key>`` and also
    flat as ``contact.<key>`` when no built-in field has that name; the same for the
    account. ``contact.full_name`` is filled from the names when not given.
    """
    contact_ctx = _plain(contact)
    custom = contact_ctx.get("custom") or {}
    contact_ctx["custom"] = custom
    for key, value in custom.items():
        contact_ctx.setdefault(key, value)
    if not contact_ctx.get("full_name"):
        names = [contact_ctx.get("first_name") or "", contact_ctx.get("last_name") or ""]
        contact_ctx["full_name"] = " ".join(part.strip() for part in names if str(part).strip())

    context: dict[str, Any] = {"contact": contact_ctx, "sender": _plain(sender)}
    if account is not None:
        account_ctx = _plain(account)
        account_custom = account_ctx.get("custom") or {}
        account_ctx["custom"] = account_custom
        for key, value in account_custom.items():
            account_ctx.setdefault(key, value)
        context["account"] = account_ctx
    if sequence is not None:
        context["sequence"] = _plain(sequence)
    if unsubscribe_link:
        context["unsubscribe_link"] = unsubscribe_link
    return context


def _line_of(exc: LiquidError) -> int | None:
    where = exc.context()
    return where[0] if where else None


def _where(part: str, line: int | None) -> str:
    return f"{part} line {line}" if line else part


def _undefined_reason(exc: UndefinedError, blanks: set[str]) -> str:
    # python-liquid's message is "<path> is undefined" (the root quoted).
    raw = str(exc.message or "")
    path = raw.removesuffix(" is undefined").strip("'")
    if raw == "index out of range":
        return "a list index is out of range"
    if path in blanks:
        return f'{path} is empty and has no default (write {{{{ {path} | default: "..." }}}})'
    root = path.split(".", 1)[0].split("[", 1)[0]
    if root not in TOP_LEVEL_NAMES:
        return (
            f"{path} is not a known placeholder (use contact, account, sender, sequence or unsubscribe_link)"
        )
    return f'{path} is empty and has no default (write {{{{ {path} | default: "..." }}}})'


def _reason(exc: Exception, blanks: set[str]) -> str:
    if isinstance(exc, UndefinedError):
        return _undefined_reason(exc, blanks)
    if isinstance(exc, LoopIterationLimitError):
        return f"a loop runs more than {LOOP_ITERATION_LIMIT:,} times"
    if isinstance(exc, OutputStreamLimitError):
        return f"the output is larger than {OUTPUT_LIMIT_BYTES:,} bytes"
    if isinstance(exc, LocalNamespaceLimitError):
        return f"assigned variables hold more than {LOCAL_NAMESPACE_LIMIT_BYTES:,} bytes"
    if isinstance(exc, BlockNestingError):
        return f"blocks are nested more than {BLOCK_NESTING_LIMIT} deep"
    if isinstance(exc, ContextDepthError):
        return "the template nests too deeply"
    if isinstance(exc, UnknownFilterError):
        return str(exc.message)
    if isinstance(exc, LiquidSyntaxError):
        return f"syntax error: {exc.message}"
    if isinstance(exc, LiquidError):
        return str(exc.message)
    if isinstance(exc, RecursionError):
        return "the template nests too deeply"
    return f"cannot render: {exc}"


# Errors a filter may raise on odd input (e.g. a huge number); all become a
# TemplateRenderError so a user template never stops a worker.
_RENDER_ERRORS = (LiquidError, ArithmeticError, TypeError, ValueError, RecursionError, MemoryError)


@functools.lru_cache(maxsize=256)
def _parse(env: Environment, src: str) -> BoundTemplate:
    # Parsed templates are immutable: a batch of sends parses each template once.
    return env.from_string(src)


def _pruned(context: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
    blanks: set[str] = set()
    return _prune(_plain(context), "", blanks), blanks


def _render(
    env: Environment,
    src: str,
    context: Mapping[str, Any],
    part: str,
    pruned: tuple[dict[str, Any], set[str]] | None = None,
) -> str:
    values, blanks = pruned or _pruned(context)
    try:
        return _parse(env, src).render(**values)
    except _RENDER_ERRORS as exc:
        line = _line_of(exc) if isinstance(exc, LiquidError) else None
        raise TemplateRenderError(
            f"{_where(part, line)}: {_reason(exc, blanks)}", part=part, line=line
        ) from None


def render_email(subject_src: str, body_src: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render an email's subject (text, one line) and HTML body (values escaped).

    Raises `TemplateRenderError` naming the part, line and reason; an empty subject
    or body after rendering is an error too.
    """
    pruned = _pruned(context)  # the same for both parts
    subject = _render(_TEXT_ENV, subject_src, context, "subject", pruned)
    # A subject is one header line: a value with line breaks is folded to spaces.
    subject = " ".join(subject.split())
    if not subject:
        raise TemplateRenderError("subject: the subject is empty after rendering", part="subject")
    if len(subject) > SUBJECT_MAX_CHARS:
        raise TemplateRenderError(
            f"subject: the subject is longer than {SUBJECT_MAX_CHARS} characters", part="subject"
        )
    html = _render(_HTML_ENV, body_src, context, "body", pruned)
    if not html.strip():
        raise TemplateRenderError("body: the body is empty after rendering", part="body")
    return RenderedEmail(subject=subject, html=html)


def render_text(src: str, context: Mapping[str, Any]) -> str:
    """Render a plain-text template (SMS, task note): no HTML escaping."""
    return _render(_TEXT_ENV, src, context, "text")


def validate_template(src: str) -> list[str]:
    """Problems an editor can show before saving: syntax, unknown filters and tags,
    unknown top-level names, nesting. Each names its line. Empty list = fine."""
    try:
        template = _parse(_TEXT_ENV, src)
    except LiquidError as exc:
        line = _line_of(exc)
        return [f"{_where('template', None) if line is None else f'line {line}'}: {_reason(exc, set())}"]
    except RecursionError:
        return ["template: the template nests too deeply"]
    problems: list[tuple[int, str]] = []
    analysis = template.analyze(include_partials=False)
    for name, spans in analysis.filters.items():
        if name not in _TEXT_ENV.filters:
            line, _ = spans[0].line_col(src)
            problems.append((line, f"line {line}: unknown filter '{name}'"))
    for name, variables in analysis.globals.items():
        if name not in TOP_LEVEL_NAMES:
            line, _ = variables[0].span.line_col(src)
            problems.append(
                (
                    line,
                    f"line {line}: {variables[0]} is not a known placeholder "
                    "(use contact, account, sender, sequence or unsubscribe_link)",
                )
            )
    return [message for _, message in sorted(problems)]
