"""How a number reads in words: accuracies in percent, differences in percentage points, FLOPs in
millions, and a count with its noun in singular or plural. Every sentence, table cell and page
line uses these, so one number never reads two ways.

It lives in the first stage (store) so that every later stage, the evidence and the report as
much as the search's and the benchmark's messages, can use it; it imports nothing of bench.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["counted", "epochs_label", "mflop", "mflop_cell", "pct", "points", "pp", "ratio",
           "seconds", "within"]


def counted(count: float, singular: str, plural: str | None = None, spec: str = "") -> str:
    """'1 seed', '3 seeds', '2 studies': the count formatted by `spec`, then the noun (or words)
    in singular where the count is exactly one, else in `plural` (default: singular + 's')."""
    noun = singular if count == 1 else (plural if plural is not None else singular + "s")
    return f"{count:{spec}} {noun}"


def epochs_label(epochs: float) -> str:
    """'1 epoch', '12 epochs', '0.5 epochs'."""
    return counted(epochs, "epoch", spec="g")


def pct(fraction: float) -> str:
    """A fraction (an accuracy) in percent: 0.98765 -> '98.77%'."""
    return f"{fraction * 100:.2f}%"


def pp(difference: float) -> str:
    """A signed difference of fractions in percentage points: 0.0012 -> '+0.12 pp'."""
    return f"{difference * 100:+.2f} pp"


def points(fraction: float) -> str:
    """A size of fractions (a spread, a margin) in percentage points: 0.0012 -> '0.12 pp'."""
    return f"{fraction * 100:.2f} pp"


def within(margin: float) -> str:
    """A margin of practical equivalence, a fraction, in percentage points: 0.001 -> '+-0.10 pp'."""
    return f"+-{points(margin)}"


def seconds(value: float) -> str:
    """A duration with its unit, whole seconds with thousands commas from 100 on: '1,234 s',
    '56.7 s', '0.5 s'."""
    return f"{value:,.0f} s" if value >= 100 else f"{value:.3g} s"


def mflop(flops: float) -> str:
    """FLOPs in millions, with the unit: 12840000 -> '12.8 MFLOP'."""
    return f"{flops / 1e6:.1f} MFLOP"


def mflop_cell(flops: float) -> str:
    """FLOPs in millions for a column already named in MFLOP; '-' where not measured."""
    return "-" if pd.isna(flops) else f"{flops / 1e6:.1f}"


def ratio(low: float, high: float, unit: str) -> str:
    """'1.9x more' or '2.0x fewer' or 'the same', from the two numbers themselves."""
    if pd.isna(low) or pd.isna(high) or not low or not high:
        return f"{unit} not measured"
    if high == low:
        return f"the same {unit}"
    factor = max(high, low) / min(high, low)
    return f"{factor:.2f}x {'more' if high > low else 'fewer'} {unit}"
