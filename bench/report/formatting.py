"""How numbers read in Markdown and HTML; the CSV files keep the stored values untouched."""

from __future__ import annotations

import pandas as pd

from bench.store.wording import pct, points

# Accuracy columns named as the accuracy table names them (bench.report.tables.accuracy_table).
ACCURACY_COLUMNS = {"selection_value", "mean", "ci_low", "ci_high"}


def _readable_value(column: str, value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if column.endswith("accuracy_std"):
        return points(value)
    if "accuracy" in column or column.endswith("fraction") or column in ACCURACY_COLUMNS:
        return pct(value)
    if "_pp" in column:  # already in percentage points
        return f"{value:.2f} pp"
    if column.endswith("_x"):  # a ratio
        return f"{value:.2f}x"
    if column in ("learning_rate", "weight_decay"):
        return f"{value:.3g}"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """Accuracies as percentages, big counts with separators, floats to 3 significant digits."""
    return pd.DataFrame({column: [_readable_value(column, v) for v in frame[column]]
                         for column in frame.columns}, index=frame.index)


def markdown(frame: pd.DataFrame) -> str:
    return readable(frame).to_markdown(index=False) if len(frame) else "(no rows)"
