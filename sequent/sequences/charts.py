"""Bar charts of the performance page as plain geometry, drawn as SVG by a template.

Pure: no Django. Every bar carries its label and number, which the template writes
both as visible text and as the bar's ``<title>``, so the chart reads without colour
or hover and screen readers get the figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

LABEL_WIDTH = 190
BAR_AREA = 320
VALUE_WIDTH = 60
ROW_HEIGHT = 24
BAR_HEIGHT = 16
PADDING = 8

# The funnel of one step: (counter, label, css class). Raw = with automated hits
# (security scanners, image proxies); human = without them.
FUNNEL = (
    ("sent", "Sent", "sent"),
    ("opened", "Opened (human)", "opened"),
    ("opened_raw", "Opened (all hits)", "raw"),
    ("clicked", "Clicked (human)", "clicked"),
    ("clicked_raw", "Clicked (all hits)", "raw"),
    ("replied", "Replied", "replied"),
    ("bounced", "Bounced", "bad"),
    ("unsubscribed", "Unsubscribed", "bad"),
)


@dataclass(frozen=True)
class Bar:
    """One bar: what it counts, its value, and where it is drawn."""

    label: str
    value: int
    css: str
    y: int
    width: int

    @property
    def text_y(self) -> int:
        return self.y + BAR_HEIGHT - 3

    @property
    def value_x(self) -> int:
        return LABEL_WIDTH + self.width + 6


@dataclass(frozen=True)
class BarChart:
    """A horizontal bar chart: a title, a one-line description and its bars."""

    title: str
    description: str
    bars: tuple[Bar, ...]

    @property
    def width(self) -> int:
        return LABEL_WIDTH + BAR_AREA + VALUE_WIDTH

    @property
    def height(self) -> int:
        return PADDING * 2 + ROW_HEIGHT * max(len(self.bars), 1)

    @property
    def label_width(self) -> int:
        return LABEL_WIDTH

    @property
    def bar_height(self) -> int:
        return BAR_HEIGHT


def bar_chart(title: str, rows: Sequence[tuple[str, int, str]]) -> BarChart:
    """A chart of *rows* (label, value, css class), bars scaled to the largest value."""
    largest = max((value for _, value, _ in rows), default=0)
    bars = tuple(
        Bar(
            label=label,
            value=value,
            css=css,
            y=PADDING + index * ROW_HEIGHT,
            # A non-zero value always shows at least a sliver.
            width=max(round(BAR_AREA * value / largest), 2) if largest and value else 0,
        )
        for index, (label, value, css) in enumerate(rows)
    )
    description = "; ".join(f"{label}: {value}" for label, value, _ in rows) or "no data"
    return BarChart(title=title, description=description, bars=bars)


def funnel_chart(title: str, counts: Mapping[str, int]) -> BarChart:
    """The funnel of one step (or of the whole sequence) from its metric counters."""
    return bar_chart(title, [(label, int(counts.get(name, 0)), css) for name, label, css in FUNNEL])


def exits_chart(by_reason: Mapping[str, int], labels: Mapping[str, str]) -> BarChart:
    """Exits by reason, most frequent first; *labels* names each reason code."""
    rows = sorted(by_reason.items(), key=lambda item: (-item[1], item[0]))
    return bar_chart("Exits by reason", [(labels.get(code, code), int(n), "bad") for code, n in rows])
