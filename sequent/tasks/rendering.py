"""A task's title and notes as the rep reads them: step text may hold Liquid placeholders
(``{{ contact.first_name }}``), rendered for the task's contact when shown."""

from __future__ import annotations

from sequent.mail import templating
from sequent.mail.delivery import render_context
from sequent.tasks.models import Task


def _has_liquid(text: str) -> bool:
    return "{{" in text or "{%" in text


def render_task_text(task: Task, text: str) -> str:
    """*text* rendered for *task*'s contact; the text as written when it has no
    placeholder or does not render (a rep still sees what the step said)."""
    if not _has_liquid(text):
        return text
    sequence = task.enrollment.sequence if task.enrollment is not None else None
    try:
        return templating.render_text(text, render_context(task.contact, task.owner, None, sequence, None))
    except templating.TemplateRenderError:
        return text
