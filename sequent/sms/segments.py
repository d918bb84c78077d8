"""How many SMS segments a text takes (pure; no Django).

A text that fits the GSM 03.38 alphabet is sent 7-bit: 160 characters in one
segment, 153 per segment when split (the rest of each is the concatenation
header); characters of the extension table (``^{}[]~|\\€`` and form feed) take
two. Anything else (emoji, most accented letters) makes the whole text UCS-2:
70 in one segment, 67 per segment when split, counted in UTF-16 code units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SegmentCount:
    """The encoding a text needs, its length in that encoding's units, and its segments."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int
    segments: int


def count_segments(text: str) -> SegmentCount:
    """The segments *text* takes as one SMS (0 for an empty text)."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, multi, encoding = 160, 153, "GSM-7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
    if units == 0:
        return SegmentCount(encoding, 0, 0)
    segments = 1 if units <= single else math.ceil(units / multi)
    return SegmentCount(encoding, units, segments)
