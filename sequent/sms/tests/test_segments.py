"""Segment counts shown next to an SMS template."""

from __future__ import annotations

from sequent.sms.segments import count_segments


def test_it_fits_160_gsm_characters_in_one_segment_and_splits_by_153():
    assert count_segments("a" * 160) == count_segments("a" * 160).__class__("GSM-7", 160, 1)
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2
    assert count_segments("a" * 307).segments == 3


def test_it_counts_extension_characters_twice():
    counted = count_segments("{" * 80)
    assert (counted.encoding, counted.units, counted.segments) == ("GSM-7", 160, 1)
    assert count_segments("€" * 81).segments == 2


def test_it_switches_to_ucs2_for_other_characters():
    assert count_segments("ç" + "a" * 69).segments == 1  # ç is not in the GSM alphabet (Ç is)
    assert count_segments("ç" + "a" * 70).segments == 2
    counted = count_segments("👋" * 36)  # an emoji takes two UTF-16 units
    assert (counted.encoding, counted.units, counted.segments) == ("UCS-2", 72, 2)
    assert count_segments("a" * 134 + "😀").segments == 3


def test_it_counts_nothing_for_an_empty_text():
    assert count_segments("").segments == 0
