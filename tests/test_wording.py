"""bench/store/wording.py: how a number reads, the same in every sentence and table."""

from __future__ import annotations

import math

from bench.store.wording import (counted, epochs_label, mflop, mflop_cell, pct, points, pp, ratio,
                                 seconds, within)


def test_a_count_takes_the_singular_only_at_exactly_one():
    assert counted(1, "seed") == "1 seed" and counted(3, "seed") == "3 seeds"
    assert counted(0, "study", "studies") == "0 studies"
    assert counted(1, "study", "studies") == "1 study"
    assert counted(1, "config has", "configs have") == "1 config has"
    # the number is formatted, the noun follows the value: 1.4 seeds reads "1", and is plural
    assert counted(1.4, "more seed", spec=".0f") == "1 more seeds"
    assert epochs_label(1.0) == "1 epoch" and epochs_label(0.5) == "0.5 epochs"
    assert epochs_label(12) == "12 epochs"


def test_fractions_read_in_percent_and_percentage_points():
    assert pct(0.98765) == "98.77%"
    assert pp(0.0012) == "+0.12 pp" and pp(-0.0012) == "-0.12 pp"
    assert points(0.0012) == "0.12 pp"
    assert within(0.001) == "+-0.10 pp"  # a margin, a fraction like every accuracy


def test_seconds_read_whole_with_commas_from_100_and_to_three_digits_below():
    assert seconds(1234.4) == "1,234 s" and seconds(100) == "100 s"
    assert seconds(99.94) == "99.9 s" and seconds(56.7) == "56.7 s" and seconds(0.5) == "0.5 s"


def test_flops_read_in_millions_and_a_missing_count_as_a_dash():
    assert mflop(12_840_000) == "12.8 MFLOP"
    assert mflop_cell(12_840_000) == "12.8" and mflop_cell(math.nan) == "-"
    assert mflop_cell(None) == "-"


def test_a_ratio_says_more_or_fewer_from_the_numbers():
    assert ratio(100, 190, "FLOPs") == "1.90x more FLOPs"
    assert ratio(200, 100, "FLOPs") == "2.00x fewer FLOPs"
    assert ratio(5, 5, "parameters") == "the same parameters"
    assert ratio(math.nan, 5, "FLOPs") == "FLOPs not measured"
